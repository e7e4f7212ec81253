package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/test/k8senv"
)

// Fault tests with real processes: a nats-server process built from the
// module go.mod pins, `router serve` subprocesses, and the real API server.
// Each drives signed webhooks through a sender that behaves like a
// webhook provider's retry (a 503 or a refused connection is tried again,
// possibly on another router), injects faults, and then counts: every
// delivery accepted, exactly one PipelineRun per delivery, none doubled.

var (
	natsBuildOnce sync.Once
	natsPath      string
	errNATSBuild  error
)

// natsServerBinary builds nats-server from the version go.mod requires,
// once per package run (Go's build cache makes later runs fast).
func natsServerBinary(t *testing.T) string {
	t.Helper()
	natsBuildOnce.Do(func() {
		root, err := k8senv.RepoRoot()
		if err != nil {
			errNATSBuild = err
			return
		}
		dir, err := os.MkdirTemp("", "switchyard-e2e-nats-")
		if err != nil {
			errNATSBuild = err
			return
		}
		natsPath = filepath.Join(dir, "nats-server")
		cmd := exec.Command("go", "build", "-o", natsPath, "github.com/nats-io/nats-server/v2")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			errNATSBuild = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if errNATSBuild != nil {
		t.Fatal(errNATSBuild)
	}
	return natsPath
}

// natsProcess is a nats-server subprocess with JetStream on a fixed port,
// so a restart keeps its URL and its store.
type natsProcess struct {
	t    *testing.T
	conf string
	url  string
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan error
}

func startNATSProcess(t *testing.T) *natsProcess {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "nats.conf")
	// The router's payload limit (see queue.DefaultMaxPayload).
	config := fmt.Sprintf("listen: 127.0.0.1:%d\nmax_payload: %d\njetstream {\n  store_dir: %q\n}\n", port, 32<<20, filepath.Join(dir, "store"))
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &natsProcess{t: t, conf: conf, url: "nats://127.0.0.1:" + strconv.Itoa(port)}
	n.start()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("nats-server logs:\n%s", n.logs.String())
		}
	})
	return n
}

func (n *natsProcess) start() {
	n.t.Helper()
	n.logs = &lockedBuffer{}
	n.done = make(chan error, 1)
	n.cmd = exec.Command(natsServerBinary(n.t), "-c", n.conf)
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	addr := n.url[len("nats://"):]
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	n.t.Fatalf("nats-server did not start:\n%s", n.logs.String())
}

// kill stops the server with SIGKILL: a crash, no flush, no goodbye.
func (n *natsProcess) kill() {
	if n.cmd == nil || n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.done <- nil
}

// load is what a run of the sender saw.
type load struct {
	deliveries  int
	accepted    atomic.Int64 // 202s (one per delivery, eventually)
	unavailable atomic.Int64 // 503s, each retried
	refused     atomic.Int64 // connection errors (a killed router), each retried
}

func (l *load) String() string {
	return fmt.Sprintf("deliveries=%d accepted=%d 503s=%d refused=%d", l.deliveries, l.accepted.Load(), l.unavailable.Load(), l.refused.Load())
}

// drive sends n signed pushes with delivery ids prefix-0..n-1 through
// workers senders spread over urls (a function, so a test can swap a dead
// router for a live one), retrying each until it gets a 202 as a provider
// does. progress is called after each 202 with the count so far; a test
// injects its faults from it.
func drive(t *testing.T, urls func() []string, secret, prefix string, n, workers int, progress func(accepted int64)) *load {
	t.Helper()
	return driveFrom(t, urls, secret, prefix, 0, n, workers, progress)
}

