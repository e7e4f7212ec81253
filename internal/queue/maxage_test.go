package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// An events max age under the default window shortens the window with it:
// JetStream refuses a window longer than the stream's max age, so `serve
// --events-max-age 1m` must not fail for a default it never set.
func TestShortEventsMaxAgeShortensTheDuplicateWindow(t *testing.T) {
	c, err := Config{EventsMaxAge: time.Minute}.withDefaults()
	if err != nil {
		t.Fatalf("events max age 1m: %v", err)
	}
	if c.DuplicateWindow != time.Minute {
		t.Errorf("duplicate window = %s, want 1m", c.DuplicateWindow)
	}
	if c, _ := (Config{EventsMaxAge: time.Hour}).withDefaults(); c.DuplicateWindow != DefaultDuplicateWindow {
		t.Errorf("events max age 1h: duplicate window = %s, want the default %s", c.DuplicateWindow, DefaultDuplicateWindow)
	}
	if c, _ := (Config{}).withDefaults(); c.DuplicateWindow != 2*time.Minute || c.EventsMaxAge != 7*24*time.Hour {
		t.Errorf("defaults: window %s, max age %s", c.DuplicateWindow, c.EventsMaxAge)
	}
	if _, err := (Config{EventsMaxAge: time.Hour, DuplicateWindow: 2 * time.Hour}).withDefaults(); err == nil {
		t.Error("an explicit window longer than the max age is accepted")
	}
}

// TestRedeliveryAfterTheDuplicateWindowStoresNothing: JetStream forgets a
// message id after the (short) duplicate window; a redelivery after that
// must still store nothing, because the accepted-events bucket remembers
// the event for the events' max age.
func TestRedeliveryAfterTheDuplicateWindowStoresNothing(t *testing.T) {
	const window = 200 * time.Millisecond
	q := openQueue(t, startEmbedded(t, t.TempDir()), Config{DuplicateWindow: window})
	ctx := context.Background()
	a := accepted("github", "d-window", "api")
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	events, work := streamMsgs(t, q, EventsStream), streamMsgs(t, q, WorkStream)
	time.Sleep(3 * window)
	if err := q.Publish(ctx, a); !errors.Is(err, ErrAlreadyStored) {
		t.Fatalf("redelivery after the window: %v, want ErrAlreadyStored", err)
	}
	if e, w := streamMsgs(t, q, EventsStream), streamMsgs(t, q, WorkStream); e != events || w != work {
		t.Errorf("redelivery after the window stored events %d→%d, work %d→%d; want nothing new", events, e, work, w)
	}
	// The window really had passed: JetStream now stores a message under
	// the work item's id again (so the bucket, not JetStream, deduplicated).
	m := nats.NewMsg(WorkSubjectPrefix + "api")
	m.Data = []byte("{}")
	ack, err := q.js.PublishMsg(ctx, m, jetstream.WithMsgID(workKey(workOf(a, 0))))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Duplicate {
		t.Fatal("JetStream still remembers the work id: the window had not passed, the test proves nothing")
	}
}
