package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// memDeferrer keeps deferred webhooks in memory, as the intake stream
// would; fail, when set, is returned and nothing kept.
type memDeferrer struct {
	mu   sync.Mutex
	kept []Deferred
	fail error
}

func (m *memDeferrer) Defer(_ context.Context, d Deferred) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	// A copy, as the stream keeps: the server recycles the body's buffer.
	d.Body = bytes.Clone(d.Body)
	m.kept = append(m.kept, d)
	return nil
}

func (m *memDeferrer) all() []Deferred {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Deferred(nil), m.kept...)
}

// burstServer is the webhook server of newHookServer answering a burst:
// every webhook it may defer is deferred (deferAll), into d.
func burstServer(t *testing.T, sources string, env map[string]string) (*Server, *memStore, *memDeferrer, string) {
	t.Helper()
	store, d := newMemStore(), &memDeferrer{}
	s := NewServer(Config{Rules: routing.NewHolder(mustRules(t, sources, env)), Publisher: store, Audit: store.Audit,
		Deferrer: d, DeferAbove: DefaultDeferAbove, MaxBody: 1 << 20})
	s.deferAll = true
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, store, d, srv.URL
}

func post(t *testing.T, url string, header http.Header, body []byte) (int, []byte) {
	t.Helper()
	h := &hookServer{url: url}
	status, _, out := h.send(t, http.MethodPost, "", header, body)
	return status, out
}

func TestBurstWebhookIsStoredAsReceivedThenJudged(t *testing.T) {
	secret := newSecret(t)
	s, store, d, url := burstServer(t, ghSource, map[string]string{"S": string(secret)})
	push := readSample(t, "github", "push.json")
	hd := githubHeader("push", "d-1")
	hd.Set("X-Hub-Signature-256", signGitHub(secret, push))
	hd.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

	status, body := post(t, url+"/v1/hooks/gh", hd, push)
	if status != http.StatusAccepted {
		t.Fatalf("status %d: %s", status, body)
	}
	var resp AcceptedResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if !resp.Deferred || resp.ID != "" || len(resp.Targets) != 0 || resp.RulesRevision == "" {
		t.Fatalf("202 body %s: want deferred, no event yet, the rules' revision", body)
	}
	// Stored as it came, not yet judged: nothing published, nothing
	// audited.
	kept := d.all()
	if len(kept) != 1 {
		t.Fatalf("%d webhooks deferred, want 1", len(kept))
	}
	if len(store.stored) != 0 || len(store.records()) != 0 {
		t.Fatalf("judged before the answer: %d stored, %d audit records", len(store.stored), len(store.records()))
	}
	k := kept[0]
	if k.Source != "gh" || !bytes.Equal(k.Body, push) || k.Remote != "127.0.0.1" || k.SecretLine != 1 || k.Received.IsZero() {
		t.Errorf("deferred %+v", k)
	}
	if k.Header.Get("X-Hub-Signature-256") != "" {
		t.Error("the signature was stored with the deferred webhook")
	}
	if k.Header.Get("X-GitHub-Delivery") != "d-1" || k.Header.Get("Traceparent") == "" {
		t.Errorf("headers the judgment reads were not stored: %v", k.Header)
	}

	if err := s.Judge(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if len(store.stored) != 1 {
		t.Fatalf("%d events stored after the judgment, want 1", len(store.stored))
	}
	a := store.stored[0]
	if a.Event.ID() != "d-1" || a.Event.Type() != TypeGitPush || len(a.Targets) != 1 || a.Targets[0].App != "all" {
		t.Errorf("stored %s %s with %d targets", a.Event.ID(), a.Event.Type(), len(a.Targets))
	}
	if tp, _ := a.Event.Extensions()["traceparent"].(string); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("traceparent %q not carried", tp)
	}
	if !a.Answered.Equal(k.Received) {
		t.Errorf("stored as answered at %v, want the 202's %v: the time to its run would leave out the deferral", a.Answered, k.Received)
	}
	if a.BodyDigest == "" {
		t.Error("no body digest: a captured body replayed under another delivery id would not be found")
	}
	recs := store.records()
	if len(recs) != 1 {
		t.Fatalf("%d audit records, want 1", len(recs))
	}
	r := recs[0]
	if r.Decision != policy.DecisionAccepted || !r.Deferred || r.EventID != "d-1" || r.Targets != 1 || r.Identity != "source:gh" ||
		r.Remote != "127.0.0.1" || r.SecretLine != 1 || r.RulesRevision == "" {
		t.Errorf("audit record %+v", r)
	}

	// A retry of the same delivery during the burst is deferred too, and
	// judged a duplicate: stored once.
	if status, body := post(t, url+"/v1/hooks/gh", hd, push); status != http.StatusAccepted {
		t.Fatalf("retry: status %d: %s", status, body)
	}
	if err := s.Judge(context.Background(), d.all()[1]); err != nil {
		t.Fatal(err)
	}
	if len(store.stored) != 1 {
		t.Errorf("%d events stored after a retry, want 1", len(store.stored))
	}
	if recs := store.records(); len(recs) != 2 || recs[1].Reason != "duplicate" {
		t.Errorf("retry audited as %+v, want a duplicate", recs[len(recs)-1])
	}
}

