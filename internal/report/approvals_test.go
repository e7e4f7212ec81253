package report

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// statusHost records each commit status posted: state, context and
// description.
type statusHost struct {
	mu     sync.Mutex
	posted []map[string]string
	srv    *httptest.Server
}

func newStatusHost(t *testing.T) *statusHost {
	h := &statusHost{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = jsonDecode(r, &body)
		body["path"] = r.URL.Path
		h.mu.Lock()
		h.posted = append(h.posted, body)
		h.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprint(w, `{}`)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *statusHost) snapshot() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]string(nil), h.posted...)
}

// waitPosted waits until the host has n statuses.
func (h *statusHost) waitPosted(t *testing.T, n int) []map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := h.snapshot(); len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("host has %v, want %d statuses", h.snapshot(), n)
	return nil
}

// gatedRules reports statuses (report) to apiURL; app web's build trigger
// is held by a gate carol approves.
func gatedRules(t *testing.T, report, apiURL string) *routing.Rules {
	t.Helper()
	root := fmt.Sprintf(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: HOOK_SECRET}
    apiToken: {env: API_TOKEN}
    apiURL: %s
    report: status
    commands: {approve: [carol]}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci]
    sources: [github]
    approval: {triggers: [build], approvers: ["source:github/carol"], timeout: 1h}
