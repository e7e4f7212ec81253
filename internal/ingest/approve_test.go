//go:build !nonats

package ingest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// approvalRoot gates production deploys requested through the agents
// endpoint: lead (a principal of agents) and alice (of people) approve.
const approvalRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - {name: web, manifest: web.yaml, namespaces: [web-ci], identities: ["endpoint:agents"]}
endpoints:
  - name: agents
    auth: {tokens: {env: AGENT_TOKENS}}
    scope:
      apps: [web]
      eventTypes: [com.acme.deploy.requested]
      params: [environment]
    approval:
      environments: [production]
      approvers: ["endpoint:agents/lead", "endpoint:people/alice"]
      timeout: 1h
  - name: people
    auth: {tokens: {env: PEOPLE_TOKENS}}
    scope: {eventTypes: [com.acme.none]}
`

const approvalApp = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: deploy
    match: {types: [com.acme.deploy.requested]}
    run:
      pipelineRef: deploy
      params:
        - {name: environment, value: $(body.params.environment)}
`

// approvalServer is the server on a real queue (embedded NATS), with the
// approvalRoot rules and one token per principal.
type approvalServer struct {
	url    string
	srv    *Server
	q      *queue.Queue
	js     jetstream.JetStream
	tokens map[string]string // principal -> bearer token
	audits *memStore
}

func newApprovalServer(t testing.TB) *approvalServer {
	t.Helper()
	return newApprovalServerRoot(t, approvalRoot)
}

// newApprovalServerRoot is newApprovalServer with another root manifest
// (approvalApp, the same tokens).
func newApprovalServerRoot(t testing.TB, root string) *approvalServer {
	t.Helper()
	as := &approvalServer{tokens: map[string]string{}, audits: newMemStore()}
	for _, p := range []string{"bot", "lead", "alice", "mallory"} {
		as.tokens[p] = hex.EncodeToString(newSecret(t))
	}
	dir := t.TempDir()
	for name, data := range map[string]string{"root.yaml": root, "web.yaml": approvalApp} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"GH": "x",
		"AGENT_TOKENS":  hashLine(as.tokens["bot"], "bot") + "\n" + hashLine(as.tokens["lead"], "lead") + "\n",
		"PEOPLE_TOKENS": hashLine(as.tokens["alice"], "alice") + "\n" + hashLine(as.tokens["mallory"], "mallory") + "\n"}
	opts := LoadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	rules, err := routing.LoadDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	as.q, as.js = newEmbeddedQueue(t)
	audit := func(r policy.Record) { as.q.Audit(r); as.audits.Audit(r) }
	as.srv = NewServer(Config{Rules: routing.NewHolder(rules), Publisher: as.q, Status: as.q, Approvals: as.q, Audit: audit})
	hs := httptest.NewServer(as.srv)
	t.Cleanup(hs.Close)
	as.url = hs.URL
	return as
}

// newEmbeddedQueue opens a queue on an embedded NATS server, with a
// JetStream handle to read its streams.
func newEmbeddedQueue(t testing.TB) (*queue.Queue, jetstream.JetStream) {
	t.Helper()
	ns, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := queue.Open(context.Background(), nc, queue.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return q, js
}

// request posts body to path with principal's token ("" sends none).
func (as *approvalServer) request(t testing.TB, principal, path string, body []byte) (int, []byte) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/cloudevents+json"}}
	if principal != "" {
		h.Set("Authorization", "Bearer "+as.tokens[principal])
	}
	code, _, out := (&hookServer{url: as.url}).send(t, http.MethodPost, path, h, body)
	return code, out
}

func (as *approvalServer) deploy(t testing.TB, id, env string) AcceptedResponse {
	t.Helper()
	code, body := as.request(t, "bot", "/v1/events/agents", agentEvent(id, "com.acme.deploy.requested", nil, map[string]string{"environment": env}))
	if code != http.StatusAccepted {
		t.Fatalf("deploy %s: %d %s", env, code, body)
	}
	return accepted(t, body)
}

// work returns the work items queued, in order.
func (as *approvalServer) work(t testing.TB) []queue.Work {
	t.Helper()
	ctx := context.Background()
	s, err := as.js.Stream(ctx, queue.WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []queue.Work
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var w queue.Work
		if err := json.Unmarshal(m.Data, &w); err != nil {
			t.Fatal(err)
		}
		out = append(out, w)
	}
	return out
}