func TestBurstRefusesWhatItCannotVerifyAtOnce(t *testing.T) {
	secret := newSecret(t)
	_, store, d, url := burstServer(t, ghSource, map[string]string{"S": string(secret)})
	push := readSample(t, "github", "push.json")
	for name, tc := range map[string]struct {
		path   string
		header http.Header
		want   int
	}{
		"unsigned": {"/v1/hooks/gh", githubHeader("push", "d-1"), http.StatusUnauthorized},
		"wrong signature": {"/v1/hooks/gh", func() http.Header {
			h := githubHeader("push", "d-2")
			h.Set("X-Hub-Signature-256", signGitHub([]byte("guess"), push))
			return h
		}(), http.StatusUnauthorized},
		"unknown source": {"/v1/hooks/nope", githubHeader("push", "d-3"), http.StatusNotFound},
	} {
		if status, body := post(t, url+tc.path, tc.header, push); status != tc.want {
			t.Errorf("%s: status %d, want %d: %s", name, status, tc.want, body)
		}
	}
	if kept := d.all(); len(kept) != 0 {
		t.Errorf("%d unverified webhooks deferred", len(kept))
	}
	if n := len(store.records()); n != 3 {
		t.Errorf("%d audit records of the refusals, want 3", n)
	}
}

func TestBurstStoreUnavailableAnswers503(t *testing.T) {
	secret := newSecret(t)
	_, _, d, url := burstServer(t, ghSource, map[string]string{"S": string(secret)})
	d.fail = unavailableErr{}
	push := readSample(t, "github", "push.json")
	hd := githubHeader("push", "d-1")
	hd.Set("X-Hub-Signature-256", signGitHub(secret, push))
	if status, body := post(t, url+"/v1/hooks/gh", hd, push); status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", status, body)
	}
}

func TestJudgeDeferred(t *testing.T) {
	secret := newSecret(t)
	s, store, d, url := burstServer(t, ghSource, map[string]string{"S": string(secret)})
	sign := func(delivery string, body []byte) http.Header {
		h := githubHeader("push", delivery)
		h.Set("X-Hub-Signature-256", signGitHub(secret, body))
		return h
	}
	broken := []byte(`{"ref": "refs/heads/main", "after": `)
	if status, body := post(t, url+"/v1/hooks/gh", sign("d-bad", broken), broken); status != http.StatusAccepted {
		t.Fatalf("status %d: %s", status, body)
	}
	push := readSample(t, "github", "push.json")
	if status, body := post(t, url+"/v1/hooks/gh", sign("d-2", push), push); status != http.StatusAccepted {
		t.Fatalf("status %d: %s", status, body)
	}
	kept := d.all()

	t.Run("a signed but malformed payload is refused and audited", func(t *testing.T) {
		if err := s.Judge(context.Background(), kept[0]); err != nil {
			t.Fatalf("Judge = %v: a refusal is final, not retried", err)
		}
		recs := store.records()
		if len(recs) != 1 || recs[0].Decision != policy.DecisionInvalid || !recs[0].Deferred || recs[0].Status != http.StatusBadRequest {
			t.Fatalf("audit %+v", recs)
		}
	})
	t.Run("an unavailable queue is retried, not audited", func(t *testing.T) {
		store.fail = unavailableErr{}
		err := s.Judge(context.Background(), kept[1])
		if err == nil {
			t.Fatal("Judge = nil with the queue down: the webhook would be dropped")
		}
		if n := len(store.records()); n != 1 {
			t.Errorf("%d audit records, want 1 (the retry decides)", n)
		}
		store.fail = nil
		if err := s.Judge(context.Background(), kept[1]); err != nil {
			t.Fatal(err)
		}
		if len(store.stored) != 1 || store.stored[0].Event.ID() != "d-2" {
			t.Errorf("stored %v after the retry", store.stored)
		}
	})
	t.Run("a source removed since is refused and audited", func(t *testing.T) {
		gone := kept[1]
		gone.Source = "removed"
		if err := s.Judge(context.Background(), gone); err != nil {
			t.Fatal(err)
		}
		recs := store.records()
		last := recs[len(recs)-1]
		if last.Decision != policy.DecisionInvalid || last.Source != "removed" || !strings.Contains(last.Reason, "removed since") {
			t.Errorf("audit %+v", last)
		}
	})
}

