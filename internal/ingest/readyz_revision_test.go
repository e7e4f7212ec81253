package ingest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestReadyzShowsRulesRevision: /readyz says which rules are in force, so
// an operator can tell every replica runs the same revision.
func TestReadyzShowsRulesRevision(t *testing.T) {
	rules := mustRules(t, ghSource, map[string]string{"S": "x"})
	s := NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newMemStore()})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("readyz %d %s (%v)", rec.Code, rec.Body, err)
	}
	if got := body["rulesRevision"]; got == "" || got != rules.Revision() {
		t.Fatalf("rulesRevision %q, want %q", got, rules.Revision())
	}
}
