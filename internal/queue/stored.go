package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stored reports whether the event eventID of source was accepted and
// stored: whether a redelivery would store nothing new. It only reads (the
// accepted-events bucket, and the legacy one), so recovery can ask without
// side effects.
func (q *Queue) Stored(ctx context.Context, source, eventID string) (bool, error) {
	switch _, err := q.record(ctx, acceptedKey(source, eventID)); {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("look up stored event: %w", err)
	}
}

// StoredFor is how long Stored remembers an event: the accepted-events
// bucket's lifetime. An older delivery may have been stored and forgotten.
func (q *Queue) StoredFor(ctx context.Context) (time.Duration, error) {
	st, err := q.accepted.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("accepted events bucket: %w", err)
	}
	return st.TTL(), nil
}