// driveFrom is drive for the delivery ids prefix-from..from+n-1.
func driveFrom(t *testing.T, urls func() []string, secret, prefix string, from, n, workers int, progress func(accepted int64)) *load {
	t.Helper()
	body := samplePush(t)
	l := &load{deliveries: n}
	client := &http.Client{Timeout: 15 * time.Second}
	next := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range workers {
		wg.Go(func() {
			for i := range next {
				delivery := fmt.Sprintf("%s-%d", prefix, i)
				deadline := time.Now().Add(3 * time.Minute)
				for attempt := w + i; ; attempt++ {
					if time.Now().After(deadline) {
						failed.Store(fmt.Sprintf("delivery %s never accepted (%s)", delivery, l))
						break
					}
					list := urls()
					code, err := postPush(client, list[attempt%len(list)], secret, delivery, body)
					if err != nil {
						l.refused.Add(1)
						time.Sleep(50 * time.Millisecond)
						continue
					}
					if code == http.StatusServiceUnavailable {
						l.unavailable.Add(1)
						time.Sleep(100 * time.Millisecond)
						continue
					}
					if code != http.StatusAccepted {
						failed.Store(fmt.Sprintf("delivery %s: status %d", delivery, code))
						break
					}
					if progress != nil {
						progress(l.accepted.Add(1))
					} else {
						l.accepted.Add(1)
					}
					break
				}
			}
		})
	}
	for i := range n {
		next <- from + i
	}
	close(next)
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		t.Fatal(msg)
	}
	return l
}

