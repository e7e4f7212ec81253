package ingest

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestRulesRevisionInAnswerAndAudit: the 202 and the audit record of an
// accepted webhook and of an agent's event name the revision of the rules
// that routed them; a refusal the rules judged names it too.
func TestRulesRevisionInAnswerAndAudit(t *testing.T) {
	secret := newSecret(t)
	rules := mustRules(t, ghSource, map[string]string{"S": string(secret)})
	rev := rules.Revision()
	if !regexp.MustCompile(`^sha256:[0-9a-f]{12}$`).MatchString(rev) {
		t.Fatalf("revision %q", rev)
	}
	audit := newMemStore()
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newMemStore(), Audit: audit.Audit, MaxBody: 1 << 20}))
	t.Cleanup(srv.Close)
	hs := &hookServer{url: srv.URL}

	body := readSample(t, "github", "push.json")
	h := githubHeader("push", "rev-1")
	h.Set("X-Hub-Signature-256", signGitHub(secret, body))
	status, _, answer := hs.send(t, http.MethodPost, "/v1/hooks/gh", h, body)
	if r := accepted(t, answer); status != http.StatusAccepted || r.RulesRevision != rev {
		t.Fatalf("202: %d %s, want rulesRevision %q", status, answer, rev)
	}
	h.Set("X-Hub-Signature-256", signGitHub([]byte("wrong"), body))
	if status, _, _ := hs.send(t, http.MethodPost, "/v1/hooks/gh", h, body); status != http.StatusUnauthorized {
		t.Fatalf("wrong signature: %d", status)
	}
	recs := audit.records()
	if len(recs) != 2 || recs[0].Decision != policy.DecisionAccepted || recs[0].RulesRevision != rev {
		t.Fatalf("audit records %+v, want the accepted one with revision %q", recs, rev)
	}

	es := newEndpointServer(t)
	status, _, answer = es.post(t, "ci-bot", es.ciToken, agentEvent("rev-2", "com.acme.build.requested", nil, nil))
	epRev := es.srv.cfg.Rules.Rules().Revision()
	if r := accepted(t, answer); status != http.StatusAccepted || r.RulesRevision != epRev {
		t.Fatalf("endpoint 202: %d %s, want rulesRevision %q", status, answer, epRev)
	}
	var found bool
	for _, r := range es.q.records() {
		found = found || (r.EventID == "rev-2" && r.Decision == policy.DecisionAccepted && r.RulesRevision == epRev)
	}
	if !found {
		t.Fatalf("no accepted audit record of rev-2 with revision %q: %+v", epRev, es.q.records())
	}
}
