package ingest

// Tests added for /readyz mutants that no test covered (docs/testing.md,
// "Mutation testing").

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// /readyz asks the queue, with time to answer: ready when it answers in
// time, 503 with Retry-After and the queue's error when it fails.
func TestReadyzAsksTheQueue(t *testing.T) {
	rules := mustRules(t, ghSource, map[string]string{"S": "x"})
	for _, tc := range []struct {
		ready func(context.Context) error
		code  int
		body  string
	}{
		{func(ctx context.Context) error { return ctx.Err() }, http.StatusOK, `"status":"ready"`},
		{func(context.Context) error { return errors.New("stream gone") }, http.StatusServiceUnavailable, "queue: stream gone"},
	} {
		s := NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newMemStore(), Ready: tc.ready})
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("readyz %d %s, want %d with %s", rec.Code, rec.Body, tc.code, tc.body)
		}
		if retry := rec.Header().Get("Retry-After"); (tc.code == http.StatusServiceUnavailable) != (retry != "") {
			t.Errorf("readyz %d with Retry-After %q", rec.Code, retry)
		}
	}
}
