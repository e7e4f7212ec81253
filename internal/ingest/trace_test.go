package ingest

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/extensions"
)

// A webhook's W3C trace context (set by a tracing proxy or sender) becomes
// the event's distributed-tracing extension; one OpenTelemetry's
// propagator would not accept is not carried.
func TestWebhookCarriesTraceContext(t *testing.T) {
	secret := []byte("trace-secret")
	h := newHookServer(t, "  - name: gh\n    kind: github\n    secret: {env: GH}\n", map[string]string{"GH": string(secret)})
	push := readSample(t, "github", "push.json")
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for i, c := range []struct {
		what, traceparent, tracestate string
		carried                       bool
	}{
		{"valid", valid, "congo=t61rcWkgMzE", true},
		{"malformed", "00-4bf92f35-00f067aa0ba902b7-01", "", false},
		{"all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "", false},
		{"none", "", "", false},
	} {
		// A body of its own each time: a signed body seen before is a replay.
		body := append(bytes.Clone(push), bytes.Repeat([]byte(" "), i)...)
		hd := githubHeader("push", "trace-"+string(rune('a'+i)))
		hd.Set("X-Hub-Signature-256", signGitHub(secret, body))
		if c.traceparent != "" {
			hd.Set("traceparent", c.traceparent)
		}
		if c.tracestate != "" {
			hd.Set("tracestate", c.tracestate)
		}
		if status, _, body := h.send(t, http.MethodPost, "/v1/hooks/gh", hd, body); status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", c.what, status, body)
		}
		if n := len(h.store.stored); n != i+1 {
			t.Fatalf("%s: %d events stored, want %d", c.what, n, i+1)
		}
		stored := h.store.stored[i].Event
		d, ok := extensions.GetDistributedTracingExtension(stored)
		switch {
		case ok != c.carried:
			t.Errorf("%s: traceparent carried = %v, want %v (%+v)", c.what, ok, c.carried, d)
		case ok && (d.TraceParent != c.traceparent || d.TraceState != c.tracestate):
			t.Errorf("%s: carried %+v, want %s / %s", c.what, d, c.traceparent, c.tracestate)
		}
	}
}
