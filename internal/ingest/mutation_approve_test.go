//go:build !nonats

package ingest

// Tests added for approval mutants that lived (docs/testing.md, "Mutation
// testing").

import (
	"net/http"
	"testing"
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
