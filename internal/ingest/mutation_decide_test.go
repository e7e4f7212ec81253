//go:build !nonats

package ingest

// Tests added for decision and comment-command mutants that lived
// (docs/testing.md, "Mutation testing"): which held event a decision
// names, and what the audit trail says of refusals and commands.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// twoGatedEndpointsRoot is approvalRoot with a second endpoint, builds,
// gated like agents: an event id may then be held in two sources.
var twoGatedEndpointsRoot = strings.Replace(strings.Replace(approvalRoot,
	`identities: ["endpoint:agents"]`, `identities: ["endpoint:agents", "endpoint:builds"]`, 1),
	"  - name: people\n", `  - name: builds
    auth: {tokens: {env: AGENT_TOKENS}}
    scope:
      apps: [web]
      eventTypes: [com.acme.deploy.requested]
      params: [environment]
    approval:
      environments: [production]
      approvers: ["endpoint:people/alice"]
      timeout: 1h
  - name: people
`, 1)

// An event id held in two sources is a 409 without ?source=, and decided
// in the one source ?source= names.
func TestDecisionOnIDHeldInTwoSources(t *testing.T) {
	as := newApprovalServerRoot(t, twoGatedEndpointsRoot)
	for _, ep := range []string{"agents", "builds"} {
		code, body := as.request(t, "bot", "/v1/events/"+ep, agentEvent("twin-1", "com.acme.deploy.requested", nil, map[string]string{"environment": "production"}))
		if code != http.StatusAccepted {
			t.Fatalf("deploy through %s: %d %s", ep, code, body)
		}
	}
	code, body := as.request(t, "alice", "/v1/events/twin-1/approve?endpoint=people", nil)
	if code != http.StatusConflict || !strings.Contains(string(body), "?source=") {
		t.Fatalf("approval of an id held in two sources: %d %s, want 409 asking for ?source=", code, body)
	}
	if as.state(t, "twin-1") != policy.StateAwaitingApproval {
		t.Fatal("the refused approval released the agents event")
	}
	code, body = as.request(t, "alice", "/v1/events/twin-1/approve?endpoint=people&source=builds", nil)
	if code != http.StatusOK || decode[ApprovalResponse](t, body).Source != "builds" {
		t.Fatalf("approval with ?source=builds: %d %s", code, body)
	}
	if as.state(t, "twin-1") != policy.StateAwaitingApproval {
		t.Fatal("approving the builds event released the agents event")
	}
}

// Unauthenticated refusals of decisions are sampled (200 in an instant),
// and the next one kept counts those dropped.
func TestUnauthenticatedDecisionsSampled(t *testing.T) {
	as := newApprovalServer(t)
	t0 := time.Now()
	as.srv.now = func() time.Time { return t0 }
	refusals := func() []policy.Record {
		var out []policy.Record
		for _, r := range as.audits.records() {
			if r.Kind == "approval" && r.Identity == "" {
				out = append(out, r)
			}
		}
		return out
	}
	for range 201 {
		if code, body := as.request(t, "", "/v1/events/x/approve?endpoint=people", nil); code != http.StatusUnauthorized {
			t.Fatalf("unauthenticated approval: %d %s", code, body)
		}
	}
	if n := len(refusals()); n != 200 {
		t.Fatalf("%d audit records of 201 unauthenticated decisions in one instant, want the burst of 200", n)
	}
	as.srv.now = func() time.Time { return t0.Add(time.Second) }
	as.request(t, "", "/v1/events/x/reject?endpoint=people", nil)
	recs := refusals()
	if len(recs) != 201 || recs[200].Suppressed != 1 {
		t.Fatalf("after a second: %d records, the last counting %d suppressed; want 201 and 1", len(recs), recs[len(recs)-1].Suppressed)
	}
}

// failingCanceller fails every cancel, not in a way a retry heals.
type failingCanceller struct{}

func (failingCanceller) CancelPullRequest(context.Context, string, string, string, string) (int, error) {
	return 0, errors.New("forbidden by the cluster")
}

// What a command's audit record says: /cancel done counts the runs
// cancelled, /cancel failed is ignored with the error, /approve with
// nothing held says so.
func TestCommandAuditRecords(t *testing.T) {
	cs := newCommentServer(t)
	cs.srv.cfg.Cancel = &cancels{}
	cs.deliver(t, "issue_comment", "x-1", comment(t, "created", 4001, "chhsia0", "/cancel"))
	cs.srv.cfg.Cancel = failingCanceller{}
	cs.deliver(t, "issue_comment", "x-2", comment(t, "created", 4002, "chhsia0", "/cancel"))
	cs.deliver(t, "issue_comment", "x-3", comment(t, "created", 4003, "reviewer", "/approve"))
	byID := map[string]policy.Record{}
	for _, r := range cs.audits.records() {
		if r.Kind == "command" {
			byID[r.EventID] = r
		}
	}
	if r := byID["comment-4001-cancel"]; r.Decision != policy.DecisionAccepted || r.Targets != 1 {
		t.Errorf("/cancel that cancelled 1 run: audited %+v, want accepted with 1 target", r)
	}
	if r := byID["comment-4002-cancel"]; r.Decision != policy.DecisionIgnored || r.Targets != 0 || !strings.Contains(r.Reason, "forbidden") {
		t.Errorf("/cancel that failed: audited %+v, want ignored with the error", r)
	}
	if r := byID["comment-4003-approve"]; r.Decision != policy.DecisionIgnored || !strings.Contains(r.Reason, "nothing of pull request 3 awaits approval") {
		t.Errorf("/approve with nothing held: audited %+v, want ignored saying nothing awaits", r)
	}
}
