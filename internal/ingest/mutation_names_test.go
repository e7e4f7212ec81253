package ingest

// Tests added for mutants that lived (docs/testing.md, "Mutation testing"):
// what a 404 for an unknown name says, and how many compare answers the
// changes cache keeps.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// A 404 for an unknown source mentions a failed reload only when the last
// reload failed.
func TestUnknownNameMentionsFailedReload(t *testing.T) {
	rules := mustRules(t, ghSource, map[string]string{"S": "x"})
	for _, tc := range []struct {
		rules  RulesSource
		reload bool
	}{{routing.NewHolder(rules), false}, {failedReload{routing.NewHolder(rules)}, true}} {
		s := NewServer(Config{Rules: tc.rules, Publisher: newMemStore()})
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/hooks/nope", strings.NewReader("{}")))
		if rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "last reload") != tc.reload {
			t.Errorf("failed reload %v: %d %s", tc.reload, rec.Code, rec.Body)
		}
	}
}

// The compare cache keeps the last compareCacheSize answers: the oldest
// beyond them is asked again, the oldest kept is not.
func TestChangesCacheSize(t *testing.T) {
	api := newCompareServer(t, map[string]compareAnswer{})
	src := &routing.Source{Name: "gh", Kind: "github", APIToken: []byte("api-token"), APIURL: api.URL + "/api/v3"}
	f := NewChangesFetcher(func(string) *routing.Source { return src })
	ask := func(i int) {
		t.Helper()
		q := routing.ChangesQuery{Repository: "acme/web", Before: sampleBefore, After: fmt.Sprintf("%040x", i+1)}
		if _, err := f.Changes(context.Background(), routing.PathsCheck{Source: "gh", ChangesQuery: q}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range compareCacheSize + 1 {
		ask(i)
	}
	calls := api.calls.Load()
	ask(1)
	if n := api.calls.Load(); n != calls {
		t.Errorf("the oldest of the %d answers kept was asked again", compareCacheSize)
	}
	ask(0)
	if n := api.calls.Load(); n != calls+1 {
		t.Errorf("the answer beyond the %d kept was not asked again: %d calls, want %d", compareCacheSize, n, calls+1)
	}
}
