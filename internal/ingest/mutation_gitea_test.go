package ingest

// Tests added for commands_gitea.go mutants that lived (docs/testing.md,
// "Mutation testing").

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// readAPI: a 5xx from 500 up and a 429 may heal (errHostUnavailable), a
// 4xx will not, a 200 is the body.
func TestReadAPIStatuses(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"n":1}`))
	}))
	t.Cleanup(api.Close)
	for code, transient := range map[int]bool{500: true, 503: true, 429: true, 499: false, 404: false} {
		req, err := http.NewRequest(http.MethodGet, api.URL+"/?code="+strconv.Itoa(code), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = readAPI(req)
		if err == nil || errors.Is(err, errHostUnavailable) != transient {
			t.Errorf("HTTP %d: %v, want an error, transient %v", code, err, transient)
		}
	}
	req, err := http.NewRequest(http.MethodGet, api.URL+"/?code=200", nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, err := readAPI(req); err != nil || string(body) != `{"n":1}` {
		t.Errorf("HTTP 200: %q %v", body, err)
	}
}