func (as *approvalServer) state(t testing.TB, id string) string {
	t.Helper()
	st, err := as.q.Status(context.Background(), "agents", id)
	if err != nil || len(st.Targets) != 1 {
		t.Fatalf("status of %s: %+v %v", id, st, err)
	}
	return st.Targets[0].State
}

func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return v
}

func TestApprovalGate(t *testing.T) {
	as := newApprovalServer(t)
	res := as.deploy(t, "prod-1", "production")
	if res.Targets[0].State != policy.StateAwaitingApproval {
		t.Fatalf("202 does not say the target waits: %+v", res)
	}
	if st := as.state(t, "prod-1"); st != policy.StateAwaitingApproval {
		t.Fatalf("state %q, want awaiting-approval", st)
	}
	if w := as.work(t); len(w) != 0 {
		t.Fatalf("a held target was queued: %+v", w)
	}
	// Staging is not gated: queued at once.
	as.deploy(t, "stage-1", "staging")
	if w := as.work(t); len(w) != 1 || w[0].Event.ID() != "stage-1" {
		t.Fatalf("staging did not run at once: %+v", w)
	}
	if code, body := as.request(t, "lead", "/v1/events/stage-1/approve?endpoint=agents", nil); code != http.StatusNotFound {
		t.Fatalf("approving an ungated event: %d %s", code, body)
	}

	refusals := []struct {
		name, principal, path string
		want                  int
		rule                  string
	}{
		{"self-approval", "bot", "/v1/events/prod-1/approve?endpoint=agents", http.StatusForbidden, "approval.self"},
		{"non-approver", "mallory", "/v1/events/prod-1/approve?endpoint=people", http.StatusForbidden, "endpoints[agents].approval.approvers"},
		{"non-approver rejects", "mallory", "/v1/events/prod-1/reject", http.StatusForbidden, "endpoints[agents].approval.approvers"},
		{"unsigned", "", "/v1/events/prod-1/approve?endpoint=people", http.StatusUnauthorized, ""},
		{"token of another endpoint", "alice", "/v1/events/prod-1/approve?endpoint=agents", http.StatusUnauthorized, ""},
		{"unknown endpoint", "alice", "/v1/events/prod-1/approve?endpoint=nope", http.StatusUnauthorized, ""},
		{"unknown id", "alice", "/v1/events/nope/approve?endpoint=people", http.StatusNotFound, ""},
		{"unknown source", "alice", "/v1/events/prod-1/approve?endpoint=people&source=github", http.StatusNotFound, ""},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			code, body := as.request(t, tc.principal, tc.path, nil)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if tc.rule != "" {
				if got := decode[ErrorResponse](t, body).Rule; got != tc.rule {
					t.Fatalf("rule %q, want %q", got, tc.rule)
				}
			}
		})
	}
	if st := as.state(t, "prod-1"); st != policy.StateAwaitingApproval || len(as.work(t)) != 1 {
		t.Fatalf("a refused approval changed something: %s", st)
	}

	// An approval's body and parameters change nothing that runs.
	big := bytes.Repeat([]byte(`{"params":{"environment":"staging"}}`), 1<<15)
	for range 2 {
		code, body := as.request(t, "alice", "/v1/events/prod-1/approve?endpoint=people&environment=staging&params=x", big)
		if code != http.StatusOK {
			t.Fatalf("approve: %d %s", code, body)
		}
		if r := decode[ApprovalResponse](t, body); r.State != policy.StateQueued || r.DecidedBy != "endpoint:people alice" {
			t.Fatalf("approve answered %+v", r)
		}
	}
	w := as.work(t)
	if len(w) != 2 || w[1].Event.ID() != "prod-1" {
		t.Fatalf("approving twice did not queue exactly one run: %+v", w)
	}
	if p := w[1].Target.Params; len(p) != 1 || p[0] != (routing.Param{Name: "environment", Value: "production"}) {
		t.Fatalf("the released target changed: %+v", p)
	}
	if st := as.state(t, "prod-1"); st != policy.StateQueued {
		t.Fatalf("state after approval %q", st)
	}
	if code, body := as.request(t, "lead", "/v1/events/prod-1/reject?endpoint=agents", nil); code != http.StatusConflict {
		t.Fatalf("reject after approve: %d %s", code, body)
	}
	checkDecisionAudits(t, as.audits.records(), "prod-1")
}

