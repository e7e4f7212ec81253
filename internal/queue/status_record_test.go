package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// statusOf returns the state Status reports for app's target of event id.
func statusOf(t *testing.T, q *Queue, id, app string) TargetStatus {
	t.Helper()
	st, err := q.Status(context.Background(), "github", id)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range st.Targets {
		if ts.App == app {
			return ts
		}
	}
	t.Fatalf("event %s has no target %s: %+v", id, app, st.Targets)
	return TargetStatus{}
}

// Dispatch states live in the event's accepted record: a kept event costs
// the embedded nats-server one subject in memory, not one more per target
// (issue 12's memory per kept event).
func TestStatesLiveInTheEventsRecord(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	a := accepted("github", "r-1", "api", "web", "docs")
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	q.setStatus(ctx, workOf(a, 0), StateCreated, "", 1)
	q.setStatus(ctx, workOf(a, 1), StateFailed, "api server timeout", 2)
	if n := streamMsgs(t, q, "KV_"+StatusBucket); n != 0 {
		t.Fatalf("status bucket holds %d keys, want the states in the event's record", n)
	}
	rec, err := q.Accepted(ctx, "github", "r-1")
	if err != nil {
		t.Fatal(err)
	}
	if s := rec.Targets[0].Status; s == nil || s.State != StateCreated || s.Attempts != 1 {
		t.Errorf("record's api state %+v, want created after 1 attempt", s)
	}
	if s := rec.Targets[2].Status; s != nil {
		t.Errorf("record's docs state %+v, want none (queued)", s)
	}
	if st := statusOf(t, q, "r-1", "web"); st.State != StateFailed || st.Reason != "api server timeout" || st.Attempts != 2 || st.Name != a.Targets[1].Name {
		t.Errorf("web %+v", st)
	}
	if st := statusOf(t, q, "r-1", "docs"); st.State != StateQueued {
		t.Errorf("docs %+v, want queued", st)
	}
}

// A target dispatched before Publish wrote its event's record gets a key
// of its own, as every target did before; Status keeps the later of that
// key and the record, and a retried dead letter clears both.
func TestStatusBeforeTheRecordIsWritten(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	a := accepted("github", "r-2", "api")
	w := workOf(a, 0)
	q.setStatus(ctx, w, StateCreated, "", 1) // no record yet
	if n := streamMsgs(t, q, "KV_"+StatusBucket); n != 1 {
		t.Fatalf("status bucket holds %d keys, want the target's own", n)
	}
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, q, "r-2", "api"); st.State != StateCreated || st.Attempts != 1 {
		t.Fatalf("api %+v, want created from its own key", st)
	}
	time.Sleep(2 * time.Millisecond) // the record's state is the later one
	q.setStatus(ctx, w, StateDeadLettered, "exhausted", 5)
	if st := statusOf(t, q, "r-2", "api"); st.State != StateDeadLettered || st.Attempts != 5 {
		t.Fatalf("api %+v, want the record's later dead-lettered", st)
	}
	q.clearStatus(ctx, w)
	if st := statusOf(t, q, "r-2", "api"); st.State != StateQueued {
		t.Fatalf("api %+v after a retry, want queued", st)
	}
	if _, err := q.status.Get(ctx, workStatusKey(w)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the target's own key after the retry: %v, want it deleted", err)
	}
	// Clearing a queued target writes nothing.
	before, err := q.accepted.Get(ctx, acceptedKey("github", "r-2").key())
	if err != nil {
		t.Fatal(err)
	}
	q.clearStatus(ctx, w)
	after, err := q.accepted.Get(ctx, acceptedKey("github", "r-2").key())
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision() != before.Revision() {
		t.Fatalf("record revision %d → %d: clearing a queued target rewrote it", before.Revision(), after.Revision())
	}
}

// Targets of one event finishing together each keep their state: the
// record is updated with a compare-and-set, and a writer that keeps losing
// the race falls back to its own key.
func TestTargetsFinishingTogetherKeepEachOthersStates(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	apps := make([]string, 24)
	for i := range apps {
		apps[i] = fmt.Sprintf("app%02d", i)
	}
	a := accepted("github", "r-3", apps...)
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range apps {
		wg.Go(func() { q.setStatus(ctx, workOf(a, i), StateCreated, "", i+1) })
	}
	wg.Wait()
	for i, app := range apps {
		if st := statusOf(t, q, "r-3", app); st.State != StateCreated || st.Attempts != i+1 {
			t.Errorf("%s %+v, want created after %d attempts", app, st, i+1)
		}
	}
}
