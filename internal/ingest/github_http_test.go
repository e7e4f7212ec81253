package ingest

import (
	"net/http"
	"strings"
	"testing"
)

// TestGitHubHTTP sends GitHub deliveries through the server: the status
// each answer gets, end to end.
func TestGitHubHTTP(t *testing.T) {
	secret := newSecret(t)
	h := newHookServer(t, `  - name: gh
    kind: github
    secret: {env: GH_SECRET}
`, map[string]string{"GH_SECRET": string(secret)})
	push := readSample(t, "github", "push.json")
	signed := func(event, delivery string, body []byte) http.Header {
		hd := githubHeader(event, delivery)
		hd.Set("X-Hub-Signature-256", signGitHub(secret, body))
		return hd
	}

	t.Run("push accepted", func(t *testing.T) {
		status, _, body := h.send(t, http.MethodPost, "/v1/hooks/gh", signed("push", "d-1", push), push)
		if status != http.StatusAccepted {
			t.Fatalf("status %d: %s", status, body)
		}
		r := accepted(t, body)
		if r.ID != "d-1" || r.Type != TypeGitPush || len(r.Targets) != 1 || r.Targets[0].App != "all" {
			t.Fatalf("202 body %s", body)
		}
	})
	t.Run("ping answers 200", func(t *testing.T) {
		ping := readSample(t, "github", "ping.json")
		if status, _, body := h.send(t, http.MethodPost, "/v1/hooks/gh", signed("ping", "d-2", ping), ping); status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
	})
	t.Run("unsigned 401", func(t *testing.T) {
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/gh", githubHeader("push", "d-3"), push); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("wrong secret 401", func(t *testing.T) {
		hd := githubHeader("push", "d-4")
		hd.Set("X-Hub-Signature-256", signGitHub([]byte("guess"), push))
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/gh", hd, push); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("GET 405", func(t *testing.T) {
		status, hd, _ := h.send(t, http.MethodGet, "/v1/hooks/gh", nil, nil)
		if status != http.StatusMethodNotAllowed || !strings.Contains(hd.Get("Allow"), "POST") {
			t.Fatalf("status %d Allow %q", status, hd.Get("Allow"))
		}
	})
	t.Run("OPTIONS 405 for a kind without a handshake", func(t *testing.T) {
		if status, _, _ := h.send(t, http.MethodOptions, "/v1/hooks/gh", nil, nil); status != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("text/plain 415", func(t *testing.T) {
		hd := signed("push", "d-5", push)
		hd.Set("Content-Type", "text/plain")
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/gh", hd, push); status != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("ignored event: 202 with no targets", func(t *testing.T) {
		// Events no trigger matches are still stored (for replay and audit)
		// and answered 202 with an empty target list; here the catch-all
		// app matches, so use a source no app is granted.
		h2 := newHookServer(t, `  - name: gh
    kind: github
    secret: {env: GH_SECRET}
  - name: ungranted
    kind: github
    secret: {env: GH_SECRET}
`, map[string]string{"GH_SECRET": string(secret)})
		hd := signed("push", "d-6", push)
		status, _, body := h2.send(t, http.MethodPost, "/v1/hooks/ungranted", hd, push)
		if status != http.StatusAccepted {
			t.Fatalf("status %d: %s", status, body)
		}
		if r := accepted(t, body); r.ID != "d-6" || len(r.Targets) != 0 || !strings.Contains(string(body), `"targets":[]`) {
			t.Fatalf("202 body %s", body)
		}
	})
}