// checkDecisionAudits: the request and the approval are in the audit trail
// with who asked and who approved.
func checkDecisionAudits(t *testing.T, recs []policy.Record, id string) {
	t.Helper()
	var requested, approved, refusedSelf bool
	for _, r := range recs {
		if r.EventID != id {
			continue
		}
		switch {
		case r.Decision == policy.DecisionAwaitingApproval && r.Subject == "bot":
			requested = true
		case r.Decision == policy.DecisionApproved && r.Identity == "endpoint:people" && r.Subject == "alice":
			approved = true
		case r.Decision == policy.DecisionDenied && r.Rule == "approval.self" && r.Subject == "bot":
			refusedSelf = true
		}
	}
	if !requested || !approved || !refusedSelf {
		t.Fatalf("audit trail: requested %v approved %v self-refusal %v: %+v", requested, approved, refusedSelf, recs)
	}
}

func TestApprovalRejectAndExpiry(t *testing.T) {
	as := newApprovalServer(t)
	as.deploy(t, "prod-r", "production")
	for range 2 {
		code, body := as.request(t, "lead", "/v1/events/prod-r/reject?endpoint=agents&reason=not+today", nil)
		if code != http.StatusOK || decode[ApprovalResponse](t, body).State != policy.StateRejected {
			t.Fatalf("reject: %d %s", code, body)
		}
	}
	if code, _ := as.request(t, "alice", "/v1/events/prod-r/approve?endpoint=people", nil); code != http.StatusConflict {
		t.Fatalf("approve after reject: %d", code)
	}
	if st := as.state(t, "prod-r"); st != policy.StateRejected || len(as.work(t)) != 0 {
		t.Fatalf("rejected: state %q, work %d", st, len(as.work(t)))
	}

	// Past the timeout an approval is refused and the target expires.
	as.deploy(t, "prod-e", "production")
	as.srv.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	code, body := as.request(t, "alice", "/v1/events/prod-e/approve?endpoint=people", nil)
	if code != http.StatusConflict || !strings.Contains(string(body), "expired") {
		t.Fatalf("late approval: %d %s", code, body)
	}
	if st := as.state(t, "prod-e"); st != policy.StateExpired || len(as.work(t)) != 0 {
		t.Fatalf("expired: state %q", st)
	}
	if code, _ := as.request(t, "alice", "/v1/events/prod-e/approve?endpoint=people", nil); code != http.StatusConflict {
		t.Fatalf("second late approval: %d", code)
	}
	var expired bool
	for _, r := range as.audits.records() {
		expired = expired || r.EventID == "prod-e" && r.Decision == policy.DecisionExpired && r.Subject == "alice"
	}
	if !expired {
		t.Fatal("the expiry is not in the audit trail")
	}
}

// FuzzApproval: whatever a request to the decision routes carries, the
// answer is a documented status, never a 5xx, and only an approver's
// approval queues the one held target, unchanged.
func FuzzApproval(f *testing.F) {
	f.Add("prod-f", "endpoint=people", uint8(2), []byte(`{"params":{"environment":"staging"}}`))
	f.Add("prod-f", "endpoint=agents&source=agents", uint8(0), []byte{})
	f.Add("prod-f", "endpoint=people&source=%00", uint8(3), []byte("\xff"))
	f.Add("../prod-f", "endpoint=people&reason="+strings.Repeat("x", 500), uint8(2), []byte(nil))
	f.Add("nope", "", uint8(4), []byte(`[]`))
	as := newApprovalServer(f)
	as.deploy(f, "prod-f", "production")
	principals := []string{"bot", "lead", "alice", "mallory", ""}
	f.Fuzz(func(t *testing.T, id, query string, who uint8, body []byte) {
		principal := principals[int(who)%len(principals)]
		action := "/approve"
		if who&0x80 != 0 {
			action = "/reject"
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.URL.Path, req.URL.RawQuery = "/v1/events/"+id+action, query
		if principal != "" {
			req.Header.Set("Authorization", "Bearer "+as.tokens[principal])
		}
		rec := httptest.NewRecorder()
		as.srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if principal != "lead" && principal != "alice" {
				t.Fatalf("%s decided: %s", principal, rec.Body.Bytes())
			}
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect: // the mux cleaning the path
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
			http.StatusMethodNotAllowed, http.StatusConflict, http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d for %q %q: %s", rec.Code, id, query, rec.Body.Bytes())
		}
		for _, w := range as.work(t) {
			if w.Event.ID() != "prod-f" || len(w.Target.Params) != 1 || w.Target.Params[0].Value != "production" {
				t.Fatalf("queued %+v", w)
			}
		}
	})
}
