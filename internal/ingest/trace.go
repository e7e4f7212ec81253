package ingest

import (
	"context"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/extensions"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// carryTrace copies a W3C trace context sent with the request (the
// traceparent and tracestate headers a proxy or a tracing sender sets) to
// the event as the CloudEvents distributed-tracing extension, which
// dispatch puts on the PipelineRun: a trace can follow a webhook to its
// runs. OpenTelemetry's propagator parses it, so a malformed or all-zero
// traceparent is dropped rather than carried. An event that already has
// one (a CloudEvent sent with its own) keeps it.
func carryTrace(h http.Header, ev *event.Event) {
	if _, ok := extensions.GetDistributedTracingExtension(*ev); ok {
		return
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h))
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	extensions.DistributedTracingExtension{
		TraceParent: h.Get("traceparent"),
		TraceState:  sc.TraceState().String(),
	}.AddTracingAttributes(ev)
}
