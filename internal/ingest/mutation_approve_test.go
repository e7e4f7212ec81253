//go:build !nonats

package ingest

// Tests added for approval mutants that lived (docs/testing.md, "Mutation
// testing").

import (
	"net/http"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// An unauthenticated decision is a 401 with the Bearer challenge; the
// audit record of a decision names the event's type.
func TestApprovalChallengeAndAuditedType(t *testing.T) {
	as := newApprovalServer(t)
	as.deploy(t, "prod-9", "production")
	h := http.Header{"Content-Type": {"application/cloudevents+json"}}
	code, header, body := (&hookServer{url: as.url}).send(t, http.MethodPost, "/v1/events/prod-9/approve?endpoint=people", h, nil)
	if code != http.StatusUnauthorized || header.Get("WWW-Authenticate") != `Bearer realm="switchyard"` {
		t.Fatalf("unsigned approval: %d, WWW-Authenticate %q: %s", code, header.Get("WWW-Authenticate"), body)
	}
	if code, body := as.request(t, "alice", "/v1/events/prod-9/approve?endpoint=people", nil); code != http.StatusOK {
		t.Fatalf("approval by alice: %d %s", code, body)
	}
	found := 0
	for _, r := range as.audits.records() {
		if r.Kind == "approval" && r.EventID == "prod-9" && r.Status == http.StatusOK {
			found++
			if r.Type != "com.acme.deploy.requested" {
				t.Errorf("approval audit record type %q, want com.acme.deploy.requested", r.Type)
			}
		}
	}
	if found == 0 {
		t.Error("no audit record of the approval")
	}
}

// A rejection is audited as rejected, an approval as approved.
func TestDecisionsAudited(t *testing.T) {
	as := newApprovalServer(t)
	as.deploy(t, "prod-r", "production")
	as.deploy(t, "prod-a", "production")
	if code, body := as.request(t, "alice", "/v1/events/prod-r/reject?endpoint=people", nil); code != http.StatusOK {
		t.Fatalf("rejection by alice: %d %s", code, body)
	}
	if code, body := as.request(t, "alice", "/v1/events/prod-a/approve?endpoint=people", nil); code != http.StatusOK {
		t.Fatalf("approval by alice: %d %s", code, body)
	}
	got := map[string]string{}
	for _, r := range as.audits.records() {
		if r.Kind == "approval" && r.Status == http.StatusOK {
			got[r.EventID] = r.Decision
		}
	}
	if got["prod-r"] != policy.DecisionRejected || got["prod-a"] != policy.DecisionApproved {
		t.Errorf("audited decisions %v, want prod-r %s and prod-a %s", got, policy.DecisionRejected, policy.DecisionApproved)
	}
}
