package e2e

import (
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/report"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

const (
	reportRevision = "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d"
	reportToken    = "ghp_e2eReportToken0123456789"
)

// statusHost stands in for GitHub's commit status API. Runs are told apart
// by the PipelineRun name in the description.
type statusHost struct {
	mu       sync.Mutex
	requests map[string][]statusRequest // by run name
	failures map[string][]int           // run name -> codes for its next final-state requests
	srv      *httptest.Server
}

type statusRequest struct {
	Path, Auth                             string
	State, Context, Description, TargetURL string
	Code                                   int
}

func newStatusHost(t *testing.T) *statusHost {
	h := &statusHost{requests: map[string][]statusRequest{}, failures: map[string][]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			State, Context, Description string
			TargetURL                   string `json:"target_url"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		name := strings.Fields(body.Description + " ? ?")[1]
		h.mu.Lock()
		code := http.StatusCreated
		if fs := h.failures[name]; len(fs) > 0 && body.State != "pending" {
			code, h.failures[name] = fs[0], fs[1:]
		}
		h.requests[name] = append(h.requests[name], statusRequest{Path: r.URL.Path, Auth: r.Header.Get("Authorization"),
			State: body.State, Context: body.Context, Description: body.Description, TargetURL: body.TargetURL, Code: code})
		h.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"message":"scripted"}`)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *statusHost) fail(name string, codes ...int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures[name] = codes
}

func (h *statusHost) of(name string) []statusRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests[name])
}

// posted lists the states the host took (2xx) for a run, in order.
func (h *statusHost) posted(name string) []string {
	var out []string
	for _, r := range h.of(name) {
		if r.Code/100 == 2 {
			out = append(out, r.State)
		}
	}
	return out
}