func TestBusyFollowsTheWebhooksInFlight(t *testing.T) {
	s := NewServer(Config{Rules: routing.NewHolder(nil), Deferrer: &memDeferrer{}, DeferAbove: 2})
	if s.Busy() {
		t.Fatal("busy with nothing in flight")
	}
	s.noteBurst(2)
	if s.Busy() {
		t.Fatal("busy at DeferAbove webhooks in flight")
	}
	s.hooksInflight.Store(3)
	s.noteBurst(3)
	if !s.Busy() {
		t.Fatal("not busy above DeferAbove")
	}
	// The burst outlasts its last moment above DeferAbove by burstLinger.
	s.hooksInflight.Store(0)
	if !s.Busy() {
		t.Fatal("the burst ended the moment the webhooks in flight dropped")
	}
	s.busyUntil.Store(0)
	if s.Busy() {
		t.Fatal("busy after the burst")
	}

	never := NewServer(Config{Rules: routing.NewHolder(nil), Deferrer: &memDeferrer{}, DeferAbove: 0})
	never.hooksInflight.Store(100)
	never.noteBurst(100)
	if never.Busy() {
		t.Error("--defer-above 0 defers")
	}
	none := NewServer(Config{Rules: routing.NewHolder(nil), DeferAbove: 2})
	none.noteBurst(100)
	if none.Busy() || none.deferNow(githubProvider{}) {
		t.Error("busy without a Deferrer")
	}
}

func TestHandshakeProvidersAreNeverDeferred(t *testing.T) {
	s := NewServer(Config{Rules: routing.NewHolder(nil), Deferrer: &memDeferrer{}, DeferAbove: 1})
	s.deferAll = true
	for _, kind := range Kinds() {
		p, _ := Lookup(kind)
		_, answers := p.(Handshaker)
		if s.deferNow(p) == answers {
			t.Errorf("%s: deferred %v, answers in the body %v", kind, s.deferNow(p), answers)
		}
	}
}

// TestStrippedHeadersNormalizeAlike: a deferred webhook is normalized from
// its headers without credentials; every provider's samples must make the
// same events from them as from the headers sent.
func TestStrippedHeadersNormalizeAlike(t *testing.T) {
	rules := mustRules(t, ghSource, map[string]string{"S": "x"})
	for _, tc := range sampleCases {
		t.Run(tc.kind+"/"+tc.sample, func(t *testing.T) {
			req := sampleRequest(t, tc.kind, tc.sample)
			p := lookupProvider(t, tc.kind)
			want, err := p.Normalize(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Normalize(&Request{Header: rules.StripCredentials(req.Header), Body: req.Body})
			if err != nil {
				t.Fatalf("normalize without credentials: %v", err)
			}
			wj, _ := json.Marshal(want.Events)
			gj, _ := json.Marshal(got.Events)
			if !bytes.Equal(wj, gj) {
				t.Errorf("events differ without credentials:\n%s\n%s", gj, wj)
			}
		})
	}
}

// FuzzJudgeDeferred: whatever a stored webhook holds, its judgment decides
// it (stored or refused, audited) and never asks to be retried when the
// queue is up.
func FuzzJudgeDeferred(f *testing.F) {
	f.Add("push", []byte(`{"ref":"refs/heads/main"}`))
	f.Add("ping", []byte(`{"zen":"x","hook_id":1}`))
	f.Add("issue_comment", []byte(`{"action":"created","comment":{"body":"/cancel"}}`))
	f.Add("push", []byte(`not json`))
	f.Fuzz(func(t *testing.T, eventName string, body []byte) {
		store := newMemStore()
		s := NewServer(Config{Rules: routing.NewHolder(mustRules(t, ghSource, map[string]string{"S": "x"})), Publisher: store, Audit: store.Audit})
		h := githubHeader("push", "d-fuzz")
		h.Set("X-GitHub-Event", eventName)
		if err := s.Judge(context.Background(), Deferred{Source: "gh", Header: h, Body: body}); err != nil {
			t.Fatalf("Judge = %v with the queue up", err)
		}
		if len(store.stored) == 0 && len(store.records()) == 0 {
			t.Fatal("judged without storing or auditing anything")
		}
	})
}
