package ingest

import (
	"net/http"
	"strings"
	"testing"
)

// TestCloudEventsHTTP sends CloudEvents (binary, structured, batch) and
// CDEvents through the server.
func TestCloudEventsHTTP(t *testing.T) {
	secret := newSecret(t)
	h := newHookServer(t, `  - name: bus
    kind: cloudevents
    secret: {env: BUS_SECRET}
  - name: ungranted-bus
    kind: cloudevents
    secret: {env: BUS_SECRET}
`, map[string]string{"BUS_SECRET": string(secret)})
	signed := func(name string) (http.Header, []byte) {
		hd, body := busSample(t, "cloudevents", name)
		hd.Set("X-Signature", signCloudEvents(secret, body))
		return hd, body
	}

	t.Run("cdevent artifact published (structured, hmac)", func(t *testing.T) {
		hd, body := signed("cdevent-artifact-published")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/bus", hd, body)
		if status != http.StatusAccepted {
			t.Fatalf("status %d: %s", status, resp)
		}
		if r := accepted(t, resp); r.ID != "271069a8-fc18-44f1-b38f-9d70a1695819" || r.Type != TypeImagePush || len(r.Targets) != 1 || r.Targets[0].App != "all" {
			t.Fatalf("202 body %s", resp)
		}
	})
	t.Run("cdevent change merged (binary, bearer)", func(t *testing.T) {
		hd, body := busSample(t, "cloudevents", "cdevent-change-merged-binary")
		hd.Set("Authorization", "Bearer "+string(secret))
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/bus", hd, body)
		if r := accepted(t, resp); status != http.StatusAccepted || r.Type != TypeGitPush {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
	t.Run("batch: several events", func(t *testing.T) {
		hd, body := signed("batch")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/bus", hd, body)
		evs := accepted(t, resp).allEvents()
		if status != http.StatusAccepted || len(evs) != 2 || evs[1].ID != "C234-1234-1234" || evs[1].Type != "com.example.someevent" || len(evs[1].Targets) != 1 {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
	t.Run("reserved type 400", func(t *testing.T) {
		body := []byte(`{}`)
		hd := ceBinary(TypeImagePush)
		hd.Set("Authorization", "Bearer "+string(secret))
		if status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/bus", hd, body); status != http.StatusBadRequest {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
	// A captured signed binary-mode request could be replayed with any
	// ce-type, ce-id, ce-subject or extension: the signature covers the
	// body only. Refused whatever the headers say, before the body is read.
	t.Run("binary mode with a signature 415", func(t *testing.T) {
		hd, body := busSample(t, "cloudevents", "cdevent-change-merged-binary")
		hd.Set("X-Signature", signCloudEvents(secret, body))
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/bus", hd, body)
		if status != http.StatusUnsupportedMediaType || !strings.Contains(string(resp), "structured mode") {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
	t.Run("OPTIONS handshake", func(t *testing.T) {
		hd := http.Header{}
		hd.Set("WebHook-Request-Origin", "bus.example.com")
		status, rh, _ := h.send(t, http.MethodOptions, "/v1/hooks/bus", hd, nil)
		if status != http.StatusOK || rh.Get("WebHook-Allowed-Origin") != "bus.example.com" {
			t.Fatalf("status %d headers %v", status, rh)
		}
	})
	t.Run("unsigned 401", func(t *testing.T) {
		hd, body := busSample(t, "cloudevents", "structured")
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/bus", hd, body); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("wrong signature 401", func(t *testing.T) {
		hd, body := busSample(t, "cloudevents", "structured")
		hd.Set("X-Signature", signCloudEvents([]byte("guess"), body))
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/bus", hd, body); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("GET 405", func(t *testing.T) {
		if status, _, _ := h.send(t, http.MethodGet, "/v1/hooks/bus", nil, nil); status != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("plain JSON 415", func(t *testing.T) {
		body := []byte(`{"hello":"world"}`)
		hd := acrHeader("application/json")
		hd.Set("X-Signature", signCloudEvents(secret, body))
		if status, _, _ := h.send(t, http.MethodPost, "/v1/hooks/bus", hd, body); status != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d", status)
		}
	})
	t.Run("ungranted source: 202 with no targets", func(t *testing.T) {
		hd, body := signed("structured")
		status, _, resp := h.send(t, http.MethodPost, "/v1/hooks/ungranted-bus", hd, body)
		if r := accepted(t, resp); status != http.StatusAccepted || r.ID != "A234-1234-1234" || len(r.Targets) != 0 {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
}
