package dispatch

import (
	"context"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// The event's trace context goes on the run as annotations, when valid:
// work read from the queue is not trusted to hold a well-formed one.
func TestRenderAnnotatesTraceContext(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		what, traceparent, tracestate, want string
	}{
		{"valid", valid, "congo=t61rcWkgMzE", valid},
		{"malformed", "not-a-traceparent", "", ""},
		{"none", "", "", ""},
	} {
		w := testWork(func(w *queue.Work) {
			if c.traceparent != "" {
				w.Event.SetExtension("traceparent", c.traceparent)
			}
			if c.tracestate != "" {
				w.Event.SetExtension("tracestate", c.tracestate)
			}
		})
		pr, err := Render(context.Background(), w)
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if got := pr.Annotations[AnnotationTraceparent]; got != c.want {
			t.Errorf("%s: %s = %q, want %q", c.what, AnnotationTraceparent, got, c.want)
		}
		if got, want := pr.Annotations[AnnotationTracestate], map[bool]string{true: c.tracestate}[c.want != ""]; got != want {
			t.Errorf("%s: %s = %q, want %q", c.what, AnnotationTracestate, got, want)
		}
	}
}
