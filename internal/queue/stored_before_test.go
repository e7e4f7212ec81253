package queue

import (
	"context"
	"errors"
	"testing"
)

// TestRedeliveryNamesWhatWasStored: a redelivery is answered with the
// event stored before. For a body replayed under a new delivery id that is
// the first delivery, whose runs exist, not runs named after the new id.
func TestRedeliveryNamesWhatWasStored(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	first := accepted("github", "d-1", "api", "web")
	first.BodyDigest = "abc/0"
	if err := q.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	replay := accepted("github", "d-2", "api", "web") // the same body, another delivery id
	replay.BodyDigest = "abc/0"
	for _, a := range []struct {
		name string
		pub  func() error
	}{
		{"the same delivery again", func() error { return q.Publish(ctx, first) }},
		{"the body under a new delivery id", func() error { return q.Publish(ctx, replay) }},
	} {
		err := a.pub()
		if !errors.Is(err, ErrAlreadyStored) {
			t.Fatalf("%s: %v, want ErrAlreadyStored", a.name, err)
		}
		var stored *StoredBefore
		if !errors.As(err, &stored) {
			t.Fatalf("%s: %T, want *StoredBefore", a.name, err)
		}
		id, targets := stored.StoredEvent()
		if id != "d-1" || len(targets) != 2 || targets[0].Name != "api-build-d-1" || targets[1].Name != "web-build-d-1" || targets[1].Namespace != "web" {
			t.Fatalf("%s: stored event %q with targets %+v, want d-1's", a.name, id, targets)
		}
	}
	if got := streamMsgs(t, q, EventsStream); got != 1 {
		t.Errorf("events stored = %d, want 1", got)
	}
}