// waitPosted waits until the host took want for the run.
func (h *statusHost) waitPosted(t *testing.T, name string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if got := h.posted(name); len(got) >= len(want) {
			if !slices.Equal(got, want) {
				t.Fatalf("run %s: posted %v, want %v (requests %+v)", name, got, want, h.of(name))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("run %s: posted %v, want %v (requests %+v)", name, h.posted(name), want, h.of(name))
}

// cdeventSink records the CDEvents posted to it.
type cdeventSink struct {
	mu     sync.Mutex
	events []sunkEvent
	srv    *httptest.Server
}

type sunkEvent struct {
	ID, Type string
	Data     map[string]any
}

func newCDEventSink(t *testing.T) *cdeventSink {
	s := &cdeventSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var data map[string]any
		_ = json.NewDecoder(r.Body).Decode(&data)
		s.mu.Lock()
		s.events = append(s.events, sunkEvent{ID: r.Header.Get("Ce-Id"), Type: r.Header.Get("Ce-Type"), Data: data})
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// types lists the CDEvents types received for the run uid, by first arrival.
func (s *cdeventSink) types(uid string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		if strings.HasPrefix(e.ID, uid+"-") && !slices.Contains(out, e.Type) {
			out = append(out, e.Type)
		}
	}
	return out
}

func (s *cdeventSink) waitTypes(t *testing.T, uid string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if got := s.types(uid); len(got) >= len(want) {
			if !slices.Equal(got, want) {
				t.Fatalf("cdevents %v, want %v", got, want)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("cdevents %v, want %v", s.types(uid), want)
}

// reportRules is rulesFor's manifest with the GitHub source reporting
// statuses to host, and a statusURL.
func reportRules(t *testing.T, ns, apiURL string) string {
	t.Helper()
	dir := rulesFor(t, ns, "")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(reportToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "root.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	root := strings.Replace(string(data), "    secret: {env: GITHUB_WEBHOOK_SECRET}\n", fmt.Sprintf(
		"    secret: {env: GITHUB_WEBHOOK_SECRET}\n    apiToken: {file: %s}\n    apiURL: %s/api/v3\n    report: status\n", tokenFile, apiURL), 1)
	root += "statusURL: \"https://dashboard.example.com/#/namespaces/{namespace}/pipelineruns/{name}\"\n"
	if err := os.WriteFile(path, []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// setCondition writes the run's status subresource as Tekton's controller
// would.
func setCondition(t *testing.T, ns, name string, status corev1.ConditionStatus, reason string) {
	t.Helper()
	tekton := adminTekton(t)
	ctx := context.Background()
	pr, err := tekton.TektonV1().PipelineRuns(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	if pr.Status.StartTime == nil {
		pr.Status.StartTime = &now
	}
	pr.Status.Conditions = duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: status, Reason: reason,
		LastTransitionTime: apis.VolatileTime{Inner: now}}}
	if status != corev1.ConditionUnknown {
		pr.Status.CompletionTime = &now
	}
	if _, err := tekton.TektonV1().PipelineRuns(ns).UpdateStatus(ctx, pr, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status of %s: %v", name, err)
	}
}

// TestReportStatusesAndCDEvents (issue 13): two routers on one NATS server
// and the real API server. A push creates a run and a pending status; the
// run's Succeeded condition (status subresource) posts success, failure,
// cancelled and timed-out as error/failure saying so; a run deleted before
// it finished gets error; a 5xx is retried and posted once; a 403 is
// reported once and dropped; no state is posted twice; one router at a time
// watches, and the other takes over when it crashes; the CDEvents sink
// receives queued, started and finished.
func TestReportStatusesAndCDEvents(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-report"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := nats.Connect(emb.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	onNATS := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("switchyard.cdevents.>", onNATS); err != nil {
		t.Fatal(err)
	}

	host, sink := newStatusHost(t), newCDEventSink(t)
	rules := reportRules(t, ns, host.srv.URL)
	secret := newSecret(t)
	var routers []*router
	for range 2 {
		routers = append(routers, startRouterArgs(t, routerConfig{rulesDir: rules, dataDir: t.TempDir(), kubeconfig: kubeconfig,
			natsURL: emb.ClientURL(), secret: secret}, "--cdevents-sink", sink.srv.URL, "--retry-base", "50ms", "--retry-max", "200ms"))
	}

	push := func(delivery string) string {
		t.Helper()
		if code := sendPush(t, routers[0].url, secret, delivery, samplePush(t)); code != http.StatusAccepted {
			t.Fatalf("push %s: status %d", delivery, code)
		}
		name := routing.PipelineRunName("web", "build", "github", delivery)
		host.waitPosted(t, name, "pending")
		return name
	}

	// Success, with started in between; checked in full.
	okRun := push("report-success")
	setCondition(t, ns, okRun, corev1.ConditionUnknown, "Running")
	pr, err := adminTekton(t).TektonV1().PipelineRuns(ns).Get(ctx, okRun, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uid := string(pr.UID)
	sink.waitTypes(t, uid, "dev.cdevents.pipelinerun.queued.0.3.0", "dev.cdevents.pipelinerun.started.0.3.0")
	setCondition(t, ns, okRun, corev1.ConditionTrue, "Succeeded")
	host.waitPosted(t, okRun, "pending", "success")
	sink.waitTypes(t, uid, "dev.cdevents.pipelinerun.queued.0.3.0", "dev.cdevents.pipelinerun.started.0.3.0", "dev.cdevents.pipelinerun.finished.0.3.0")
	final := host.of(okRun)[1]
	if final.Path != "/api/v3/repos/acme/web/statuses/"+reportRevision || final.Auth != "Bearer "+reportToken ||
		final.Context != "switchyard/web/build" || final.TargetURL != "https://dashboard.example.com/#/namespaces/"+ns+"/pipelineruns/"+okRun {
		t.Errorf("success request %+v", final)
	}
	checkCDEventLinks(t, sink, uid, "report-success")

	// Failure, after two 502s: retried, posted once.
	failRun := push("report-failure")
	host.fail(failRun, http.StatusBadGateway, http.StatusBadGateway)
	setCondition(t, ns, failRun, corev1.ConditionFalse, "Failed")
	host.waitPosted(t, failRun, "pending", "failure")
	if n := len(host.of(failRun)); n != 4 {
		t.Errorf("failure run: %d requests, want 4 (pending, 502, 502, failure): %+v", n, host.of(failRun))
	}

	for _, tc := range []struct{ delivery, reason, state, says string }{
		{"report-cancel", "Cancelled", "error", "cancelled"},
		{"report-timeout", "PipelineRunTimeout", "failure", "timed out"},
	} {
		name := push(tc.delivery)
		setCondition(t, ns, name, corev1.ConditionFalse, tc.reason)
		host.waitPosted(t, name, "pending", tc.state)
		if d := host.of(name)[1].Description; !strings.Contains(d, tc.says) {
			t.Errorf("%s: description %q does not say %q", tc.delivery, d, tc.says)
		}
	}

	gone := push("report-deleted")
	if err := adminTekton(t).TektonV1().PipelineRuns(ns).Delete(ctx, gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	host.waitPosted(t, gone, "pending", "error")
	if d := host.of(gone)[1].Description; !strings.Contains(d, "deleted before it finished") {
		t.Errorf("deleted run: description %q", d)
	}

	// A 403 is tried once, logged and dropped.
	refused := push("report-refused")
	host.fail(refused, http.StatusForbidden)
	setCondition(t, ns, refused, corev1.ConditionTrue, "Succeeded")
	waitLogged(t, routers, "report rejected: dropped")

	// Everything settled: nothing left to post, and nothing was posted twice.
	waitReportsDrained(t, nc)
	if reqs := host.of(refused); len(reqs) != 2 || reqs[1].Code != http.StatusForbidden {
		t.Errorf("refused run: requests %+v, want pending then one 403", reqs)
	}
	for _, name := range []string{okRun, failRun, gone, refused} {
		posted := host.posted(name)
		if len(slices.Compact(slices.Clone(posted))) != len(posted) {
			t.Errorf("run %s: a state posted twice: %v", name, posted)
		}
	}
	var leaders []*router
	for _, r := range routers {
		if len(r.logs.records("leading the run watcher")) > 0 {
			leaders = append(leaders, r)
		}
		if strings.Contains(r.logs.String(), reportToken) {
			t.Error("the API token is in a router's log")
		}
	}
	if len(leaders) != 1 {
		t.Fatalf("%d routers lead the run watcher, want exactly 1", len(leaders))
	}
	// The leader crashes (its lock is not released): the other router
	// takes the watcher over once the lock expires, and reports new runs.
	leaders[0].kill()
	other := routers[0]
	if other == leaders[0] {
		other = routers[1]
	}
	waitLogged(t, []*router{other}, "leading the run watcher")
	if code := sendPush(t, other.url, secret, "report-after-failover", samplePush(t)); code != http.StatusAccepted {
		t.Fatalf("push after failover: status %d", code)
	}
	host.waitPosted(t, routing.PipelineRunName("web", "build", "github", "report-after-failover"), "pending")
	select {
	case m := <-onNATS:
		if !strings.HasPrefix(m.Subject, "switchyard.cdevents.pipelinerun.") {
			t.Errorf("cdevent on subject %s", m.Subject)
		}
	default:
		t.Error("no cdevent on NATS")
	}
}

// checkCDEventLinks: every CDEvent of the run names the event that started
// it in its customData.
func checkCDEventLinks(t *testing.T, sink *cdeventSink, uid, delivery string) {
	t.Helper()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, e := range sink.events {
		if !strings.HasPrefix(e.ID, uid+"-") {
			continue
		}
		custom, _ := e.Data["customData"].(map[string]any)
		ev, _ := custom["event"].(map[string]any)
		if ev["id"] != delivery || ev["source"] != "https://github.com/acme/web" {
			t.Errorf("cdevent %s %s: customData %v", e.Type, e.ID, custom)
		}
		if strings.Contains(e.Type, "finished") {
			subject, _ := e.Data["subject"].(map[string]any)
			content, _ := subject["content"].(map[string]any)
			if content["outcome"] != "success" {
				t.Errorf("finished outcome %v", content["outcome"])
			}
		}
	}
}

func waitLogged(t *testing.T, routers []*router, msg string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range routers {
			if len(r.logs.records(msg)) > 0 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no router logged %q", msg)
}

// waitReportsDrained waits until the report stream holds nothing: every
// report posted, skipped or dropped.
func waitReportsDrained(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(45 * time.Second)
	var msgs uint64
	for time.Now().Before(deadline) {
		s, err := js.Stream(context.Background(), report.Stream)
		if err == nil {
			if msgs = s.CachedInfo().State.Msgs; msgs == 0 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d reports still queued", msgs)
}

// checkRunHost stands in for GitHub's App and Checks APIs.
type checkRunHost struct {
	mu     sync.Mutex
	bodies []map[string]any // check-run requests, with "_method"
	srv    *httptest.Server
}

func newCheckRunHost(t *testing.T) *checkRunHost {
	h := &checkRunHost{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v3/repos/acme/web/installation":
			_, _ = io.WriteString(w, `{"id": 5}`)
		case r.URL.Path == "/api/v3/app/installations/5/access_tokens":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"token": "ghs_e2e", "expires_at": "2099-01-01T00:00:00Z"}`)
		case strings.HasPrefix(r.URL.Path, "/api/v3/repos/acme/web/check-runs") && r.Header.Get("Authorization") == "token ghs_e2e":
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			body["_method"] = r.Method + " " + r.URL.Path
			h.mu.Lock()
			h.bodies = append(h.bodies, body)
			h.mu.Unlock()
			if r.Method == http.MethodPost {
				w.WriteHeader(http.StatusCreated)
			}
			_, _ = io.WriteString(w, `{"id": 31}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *checkRunHost) wait(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		got := slices.Clone(h.bodies)
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("fewer than %d check run requests", n)
	return nil
}

// TestReportCheckRuns (issue 13): with report: checks, a push creates a
// check run in_progress as the GitHub App's installation, and the run's
// success completes the same check run with a summary naming its tasks.
func TestReportCheckRuns(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-checks"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	host := newCheckRunHost(t)
	key, err := rsa.GenerateKey(crand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := rulesFor(t, ns, "")
	path := filepath.Join(dir, "root.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	root := strings.Replace(string(data), "    secret: {env: GITHUB_WEBHOOK_SECRET}\n", fmt.Sprintf(
		"    secret: {env: GITHUB_WEBHOOK_SECRET}\n    apiURL: %s/api/v3\n    report: checks\n    githubApp: {appID: 3, privateKey: {file: %s}}\n", host.srv.URL, keyFile), 1)
	if err := os.WriteFile(path, []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := newSecret(t)
	r := startRouter(t, routerConfig{rulesDir: dir, dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: secret})
	if code := sendPush(t, r.url, secret, "checks-1", samplePush(t)); code != http.StatusAccepted {
		t.Fatalf("push: status %d", code)
	}
	created := host.wait(t, 1)[0]
	name := routing.PipelineRunName("web", "build", "github", "checks-1")
	if created["_method"] != "POST /api/v3/repos/acme/web/check-runs" || created["status"] != "in_progress" ||
		created["head_sha"] != reportRevision || created["name"] != "switchyard/web/build" {
		t.Fatalf("created %v", created)
	}

	tekton := adminTekton(t)
	pr, err := tekton.TektonV1().PipelineRuns(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	pr.Status.StartTime, pr.Status.CompletionTime = &now, &now
	pr.Status.Conditions = duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"}}
	pr.Status.ChildReferences = []pipelinev1.ChildStatusReference{{Name: name + "-unit", PipelineTaskName: "unit",
		TypeMeta: runtime.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "TaskRun"}}}
	if _, err := tekton.TektonV1().PipelineRuns(ns).UpdateStatus(ctx, pr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := host.wait(t, 2)[1]
	output, _ := done["output"].(map[string]any)
	summary, _ := output["summary"].(string)
	if done["_method"] != "PATCH /api/v3/repos/acme/web/check-runs/31" || done["status"] != "completed" || done["conclusion"] != "success" ||
		!strings.Contains(summary, "| unit | TaskRun | `"+name+"-unit` |") {
		t.Errorf("completed %v", done)
	}
}
