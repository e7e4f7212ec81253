package dispatch

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/extensions"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceContext is the event's W3C trace context (the CloudEvents
// distributed-tracing extension), when OpenTelemetry's propagator reads it
// as valid: work is not trusted to hold a well-formed one.
func traceContext(ev event.Event) (traceparent, tracestate string, ok bool) {
	d, ok := extensions.GetDistributedTracingExtension(ev)
	if !ok {
		return "", "", false
	}
	carrier := propagation.MapCarrier{"traceparent": d.TraceParent, "tracestate": d.TraceState}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
	if !sc.IsValid() {
		return "", "", false
	}
	return d.TraceParent, sc.TraceState().String(), true
}
