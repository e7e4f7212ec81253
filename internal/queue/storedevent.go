package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredEvent returns the event eventID of source as the events stream
// keeps it (attributes and payload): what a check run's Re-run routes
// again. It reads the stream from the event's accepted record, so only a
// minute of other events; ErrNotFound when the record or the event expired.
func (q *Queue) StoredEvent(ctx context.Context, source, eventID string) (event.Event, error) {
	rec, err := q.Accepted(ctx, source, eventID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return event.Event{}, fmt.Errorf("stored event %s: %w", eventID, ErrNotFound)
	case err != nil:
		return event.Event{}, fmt.Errorf("stored event %s: %w: %w", eventID, ErrUnavailable, err)
	}
	// The record is written just after the event; a minute covers the
	// clocks of other replicas.
	var found *event.Event
	err = q.readStream(ctx, EventsStream, rec.Time.Add(-time.Minute), func(msg jetstream.Msg, _ *jetstream.MsgMetadata) (bool, error) {
		if msg.Subject() != EventsSubjectPrefix+source {
			return true, nil
		}
		ev := event.New()
		if json.Unmarshal(msg.Data(), &ev) != nil || ev.ID() != eventID {
			return true, nil
		}
		found = &ev
		return false, nil
	})
	if err != nil {
		return event.Event{}, fmt.Errorf("stored event %s: %w: %w", eventID, ErrUnavailable, err)
	}
	if found == nil {
		return event.Event{}, fmt.Errorf("stored event %s: %w", eventID, ErrNotFound)
	}
	return *found, nil
}
