package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

const testToken = "ghp_testToken0123456789"

// testRules is a manifest whose source "github" reports statuses to apiURL.
func testRules(t *testing.T, kind, apiURL string) *routing.Rules {
	t.Helper()
	root := fmt.Sprintf(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: %s
    secret: {env: HOOK_SECRET}
    apiToken: {env: API_TOKEN}
    apiURL: %s
    report: status
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci]
    sources: [github]
statusURL: "https://dashboard.example.com/#/namespaces/{namespace}/pipelineruns/{name}"
`, kind, apiURL)
	env := map[string]string{"HOOK_SECRET": "s", "API_TOKEN": testToken}
	rules, err := routing.Load(fstest.MapFS{"root.yaml": {Data: []byte(root)}, "apps/web.yaml": {Data: []byte(reportApp)}}, "rules",
		routing.Options{ResolveSecrets: true, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

const reportApp = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    run: {pipelineRef: build}
`

// testQueue starts an embedded JetStream server and opens the report queue.
func testQueue(t *testing.T) (*Queue, *nats.Conn) {
	t.Helper()
	e, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := OpenQueue(context.Background(), nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	return q, nc
}

// scriptedHost answers status posts with the codes given, then 201.
type scriptedHost struct {
	mu     sync.Mutex
	codes  []int
	posted []string // state of each request answered 2xx
	tries  int
	srv    *httptest.Server
}

func newScriptedHost(t *testing.T, codes ...int) *scriptedHost {
	h := &scriptedHost{codes: codes}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ State string }
		_ = jsonDecode(r, &body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.tries++
		code := http.StatusCreated
		if len(h.codes) > 0 {
			code, h.codes = h.codes[0], h.codes[1:]
		}
		if code/100 == 2 {
			h.posted = append(h.posted, body.State)
		}
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, `{"message":"answer %d for %s"}`, code, r.Header.Get("Authorization"))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *scriptedHost) snapshot() (tries int, posted []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tries, append([]string(nil), h.posted...)
}

func testJob(state string) Job {
	return Job{Kind: KindStatus, State: state, Description: "PipelineRun web-build-1 " + state, Time: time.Now().UTC(),
		Run: Run{UID: "0b5c6a1e-1111-4c2e-9d7a-5f0e6d2c1a01", Namespace: "ci", Name: "web-build-1", App: "web", Trigger: "build",
			Source: "github", Repository: "acme/shop", Revision: "9fceb02d0ae598e95dc970b74767f19372d61af8", EventID: "d-1",
			EventSource: "https://github.com/acme/shop"}}
}

// runSender runs a sender until the test ends and returns its log.
func runSender(t *testing.T, q *Queue, rules *routing.Rules, m *Metrics, audit func(policy.Record)) *bytes.Buffer {
	t.Helper()
	var logs syncBuffer
	s := NewSender(q, SenderConfig{Rules: func() *routing.Rules { return rules }, Metrics: m, Audit: audit,
		Logger:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, AckWait: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &logs.buf
}

// drained waits until the status consumer holds nothing: every report was
// acknowledged or dropped.
func drained(t *testing.T, q *Queue, kind string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := q.js.Consumer(context.Background(), Stream, ConsumerPrefix+kind)
		if err == nil {
			info, err := c.Info(context.Background())
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer > 0 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("report consumer %s not drained", kind)
}

func TestSenderRetries5xxAndPostsOnce(t *testing.T) {
	q, _ := testQueue(t)
	host := newScriptedHost(t, http.StatusBadGateway, http.StatusServiceUnavailable)
	m, _ := NewMetrics(prometheus.NewRegistry())
	logs := runSender(t, q, testRules(t, "github", host.srv.URL), m, nil)
	ctx := context.Background()
	// Two watchers publish the same transition: stored once.
	for range 2 {
		if err := q.Publish(ctx, testJob(StatePending)); err != nil {
			t.Fatal(err)
		}
	}
	drained(t, q, KindStatus)
	tries, posted := host.snapshot()
	if tries != 3 || len(posted) != 1 || posted[0] != StatePending {
		t.Fatalf("host saw %d tries, posted %v; want 3 tries, [pending]", tries, posted)
	}
	if got := testutil.ToFloat64(m.reports.WithLabelValues("github", ResultRetried)); got != 2 {
		t.Errorf("retried = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.reports.WithLabelValues("github", ResultPosted)); got != 1 {
		t.Errorf("posted = %v, want 1", got)
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("log holds the token:\n%s", logs)
	}
}

func TestSenderDropsRejectedOnce(t *testing.T) {
	q, _ := testQueue(t)
	host := newScriptedHost(t, http.StatusForbidden)
	m, _ := NewMetrics(prometheus.NewRegistry())
	var mu sync.Mutex
	var audits []policy.Record
	logs := runSender(t, q, testRules(t, "github", host.srv.URL), m, func(r policy.Record) { mu.Lock(); audits = append(audits, r); mu.Unlock() })
	if err := q.Publish(context.Background(), testJob(StateSuccess)); err != nil {
		t.Fatal(err)
	}
	drained(t, q, KindStatus)
	if tries, posted := host.snapshot(); tries != 1 || len(posted) != 0 {
		t.Fatalf("host saw %d tries, posted %v; want one refused try", tries, posted)
	}
	if got := testutil.ToFloat64(m.reports.WithLabelValues("github", ResultRejected)); got != 1 {
		t.Errorf("rejected = %v, want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(audits) != 1 || audits[0].Decision != DecisionRejected || audits[0].Status != http.StatusForbidden || audits[0].EventID != "d-1" {
		t.Errorf("audit records %+v", audits)
	}
	out := logs.String()
	if !strings.Contains(out, "report rejected") || !strings.Contains(out, "403") {
		t.Errorf("log does not say why:\n%s", out)
	}
	if strings.Contains(out, testToken) || strings.Contains(audits[0].Reason, testToken) {
		t.Errorf("token in the log or audit:\n%s\n%s", out, audits[0].Reason)
	}
}

// TestSenderNeverPostsPendingAfterFinal: a pending report handled after the
// final state was posted (a slow watcher, a redelivery) is skipped, and a
// repeated final state is not posted again.
func TestSenderNeverPostsPendingAfterFinal(t *testing.T) {
	q, _ := testQueue(t)
	host := newScriptedHost(t)
	runSender(t, q, testRules(t, "github", host.srv.URL), nil, nil)
	ctx := context.Background()
	if err := q.Publish(ctx, testJob(StateSuccess)); err != nil {
		t.Fatal(err)
	}
	drained(t, q, KindStatus)
	late := testJob(StatePending)
	if err := q.Publish(ctx, late); err != nil {
		t.Fatal(err)
	}
	// The same final state again under another id (past the duplicate
	// window): the bucket stops it.
	again := testJob(StateSuccess)
	data, _ := jsonMarshal(again)
	if _, err := q.js.Publish(ctx, SubjectPrefix+KindStatus, data, jetstream.WithMsgID("other-id")); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, q, KindStatus, 3)
	drained(t, q, KindStatus)
	if tries, posted := host.snapshot(); tries != 1 || len(posted) != 1 || posted[0] != StateSuccess {
		t.Fatalf("host saw %d tries, posted %v; want [success] only", tries, posted)
	}
}

// waitDelivered waits until the consumer delivered n messages.
func waitDelivered(t *testing.T, q *Queue, kind string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := q.js.Consumer(context.Background(), Stream, ConsumerPrefix+kind)
		if err == nil {
			if info, err := c.Info(context.Background()); err == nil && info.AckFloor.Stream >= n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("consumer %s did not settle %d messages", kind, n)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }
func jsonMarshal(v any) ([]byte, error)       { return json.Marshal(v) }
