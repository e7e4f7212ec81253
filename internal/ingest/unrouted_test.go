package ingest

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestUnroutedAnswersAreJSON: a wrong method or path gets the same JSON
// error body as every other refusal, with Allow on a 405.
func TestUnroutedAnswersAreJSON(t *testing.T) {
	h := newHookServer(t, "  - name: github\n    kind: github\n    secret: {env: GH}\n", map[string]string{"GH": "s"})
	tests := []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"GET on a hook", http.MethodGet, "/v1/hooks/github", http.StatusMethodNotAllowed, "POST, OPTIONS"},
		{"PUT on a hook with a token", http.MethodPut, "/v1/hooks/hub/tok", http.StatusMethodNotAllowed, "POST, OPTIONS"},
		{"OPTIONS on a kind without a handshake", http.MethodOptions, "/v1/hooks/github", http.StatusMethodNotAllowed, "POST"},
		{"DELETE on an event", http.MethodDelete, "/v1/events/x", http.StatusMethodNotAllowed, "GET, POST"},
		{"unknown path", http.MethodGet, "/v1/nothing", http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := h.send(t, tc.method, tc.path, nil, nil)
			var e ErrorResponse
			if status != tc.status || header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Fatalf("%s %s: %d %s %q", tc.method, tc.path, status, header.Get("Content-Type"), body)
			}
			if header.Get("Allow") != tc.allow {
				t.Fatalf("Allow = %q, want %q", header.Get("Allow"), tc.allow)
			}
		})
	}
}
