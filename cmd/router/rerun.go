package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/ingest"
)

var _ ingest.EventFinder = (*queueGate)(nil)

// StoredEvent finds a stored event (a check run's Re-run) once the queue
// is open.
func (g *queueGate) StoredEvent(ctx context.Context, source, eventID string) (event.Event, error) {
	q := g.q.Load()
	if q == nil {
		return event.Event{}, errQueueNotOpen
	}
	return q.StoredEvent(ctx, source, eventID)
}