func postPush(client *http.Client, url, secret, delivery string, body []byte) (int, error) {
	body = perDelivery(body, delivery)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url+"/v1/hooks/github", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// checkOnePerDelivery waits until ns holds exactly one PipelineRun per
// delivery prefix-0..n-1 and none other (waitForRuns fails on more), and
// counts again once every work message on the NATS server at natsURL was
// acknowledged, so no later redelivery can add one.
func checkOnePerDelivery(t *testing.T, ns, prefix string, n int, within time.Duration, natsURL string) {
	t.Helper()
	runs := waitForRunsSettled(t, adminTekton(t), ns, n, within, natsAddr{url: natsURL})
	seen := map[string]int{}
	for _, pr := range runs {
		seen[pr.Labels["switchyard.dev/event-id"]]++
	}
	for i := range n {
		if id := fmt.Sprintf("%s-%d", prefix, i); seen[id] != 1 {
			t.Errorf("delivery %s has %d PipelineRuns, want 1", id, seen[id])
		}
	}
}

// TestNATSKilledWhileWebhooksArrive: the broker is killed with SIGKILL and
// restarted while webhooks arrive. During the outage the router answers
// 503 (never a 202 it then loses); after it, every delivery has exactly one
// PipelineRun.
func TestNATSKilledWhileWebhooksArrive(t *testing.T) {
	ctx := context.Background()
	const ns, n = "e2e-nats-kill", 60
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	natsProc := startNATSProcess(t)
	secret := newSecret(t)
	r := startRouter(t, routerConfig{rulesDir: rulesFor(t, ns, ""), dataDir: t.TempDir(), kubeconfig: kubeconfig, natsURL: natsProc.url, secret: secret})

	var once sync.Once
	outage := make(chan struct{})
	l := drive(t, func() []string { return []string{r.url} }, secret, "natskill", n, 4, func(accepted int64) {
		if accepted == n/3 {
			once.Do(func() {
				natsProc.kill()
				go func() {
					// Webhooks keep arriving during the outage, which
					// outlasts the router's publish timeout (5s): requests
					// waiting on it get 503, not a late 202.
					time.Sleep(7 * time.Second)
					natsProc.start()
					close(outage)
				}()
			})
		}
	})
	<-outage
	t.Logf("nats-server killed and restarted: %s", l)
	if l.unavailable.Load() == 0 {
		t.Error("no 503 during the broker outage: webhooks were answered without being stored")
	}
	checkOnePerDelivery(t, ns, "natskill", n, 2*time.Minute, natsProc.url)
	checkAuditedOnce(t, natsAddr{url: natsProc.url}, "natskill", n, 30*time.Second)
	r.stop()
}

// checkAuditedOnce waits until every delivery prefix-0 … prefix-(n-1) has
// an "accepted" audit record, and fails when one has two first
// acceptances (records not marked "duplicate"): also the deliveries
// answered just before the broker was killed, whose records the router's
// writer publishes again once it is back. A delivery may have only a
// "duplicate" acceptance: an attempt whose writes reached the broker but
// whose acks were lost with it was answered 503, and the sender's retry
// found the event stored.
func checkAuditedOnce(t *testing.T, addr natsAddr, prefix string, n int, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	q := addr.attach(t)
	var missing []string
	deadline := time.Now().Add(within)
	for {
		first, again := map[string]int{}, map[string]int{}
		if err := q.AuditRecords(ctx, time.Time{}, func(rec policy.Record) bool {
			switch {
			case rec.Decision != policy.DecisionAccepted:
			case rec.Reason == "duplicate":
				again[rec.EventID]++
			default:
				first[rec.EventID]++
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		missing = missing[:0]
		for i := range n {
			id := fmt.Sprintf("%s-%d", prefix, i)
			if first[id] > 1 {
				t.Fatalf("delivery %s has %d first accepted audit records, want 1", id, first[id])
			}
			if first[id]+again[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries answered 202 have no accepted audit record after %s: %v", len(missing), within, missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deadRouterOnce is the address list of a load balancer that has not
// noticed a dead router yet: the first request after the kill still goes
// to it (and is refused), later ones only to the live routers.
type deadRouterOnce struct {
	mu     sync.Mutex
	live   []string
	dead   string
	served bool
}

func (d *deadRouterOnce) kill(dead string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = dead
	d.live = slices.DeleteFunc(d.live, func(u string) bool { return u == dead })
}

func (d *deadRouterOnce) add(url string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.live = append(d.live, url)
}

func (d *deadRouterOnce) urls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead != "" && !d.served {
		d.served = true
		return []string{d.dead}
	}
	return slices.Clone(d.live)
}

// TestThreeRoutersOneKilled: three routers share one NATS server; one is
// killed with SIGKILL under load while it holds unacknowledged work (its
// API server creates are held by a proxy). The sender fails over to the
// others, the killed router's work is redelivered to them, and every
// delivery yields exactly one PipelineRun.
func TestThreeRoutersOneKilled(t *testing.T) {
	ctx := context.Background()
	const ns, n = "e2e-scale-out", 90
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	natsProc := startNATSProcess(t)
	secret := newSecret(t)
	rules := rulesFor(t, ns, "")
	// The victim's creates never reach the API server: all it takes stays
	// unacknowledged until it dies.
	proxy, victimConfig := viaProxy(t, kubeconfig)
	proxy.Hold()
	// The victim starts alone, so the work of the first half is its own
	// (replicas with free dispatch slots would otherwise take it all
	// before the victim's first fetch); the others join once it holds work.
	routers := []*router{startRouter(t, routerConfig{rulesDir: rules, dataDir: t.TempDir(), kubeconfig: victimConfig, natsURL: natsProc.url, secret: secret})}
	lb := &deadRouterOnce{live: []string{routers[0].url}}
	before := drive(t, lb.urls, secret, "scale", n/2, 6, nil)
	waitUntil(t, "the victim router to hold work", time.Minute, func() bool { return proxy.Counts().Held > 0 })
	for range 2 {
		r := startRouter(t, routerConfig{rulesDir: rules, dataDir: t.TempDir(), kubeconfig: kubeconfig, natsURL: natsProc.url, secret: secret})
		routers = append(routers, r)
		lb.add(r.url)
	}
	routers[0].kill()
	lb.kill(routers[0].url)
	after := driveFrom(t, lb.urls, secret, "scale", n/2, n-n/2, 6, nil)
	t.Logf("three routers, one killed: before %s; after %s; victim's creates: %s", before, after, proxy.Counts())
	if after.refused.Load() == 0 {
		t.Error("no request was refused by the killed router: nothing failed over")
	}
	waitUntil(t, "the victim's held creates to die with it", 30*time.Second, func() bool {
		c := proxy.Counts()
		return c.Abandoned == c.Held
	})
	checkOnePerDelivery(t, ns, "scale", n, 2*time.Minute, natsProc.url)
	if c := proxy.Counts(); len(c.Created) != 0 {
		t.Errorf("the victim created %v: it was meant to hold all its work", c.Created)
	}
	var dispatched float64
	for _, r := range routers[1:] {
		r.stop()
		recs := r.logs.records("stopped")
		if len(recs) != 1 {
			t.Fatalf("no stopped record:\n%s", r.logs.String())
		}
		dispatched += recs[0]["created"].(float64)
	}
	// Every run came from the survivors, including the victim's work.
	if dispatched != n {
		t.Errorf("the surviving routers created %v runs, want all %d", dispatched, n)
	}
}

// TestSoak drives SWITCHYARD_SOAK signed webhooks (300 by default; the
// figures in docs/reliability.md come from 3000) through three routers on
// one nats-server process while faults are injected: at a quarter a router
// is killed with SIGKILL, at half the nats-server is killed and restarted,
// at three quarters a new router replaces the dead one. Then it counts.
func TestSoak(t *testing.T) {
	n := 300
	if v := os.Getenv("SWITCHYARD_SOAK"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 8 {
			t.Fatalf("SWITCHYARD_SOAK=%q: want a number of webhooks >= 8", v)
		}
	}
	ctx := context.Background()
	const ns = "e2e-soak"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	natsProc := startNATSProcess(t)
	secret := newSecret(t)
	cfg := routerConfig{rulesDir: rulesFor(t, ns, ""), kubeconfig: kubeconfig, natsURL: natsProc.url, secret: secret}
	start := func() *router {
		c := cfg
		c.dataDir = t.TempDir()
		return startRouter(t, c)
	}
	var mu sync.Mutex
	routers := []*router{start(), start(), start()}
	lb := &deadRouterOnce{live: []string{routers[0].url, routers[1].url, routers[2].url}}
	var faults sync.WaitGroup
	var q1, q2, q3 sync.Once
	began := time.Now()
	l := drive(t, lb.urls, secret, "soak", n, 8, func(accepted int64) {
		switch accepted {
		case int64(n / 4):
			q1.Do(func() {
				mu.Lock()
				dead := routers[0]
				routers = routers[1:]
				mu.Unlock()
				dead.kill()
				lb.kill(dead.url)
			})
		case int64(n / 2):
			q2.Do(func() {
				natsProc.kill()
				faults.Go(func() {
					time.Sleep(7 * time.Second)
					natsProc.start()
				})
			})
		case int64(3 * n / 4):
			q3.Do(func() {
				faults.Go(func() {
					r := start()
					mu.Lock()
					routers = append(routers, r)
					mu.Unlock()
					lb.add(r.url)
				})
			})
		}
	})
	faults.Wait()
	accepted := time.Since(began)
	// The faults were felt: the killed router refused a request, and the
	// broker outage (longer than the publish timeout) answered 503s.
	if l.refused.Load() == 0 {
		t.Error("no refused connection after the router was killed")
	}
	if l.unavailable.Load() == 0 {
		t.Error("no 503 during the broker outage")
	}
	checkOnePerDelivery(t, ns, "soak", n, 5*time.Minute, natsProc.url)
	all := time.Since(began)
	mu.Lock()
	live := routers
	mu.Unlock()
	var created, existed float64
	for _, r := range live {
		r.stop()
		if recs := r.logs.records("stopped"); len(recs) == 1 {
			created += recs[0]["created"].(float64)
			existed += recs[0]["existed"].(float64)
		}
	}
	t.Logf("soak: %s; PipelineRuns=%d duplicates=0; all accepted in %s, all created in %s; "+
		"created by the routers alive at the end=%v (the killed router created the rest), AlreadyExists answers=%v",
		l, n, accepted.Round(time.Millisecond), all.Round(time.Millisecond), created, existed)
	if l.accepted.Load() != int64(n) {
		t.Fatalf("accepted %d of %d", l.accepted.Load(), n)
	}
}