`, apiURL)
	if report == routing.ReportChecks {
		root = strings.Replace(root, "report: status", "report: checks\n    githubApp: {appID: 12, installationID: 77, privateKey: {env: APP_KEY}}", 1)
	}
	env := map[string]string{"HOOK_SECRET": "s", "API_TOKEN": testToken, "APP_KEY": string(testAppKey(t))}
	rules, err := routing.Load(fstest.MapFS{"root.yaml": {Data: []byte(root)}, "apps/web.yaml": {Data: []byte(reportApp)}}, "rules",
		routing.Options{ResolveSecrets: true, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// heldPush is a push of acme/shop at a commit whose web/build target the
// gate holds.
func heldPush(id string) policy.Accepted {
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("https://github.com/acme/shop")
	ev.SetType("dev.switchyard.git.push")
	ev.SetExtension("repository", "acme/shop")
	ev.SetExtension("revision", "9fceb02d0ae598e95dc970b74767f19372d61af8")
	ev.SetExtension("identity", "source:github")
	ev.SetExtension("principal", "mallory")
	_ = ev.SetData(event.ApplicationJSON, map[string]any{"ref": "refs/heads/main"})
	return policy.Accepted{Source: "github", Event: ev,
		Targets: []routing.Target{{App: "web", Trigger: "build", Namespace: "ci", Name: "web-build-" + id}},
		Hold:    &policy.Hold{Gates: []string{"apps[web].approval"}, Targets: []string{"web/build"}, Deadline: time.Now().Add(time.Hour).UTC()}}
}

// approvalSetup opens the event queue and the report queue on one embedded
// JetStream server and runs an approval watcher and a sender on them.
func approvalSetup(t *testing.T, rules *routing.Rules) (*queue.Queue, *Queue) {
	t.Helper()
	rq, nc := testQueue(t)
	ctx := context.Background()
	q, err := queue.Open(ctx, nc, queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSender(rq, SenderConfig{Rules: func() *routing.Rules { return rules }, Approvals: q,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, AckWait: 5 * time.Second})
	w := NewApprovalWatcher(ApprovalWatcherConfig{Store: q, Rules: func() *routing.Rules { return rules }, Publisher: rq,
		Status: func(src string) bool { return rules.Source(src) != nil && rules.Source(src).Report != "" }, Retry: 50 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = s.Run(runCtx) }()
	go func() { defer wg.Done(); _ = w.Run(runCtx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return q, rq
}

// TestApprovalStatuses: a held target's commit shows "awaiting approval by
// <approvers>" (pending, on the trigger's context); a rejection posts a
// failure naming who rejected it, an expiry an error; each once, through
// the report queue.
func TestApprovalStatuses(t *testing.T) {
	host := newStatusHost(t)
	q, rq := approvalSetup(t, gatedRules(t, routing.ReportStatus, host.srv.URL))
	ctx := context.Background()
	for _, id := range []string{"held-reject", "held-expire"} {
		if err := q.Publish(ctx, heldPush(id)); err != nil {
			t.Fatal(err)
		}
	}
	got := host.waitPosted(t, 2)
	for _, p := range got {
		if p["state"] != StatePending || p["context"] != "switchyard/web/build" || p["description"] != "awaiting approval by source:github/carol" ||
			p["path"] != "/repos/acme/shop/statuses/9fceb02d0ae598e95dc970b74767f19372d61af8" {
			t.Errorf("held status %v", p)
		}
	}
	if _, err := q.Decide(ctx, queue.Decision{Source: "github", EventID: "held-reject", By: "source:github carol", Reason: "not today"}); err != nil {
		t.Fatal(err)
	}
	got = host.waitPosted(t, 3)
	if p := got[2]; p["state"] != StateFailure || p["description"] != "rejected by source:github carol: not today" {
		t.Errorf("rejected status %v", p)
	}
	if _, err := q.SweepApprovals(ctx, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got = host.waitPosted(t, 4)
	if p := got[3]; p["state"] != StateError || !strings.HasPrefix(p["description"], "approval expired") {
		t.Errorf("expired status %v", p)
	}
	// A watcher started again (a router restart) replays the bucket:
	// nothing is posted twice.
	w := NewApprovalWatcher(ApprovalWatcherConfig{Store: q, Publisher: rq, Status: func(string) bool { return true }})
	ctx2, cancel := context.WithCancel(ctx)
	kw, err := q.WatchApprovals(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	for e := range kw.Updates() {
		if e == nil {
			break // the current values are replayed
		}
		w.observe(ctx2, e)
	}
	cancel()
	waitDelivered(t, rq, KindStatus, 4)
	drained(t, rq, KindStatus)
	if n := len(host.snapshot()); n != 4 {
		t.Errorf("%d statuses after a replay, want 4: %v", n, host.snapshot())
	}
}

// TestApprovedHeldStatusIsNotPostedLate: an "awaiting approval" status
// still queued when the event is approved is skipped: the run's own
// statuses follow on that context, and a late pending must not cover them.
func TestApprovedHeldStatusIsNotPostedLate(t *testing.T) {
	host := newStatusHost(t)
	rules := gatedRules(t, routing.ReportStatus, host.srv.URL)
	rq, nc := testQueue(t)
	ctx := context.Background()
	q, err := queue.Open(ctx, nc, queue.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, heldPush("held-ok")); err != nil {
		t.Fatal(err)
	}
	recs, err := q.Approvals(ctx, "github", "held-ok")
	if err != nil {
		t.Fatal(err)
	}
	jobs := heldJobs(recs[0], []string{"source:github/carol"}, time.Now())
	if _, err := q.Decide(ctx, queue.Decision{Source: "github", EventID: "held-ok", Approve: true, By: "source:github carol"}); err != nil {
		t.Fatal(err)
	}
	approved, _ := q.Approvals(ctx, "github", "held-ok")
	if len(heldJobs(approved[0], nil, time.Now())) != 0 {
		t.Errorf("an approved event calls for statuses of its own")
	}
	if len(jobs) != 1 {
		t.Fatalf("jobs %+v", jobs)
	}
	if err := rq.Publish(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}
	s := NewSender(rq, SenderConfig{Rules: func() *routing.Rules { return rules }, Approvals: q})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitDelivered(t, rq, KindStatus, 1)
	drained(t, rq, KindStatus)
	if got := host.snapshot(); len(got) != 0 {
		t.Errorf("posted %v after the approval", got)
	}
}

// TestHeldCheckRunIsTakenOverByTheRun: with report: checks, a held target
// gets a queued check run titled "awaiting approval ..."; the run its
// approval releases updates that check run instead of adding a second.
func TestHeldCheckRunIsTakenOverByTheRun(t *testing.T) {
	host := newChecksHost(t)
	rules := gatedRules(t, routing.ReportChecks, host.srv.URL+"/api/v3")
	q, rq := approvalSetup(t, rules)
	ctx := context.Background()
	if err := q.Publish(ctx, heldPush("d-1")); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, rq, KindStatus, 1)
	drained(t, rq, KindStatus)
	if _, err := q.Decide(ctx, queue.Decision{Source: "github", EventID: "d-1", Approve: true, By: "source:github carol"}); err != nil {
		t.Fatal(err)
	}
	if err := rq.Publish(ctx, testJob(StatePending)); err != nil { // the released run, as the run watcher sees it
		t.Fatal(err)
	}
	waitDelivered(t, rq, KindStatus, 2)
	drained(t, rq, KindStatus)
	host.mu.Lock()
	defer host.mu.Unlock()
	if len(host.bodies) != 2 {
		t.Fatalf("check run requests %v", host.requests)
	}
	held := host.bodies[0]
	output, _ := held["output"].(map[string]any)
	if held["status"] != "queued" || held["name"] != "switchyard/web/build" || output["title"] != "awaiting approval by source:github/carol" {
		t.Errorf("held check run %v", held)
	}
	if last := host.requests[len(host.requests)-1]; last != "PATCH /api/v3/repos/acme/shop/check-runs/42" || host.bodies[1]["status"] != "in_progress" {
		t.Errorf("the run's check run: %s %v (all %v)", last, host.bodies[1], host.requests)
	}
}

// TestHeldJobsNeedARevision: an event without a commit has nowhere to show
// a status.
func TestHeldJobsNeedARevision(t *testing.T) {
	a := heldPush("x")
	ev := a.Event.Clone()
	ev.SetExtension("revision", nil)
	rec := policy.Approval{Source: "github", Event: ev, Targets: a.Targets, State: policy.StateAwaitingApproval}
	if jobs := heldJobs(rec, nil, time.Now()); len(jobs) != 0 {
		t.Errorf("jobs %+v", jobs)
	}
}

// testAppKey is a GitHub App private key (PEM), made once per test binary.
func testAppKey(t *testing.T) []byte {
	t.Helper()
	appKeyOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err) // crypto/rand does not fail
		}
		appKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	})
	return appKeyPEM
}

var (
	appKeyOnce sync.Once
	appKeyPEM  []byte
)

// TestHeldStatusRetriesAndDrops: an "awaiting approval" status goes
// through the report queue like a run's: a 5xx is retried and the state
// posted once, a 4xx is reported once and dropped.
func TestHeldStatusRetriesAndDrops(t *testing.T) {
	for _, tc := range []struct {
		name         string
		codes        []int
		tries, posts int
	}{
		{"5xx retried", []int{http.StatusBadGateway, http.StatusServiceUnavailable}, 3, 1},
		{"4xx dropped", []int{http.StatusForbidden}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := newScriptedHost(t, tc.codes...)
			q, rq := approvalSetup(t, gatedRules(t, routing.ReportStatus, host.srv.URL))
			if err := q.Publish(context.Background(), heldPush("held-"+tc.name[:3])); err != nil {
				t.Fatal(err)
			}
			waitDelivered(t, rq, KindStatus, 1)
			drained(t, rq, KindStatus)
			if tries, posted := host.snapshot(); tries != tc.tries || len(posted) != tc.posts {
				t.Fatalf("host saw %d tries, posted %v; want %d tries, %d posted", tries, posted, tc.tries, tc.posts)
			}
		})
	}
}
