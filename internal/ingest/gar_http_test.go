package ingest

import (
	"net/http"
	"testing"
	"time"
)

// TestGARHTTP sends Pub/Sub push deliveries, with OIDC tokens from a test
// issuer, through the server.
func TestGARHTTP(t *testing.T) {
	iss := newOIDCIssuer(t)
	oidcBlock := `    oidc:
      issuer: ` + iss.url + `
      audience: ` + garAudience + `
      jwksURL: ` + iss.jwksURL + `
      email: ` + garEmail + `
`
	h := newHookServer(t, "  - name: gar\n    kind: gar\n"+oidcBlock+"  - name: ungranted-gar\n    kind: gar\n"+oidcBlock, nil)
	token := iss.sign(t, "RS256", iss.kid, iss.claims())
	authed := func(name string) (http.Header, []byte) {
		hd, body := busSample(t, "gar", name)
		hd.Set("Authorization", "Bearer "+token)
		return hd, body
	}

	t.Run("insert accepted", func(t *testing.T) {
		hd, body := authed("insert")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/gar", hd, body)
		if status != http.StatusAccepted {
			t.Fatalf("status %d: %s", status, resp)
		}
		if r := accepted(t, resp); r.ID != "2070443601311540" || r.Type != TypeImagePush || len(r.Targets) != 1 || r.Targets[0].App != "all" {
			t.Fatalf("202 body %s", resp)
		}
	})
	t.Run("delete accepted", func(t *testing.T) {
		hd, body := authed("delete")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/gar", hd, body)
		if r := accepted(t, resp); status != http.StatusAccepted || r.Type != TypeImageDelete {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
	t.Run("missing token 401", func(t *testing.T) {
		hd, body := busSample(t, "gar", "insert")
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/gar", hd, body); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("expired token 401", func(t *testing.T) {
		hd, body := busSample(t, "gar", "insert")
		c := iss.claims()
		c["exp"] = time.Now().Add(-time.Hour).Unix()
		hd.Set("Authorization", "Bearer "+iss.sign(t, "RS256", iss.kid, c))
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/gar", hd, body); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("GET 405", func(t *testing.T) {
		if status, _, _ := h.send(t, http.MethodGet, "/v1/hooks/gar", nil, nil); status != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("text/plain 415", func(t *testing.T) {
		hd, body := authed("insert")
		hd.Set("Content-Type", "text/plain")
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/gar", hd, body); status != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("ungranted source: 202 with no targets", func(t *testing.T) {
		hd, body := authed("gcr-insert")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/ungranted-gar", hd, body)
		if r := accepted(t, resp); status != http.StatusAccepted || r.ID != "2070443601311543" || len(r.Targets) != 0 {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
}
