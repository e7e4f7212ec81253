package ingest

import (
	"net/http"
	"strings"
	"testing"
)

// TestACRHTTP sends ACR webhook and Event Grid deliveries (both schemas,
// both handshakes) through the server.
func TestACRHTTP(t *testing.T) {
	secret := newSecret(t)
	h := newHookServer(t, `  - name: acr
    kind: acr
    secret: {env: ACR_TOKEN}
  - name: acr-custom
    kind: acr
    header: X-Registry-Token
    secret: {env: ACR_TOKEN}
  - name: ungranted-acr
    kind: acr
    secret: {env: ACR_TOKEN}
`, map[string]string{"ACR_TOKEN": string(secret)})
	authed := func(name string) (http.Header, []byte) {
		hd, body := busSample(t, "acr", name)
		hd.Set("Authorization", "Bearer "+string(secret))
		return hd, body
	}

	t.Run("webhook push accepted", func(t *testing.T) {
		hd, body := authed("webhook-push")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/acr", hd, body)
		if status != http.StatusAccepted {
			t.Fatalf("status %d: %s", status, resp)
		}
		r := accepted(t, resp)
		if r.ID != "cb8c3971-9adc-488b-xxxx-43cbb4974ff5" || r.Type != TypeImagePush || len(r.Targets) != 1 || r.Targets[0].App != "all" {
			t.Fatalf("202 body %s", resp)
		}
	})
	t.Run("custom header", func(t *testing.T) {
		hd, body := busSample(t, "acr", "webhook-delete")
		hd.Set("X-Registry-Token", string(secret))
		if status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/acr-custom", hd, body); status != http.StatusAccepted {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
	t.Run("ping answers 200", func(t *testing.T) {
		hd := acrHeader("application/json")
		hd.Set("Authorization", "Bearer "+string(secret))
		if status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/acr", hd, []byte(`{"id":"p","action":"ping"}`)); status != http.StatusOK {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
	t.Run("event grid validation handshake", func(t *testing.T) {
		hd, body := authed("eventgrid-validation")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/acr", hd, body)
		if status != http.StatusOK || strings.TrimSpace(string(resp)) != `{"validationResponse":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}` {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
	t.Run("event grid validation without token 401", func(t *testing.T) {
		hd, body := busSample(t, "acr", "eventgrid-validation")
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/acr", hd, body); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("event grid push", func(t *testing.T) {
		hd, body := authed("eventgrid-push")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/acr", hd, body)
		if status != http.StatusAccepted {
			t.Fatalf("status %d: %s", status, resp)
		}
		if r := accepted(t, resp); r.ID != "831e1650-001e-001b-66ab-eeb76e069631" || r.Type != TypeImagePush || len(r.Targets) != 1 {
			t.Fatalf("202 body %s", resp)
		}
	})
	t.Run("cloudevents batch: several events", func(t *testing.T) {
		hd, body := authed("cloudevents-batch")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/acr", hd, body)
		if status != http.StatusAccepted {
			t.Fatalf("status %d: %s", status, resp)
		}
		evs := accepted(t, resp).allEvents()
		if len(evs) != 2 || evs[0].Type != TypeImagePush || evs[1].Type != TypeImageDelete ||
			evs[1].ID != "f06e3921-301f-42ec-b368-212f7d5354bd" || len(evs[1].Targets) != 1 {
			t.Fatalf("202 body %s", resp)
		}
	})
	t.Run("cloudevents OPTIONS handshake", func(t *testing.T) {
		hd := http.Header{}
		hd.Set("WebHook-Request-Origin", "eventgrid.azure.net")
		status, rh, resp := h.send(t, http.MethodOptions, "/v1/hooks/acr", hd, nil)
		if status != http.StatusOK || rh.Get("WebHook-Allowed-Origin") != "eventgrid.azure.net" {
			t.Fatalf("status %d headers %v: %s", status, rh, resp)
		}
	})
	t.Run("missing token 401", func(t *testing.T) {
		hd, body := busSample(t, "acr", "webhook-push")
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/acr", hd, body); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("wrong token 401", func(t *testing.T) {
		hd, body := busSample(t, "acr", "webhook-push")
		hd.Set("Authorization", "Bearer guess")
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/acr", hd, body); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("GET 405", func(t *testing.T) {
		if status, _, _ := h.send(t, http.MethodGet, "/v1/hooks/acr", nil, nil); status != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("text/plain 415", func(t *testing.T) {
		hd, body := authed("webhook-push")
		hd.Set("Content-Type", "text/plain")
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/acr", hd, body); status != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("ungranted source: 202 with no targets", func(t *testing.T) {
		hd, body := authed("webhook-push")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/ungranted-acr", hd, body)
		if status != http.StatusAccepted {
			t.Fatalf("status %d: %s", status, resp)
		}
		if r := accepted(t, resp); r.ID == "" || len(r.Targets) != 0 {
			t.Fatalf("202 body %s", resp)
		}
	})
}
