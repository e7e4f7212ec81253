package e2e

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// TestBurstDeferredThenJudgedAcrossACrash: a router answering a burst
// (--defer-above 1, six senders) stores each verified webhook as it came
// and judges it behind the 202. It is killed with SIGKILL the moment the
// last 202 is in, while webhooks still wait to be judged (the judging is
// held back while the burst lasts), and a new router on the same NATS
// server judges what it left: every delivery has exactly one PipelineRun,
// and an accepted audit record marked deferred.
func TestBurstDeferredThenJudgedAcrossACrash(t *testing.T) {
	ctx := context.Background()
	const ns, n = "e2e-burst", 60
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	natsProc := startNATSProcess(t)
	secret := newSecret(t)
	cfg := routerConfig{rulesDir: rulesFor(t, ns, ""), dataDir: t.TempDir(), kubeconfig: kubeconfig, natsURL: natsProc.url, secret: secret}
	r := startRouterArgs(t, cfg, "--defer-above", "1")
	l := drive(t, func() []string { return []string{r.url} }, secret, "burst", n, 6, nil)
	deferred, pending := scrape(t, r.url, "switchyard_webhooks_deferred_total"), scrape(t, r.url, "switchyard_intake_pending")
	r.kill()
	t.Logf("burst: %s; %v deferred, %v not judged when the router was killed", l, deferred, pending)
	if deferred == 0 {
		t.Fatal("no webhook was deferred: six senders against --defer-above 1")
	}

	cfg.dataDir = t.TempDir()
	successor := startRouter(t, cfg)
	checkOnePerDelivery(t, ns, "burst", n, 2*time.Minute, natsProc.url)
	checkAuditedOnce(t, natsAddr{url: natsProc.url}, "burst", n, 30*time.Second)
	if got := deferredRecords(t, natsAddr{url: natsProc.url}); got == 0 {
		t.Error("no audit record is marked deferred")
	}
	successor.stop()
}

// scrape reads one unlabelled series from a router's /metrics.
func scrape(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("%s not served at %s/metrics", name, url)
	return 0
}

// deferredRecords counts the accepted audit records marked deferred.
func deferredRecords(t *testing.T, addr natsAddr) int {
	t.Helper()
	n := 0
	if err := addr.attach(t).AuditRecords(context.Background(), time.Time{}, func(rec policy.Record) bool {
		if rec.Decision == policy.DecisionAccepted && rec.Deferred {
			n++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
