// Package integration runs the webhook path in one process against a real
// embedded NATS JetStream server: HTTP -> ingest -> routing -> queue ->
// dispatch -> a client-go fake of the Tekton API. The real API server is
// exercised in test/e2e.
package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	"golang.org/x/net/http/httpguts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

type harness struct {
	t       testing.TB
	secret  []byte
	url     string
	nats    *queue.Embedded
	tekton  *fake.Clientset
	js      jetstream.JetStream
	q       *queue.Queue
	samples map[string][]byte
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	secretBytes := make([]byte, 32)
	if _, err := rand.Read(secretBytes); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, secret: []byte(hex.EncodeToString(secretBytes)), samples: map[string][]byte{}}
	for _, name := range []string{"push.json", "push-tag.json", "ping.json", "issues.json"} {
		data, err := os.ReadFile("../testdata/github/" + name)
		if err != nil {
			t.Fatal(err)
		}
		h.samples[name] = data
	}

	// The shipped example rules, with the secret the test generated.
	opts := ingest.LoadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) {
		if name == "GITHUB_WEBHOOK_SECRET" {
			return string(h.secret), true
		}
		return "", false
	}
	rules, err := routing.LoadDir("../../rules", opts)
	if err != nil {
		t.Fatal(err)
	}

	h.nats, err = queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.nats.Shutdown)
	nc, err := h.nats.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if h.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q, err := queue.Open(ctx, nc, queue.Config{PublishTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}

	h.tekton = fake.NewSimpleClientset()
	d := dispatch.New(dispatch.NewKubeCreatorForClient(h.tekton), nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = q.Consume(ctx, queue.ConsumerConfig{BackoffBase: 10 * time.Millisecond}, d.Handle)
	}()
	t.Cleanup(func() { cancel(); <-done })

	h.q = q
	srv := httptest.NewServer(ingest.NewServer(ingest.Config{
		Rules: routing.NewHolder(rules), Publisher: q, Ready: q.Ready, MaxBody: 1 << 20, Audit: q.Audit,
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// waitForAudit waits, up to ten seconds, for an audit record that ok
// accepts.
func (h *harness) waitForAudit(ok func(policy.Record) bool) {
	h.t.Helper()
	var seen []policy.Record
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		seen = seen[:0]
		found := false
		err := h.q.AuditRecords(context.Background(), time.Time{}, func(r policy.Record) bool {
			seen = append(seen, r)
			found = ok(r)
			return !found
		})
		if err != nil {
			h.t.Fatal(err)
		}
		if found {
			return
		}
	}
	h.t.Fatalf("no such audit record; records: %+v", seen)
}

func (h *harness) sign(body []byte) string {
	mac := hmac.New(sha256.New, h.secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

type delivery struct {
	path        string
	event       string
	id          string
	body        []byte
	signature   string // "" means sign correctly; "-" means no header
	contentType string
	method      string
}

func (h *harness) send(d delivery) (*http.Response, []byte) {
	h.t.Helper()
	if d.path == "" {
		d.path = "/v1/hooks/github"
	}
	if d.method == "" {
		d.method = http.MethodPost
	}
	req, err := http.NewRequest(d.method, h.url+d.path, bytes.NewReader(d.body))
	if err != nil {
		h.t.Fatal(err)
	}
	ct := d.contentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-GitHub-Event", d.event)
	req.Header.Set("X-GitHub-Delivery", d.id)
	switch d.signature {
	case "":
		req.Header.Set("X-Hub-Signature-256", h.sign(d.body))
	case "-":
	default:
		req.Header.Set("X-Hub-Signature-256", d.signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func (h *harness) pipelineRuns(ns string) []pipelinev1.PipelineRun {
	h.t.Helper()
	list, err := h.tekton.TektonV1().PipelineRuns(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return list.Items
}

// waitForRun polls until the named PipelineRun exists.
func (h *harness) waitForRun(ns, name string) *pipelinev1.PipelineRun {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pr, err := h.tekton.TektonV1().PipelineRuns(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			return pr
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("PipelineRun %s/%s was never created", ns, name)
	return nil
}

func TestWebhookStatusCodes(t *testing.T) {
	h := newHarness(t)
	push := h.samples["push.json"]
	big := append([]byte(`{"ref":"refs/heads/main","pad":"`), bytes.Repeat([]byte("x"), 1<<20)...)
	big = append(big, `"}`...)

	tests := []struct {
		name    string
		d       delivery
		status  int
		errWant string
	}{
		{name: "push accepted", d: delivery{event: "push", id: "status-1", body: push}, status: 202},
		{name: "ping", d: delivery{event: "ping", id: "status-2", body: h.samples["ping.json"]}, status: 200},
		{name: "unrouted event still accepted", d: delivery{event: "issues", id: "status-3", body: h.samples["issues.json"]}, status: 202},
		{name: "missing signature", d: delivery{event: "push", id: "status-4", body: push, signature: "-"}, status: 401, errWant: "missing X-Hub-Signature-256"},
		{name: "bad signature", d: delivery{event: "push", id: "status-5", body: push, signature: "sha256=" + strings.Repeat("0", 64)}, status: 401, errWant: "does not match"},
		{name: "malformed json", d: delivery{event: "push", id: "status-6", body: []byte(`{"ref": "refs/heads/main",`)}, status: 400, errWant: "not valid JSON"},
		{name: "too large", d: delivery{event: "push", id: "status-7", body: big}, status: 413, errWant: "too large"},
		{name: "unknown source", d: delivery{path: "/v1/hooks/nope", event: "push", id: "status-8", body: push}, status: 404, errWant: "no source named"},
		{name: "unsupported media type", d: delivery{event: "push", id: "status-9", body: []byte("<xml/>"), contentType: "application/xml"}, status: 415},
		{name: "wrong method", d: delivery{event: "push", id: "status-10", method: http.MethodGet}, status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.send(tt.d)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if tt.errWant != "" && !strings.Contains(string(body), tt.errWant) {
				t.Errorf("body %s does not say %q", body, tt.errWant)
			}
		})
	}

	// Nothing refused was queued: only the accepted push produced a run.
	pr := h.waitForRun("ci", routing.PipelineRunName("web", "build", "github", "status-1"))
	if got := len(h.pipelineRuns("ci")); got != 1 {
		t.Errorf("%d PipelineRuns in ci, want 1", got)
	}
	if pr.Spec.PipelineRef.Name != "build-and-test" {
		t.Errorf("pipelineRef = %q", pr.Spec.PipelineRef.Name)
	}
}

func TestAcceptedBodyNamesTargets(t *testing.T) {
	h := newHarness(t)
	resp, body := h.send(delivery{event: "push", id: "body-1", body: h.samples["push.json"]})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got ingest.AcceptedResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := []ingest.TargetRef{{App: "web", Trigger: "build", Namespace: "ci", Name: routing.PipelineRunName("web", "build", "github", "body-1")}}
	if got.ID != "body-1" || len(got.Targets) != 1 || got.Targets[0] != want[0] {
		t.Fatalf("202 body = %s, want id body-1 and targets %+v", body, want)
	}
	pr := h.waitForRun("ci", want[0].Name)
	if err := pr.Validate(context.Background()); err != nil {
		t.Errorf("created PipelineRun fails Tekton validation: %v", err)
	}
	if pr.Annotations["switchyard.dev/event-id"] != "body-1" || pr.Labels["switchyard.dev/app"] != "web" {
		t.Errorf("labels %v annotations %v", pr.Labels, pr.Annotations)
	}
}

func TestSameDeliveryTwiceMakesOneRun(t *testing.T) {
	h := newHarness(t)
	push := h.samples["push.json"]
	for i := 0; i < 3; i++ {
		if resp, body := h.send(delivery{event: "push", id: "dup-1", body: push}); resp.StatusCode != 202 {
			t.Fatalf("send %d: %d %s", i, resp.StatusCode, body)
		}
	}
	// Another push (another body) under a new delivery id is a new event.
	other := append([]byte(`{"test_push":2,`), bytes.TrimLeft(push, " \t\r\n")[1:]...)
	if resp, _ := h.send(delivery{event: "push", id: "dup-2", body: other}); resp.StatusCode != 202 {
		t.Fatal("second delivery refused")
	}
	// The first body under a new delivery id is a captured body replayed:
	// GitHub signs only the body, so it is the first delivery again.
	resp, body := h.send(delivery{event: "push", id: "dup-3", body: push})
	var got ingest.AcceptedResponse
	if resp.StatusCode != 202 || json.Unmarshal(body, &got) != nil || !got.Duplicate {
		t.Fatalf("replayed body under a new id: %d %s, want 202 marked duplicate", resp.StatusCode, body)
	}
	// The answer names what exists: the first delivery and its run, not a
	// run named after dup-3 that nothing will create.
	if first := routing.PipelineRunName("web", "build", "github", "dup-1"); got.ID != "dup-1" || len(got.Targets) != 1 || got.Targets[0].Name != first {
		t.Fatalf("replayed body under a new id answered %s, want id dup-1 and target %s", body, first)
	}
	h.waitForAudit(func(r policy.Record) bool {
		return r.EventID == "dup-3" && strings.Contains(r.Reason, "duplicate of event dup-1")
	})
	h.waitForRun("ci", routing.PipelineRunName("web", "build", "github", "dup-1"))
	h.waitForRun("ci", routing.PipelineRunName("web", "build", "github", "dup-2"))
	if runs := h.pipelineRuns("ci"); len(runs) != 2 {
		t.Fatalf("%d PipelineRuns, want one per delivery", len(runs))
	}
	// Deduplication happened at the queue: the repeats never became work.
	for stream, want := range map[string]uint64{queue.EventsStream: 2, queue.WorkStream: 2} {
		s, err := h.js.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.LastSeq != want {
			t.Errorf("%s stored %d messages, want %d", stream, info.State.LastSeq, want)
		}
	}
}

func TestQueueDownAnswers503(t *testing.T) {
	h := newHarness(t)
	h.nats.Shutdown()
	resp, body := h.send(delivery{event: "push", id: "down-1", body: h.samples["push.json"]})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d (%s), want 503 while JetStream is down", resp.StatusCode, body)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	ready, err := http.Get(h.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while JetStream is down", ready.StatusCode)
	}
}

// TestPublishFailureAnswers503: the queue is up (readiness and the
// accepted-events lookup succeed) but the real server fails the work
// publish, because the work stream no longer takes the app's subject. The
// sender must get 503 with Retry-After, never 500, which it may not retry.
func TestPublishFailureAnswers503(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	s, err := h.js.Stream(ctx, queue.WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Subjects = []string{queue.WorkSubjectPrefix + "no-such-app"}
	if _, err := h.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	resp, body := h.send(delivery{event: "push", id: "publish-fails-1", body: h.samples["push.json"]})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d (%s), want 503 when the work publish fails", resp.StatusCode, body)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// The event itself was stored before the work publish failed: the
	// failure really came after the lookup, from the publish.
	events, err := h.js.Stream(ctx, queue.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := events.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("events stored = %d, want 1 (the event, before its work failed)", n)
	}
}

// FuzzWebhook throws arbitrary bodies, event names and signatures at the
// whole webhook path. Whatever arrives, the answer is one of the documented
// statuses, and nothing unsigned is ever accepted.
func FuzzWebhook(f *testing.F) {
	h := newHarness(f)
	for _, name := range []string{"push.json", "push-tag.json", "ping.json", "issues.json"} {
		f.Add("push", h.samples[name], true, "application/json")
	}
	f.Add("ping", []byte(`{}`), true, "application/x-www-form-urlencoded")
	f.Add("push", []byte(`{"ref":"refs/heads/main","deleted":true}`), false, "application/json")
	f.Add("", []byte(`not json`), true, "text/plain")
	allowed := map[int]bool{200: true, 202: true, 400: true, 401: true, 413: true, 415: true}
	n := 0
	f.Fuzz(func(t *testing.T, event string, body []byte, sign bool, contentType string) {
		n++
		h.t = t
		d := delivery{event: event, id: fmt.Sprintf("fuzz-%d", n), body: body, contentType: contentType}
		if !sign {
			d.signature = "sha256=" + strings.Repeat("ab", 32)
		}
		if !httpguts.ValidHeaderFieldValue(event) || !httpguts.ValidHeaderFieldValue(contentType) {
			return // not a valid HTTP header value: the client refuses to send it
		}
		resp, respBody := h.send(d)
		if !allowed[resp.StatusCode] {
			t.Fatalf("status %d (%s)", resp.StatusCode, respBody)
		}
		if !sign && resp.StatusCode < 300 {
			t.Fatalf("unsigned request answered %d", resp.StatusCode)
		}
		if resp.StatusCode >= 400 && !json.Valid(respBody) {
			t.Fatalf("error body is not JSON: %q", respBody)
		}
	})
}
