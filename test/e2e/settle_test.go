package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/test/k8senv"
)

// natsAddr is how a test reaches the NATS server the routers use.
type natsAddr struct{ url, token string }

// embeddedNATS is the address of r's embedded server, from the nats.json
// that serve writes into its data directory for the operator commands.
func (r *router) embeddedNATS(t *testing.T) natsAddr {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.dataDir, "nats.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ci struct{ URL, Token string }
	if err := json.Unmarshal(data, &ci); err != nil {
		t.Fatal(err)
	}
	return natsAddr{url: ci.URL, token: ci.Token}
}

// connect connects to the server at a, closing the connection at the
// test's end.
func (a natsAddr) connect(t *testing.T) *nats.Conn {
	t.Helper()
	var opts []nats.Option
	if a.token != "" {
		opts = append(opts, nats.Token(a.token))
	}
	nc, err := nats.Connect(a.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// attach is the routers' queue on the server at a, for reading it.
func (a natsAddr) attach(t *testing.T) *queue.Queue {
	t.Helper()
	q, err := queue.Attach(context.Background(), a.connect(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// waitWorkSettled waits until the work stream is empty. Work-queue
// retention removes a message only when it is acknowledged, so then no
// work can be redelivered (after AckWait, to this or another router) and
// create a run later: the count of runs is final.
func waitWorkSettled(t *testing.T, addr natsAddr, within time.Duration) {
	t.Helper()
	js, err := jetstream.New(addr.connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(within)
	var msgs uint64
	for time.Now().Before(deadline) {
		s, err := js.Stream(ctx, queue.WorkStream)
		if err == nil {
			if msgs = s.CachedInfo().State.Msgs; msgs == 0 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("work stream still holds %d unacknowledged messages after %s: they will be redelivered", msgs, within)
}

// waitForRunsSettled is waitForRuns, then, once every work message was
// acknowledged, a second count: "exactly one" must hold after the last
// redelivery that could still happen, not only at the instant the count
// first matched.
func waitForRunsSettled(t *testing.T, tekton versioned.Interface, ns string, want int, within time.Duration, addr natsAddr) []pipelinev1.PipelineRun {
	t.Helper()
	waitForRuns(t, tekton, ns, want, within)
	waitWorkSettled(t, addr, within)
	list, err := tekton.TektonV1().PipelineRuns(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "switchyard.dev/app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != want {
		t.Fatalf("%d PipelineRuns in %s once all work was acknowledged, want %d", len(list.Items), ns, want)
	}
	return list.Items
}

// waitUntil polls cond until it holds, failing after within.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// viaProxy returns a proxy in front of the API server (closed at cleanup)
// and a copy of kubeconfig that goes through it.
func viaProxy(t *testing.T, kubeconfig string) (*k8senv.Proxy, string) {
	t.Helper()
	p, err := cluster.NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	path, err := p.Kubeconfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return p, path
}
