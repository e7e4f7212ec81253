package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestPublishFailureAfterLookupIsUnavailable breaks the work stream after
// the accepted-events lookup has nothing to refuse: the lookup succeeds,
// then the real server fails the work publish. Every such failure is one
// JetStream may heal, so it must wrap ErrUnavailable (ingest's 503, which a
// sender retries), and the event must stay unrecorded so the retry is not
// skipped as a duplicate.
func TestPublishFailureAfterLookupIsUnavailable(t *testing.T) {
	tests := []struct {
		name  string
		fault func(t *testing.T, q *Queue)
	}{
		{name: "work stream deleted", fault: func(t *testing.T, q *Queue) {
			if err := q.js.DeleteStream(context.Background(), WorkStream); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "work stream no longer takes the app's subject", fault: func(t *testing.T, q *Queue) {
			updateWorkStream(t, q, func(c *jetstream.StreamConfig) {
				c.Subjects = []string{WorkSubjectPrefix + "other"}
			})
		}},
		{name: "work stream full", fault: func(t *testing.T, q *Queue) {
			if err := q.Publish(context.Background(), accepted("github", "d-first", "api")); err != nil {
				t.Fatal(err)
			}
			// Dispatch would drain it: a full work queue heals by itself.
			updateWorkStream(t, q, func(c *jetstream.StreamConfig) {
				c.MaxMsgs = 1
				c.Discard = jetstream.DiscardNew
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Short: a publish without a stream waits for JetStream's retries.
			q := openQueue(t, startEmbedded(t, t.TempDir()), Config{PublishTimeout: time.Second})
			tt.fault(t, q)
			err := q.Publish(context.Background(), accepted("github", "d-1", "api"))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Publish with a broken work stream = %v, want ErrUnavailable", err)
			}
			if _, err := q.Accepted(context.Background(), "github", "d-1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Fatalf("event recorded as accepted after a failed publish (lookup: %v): the retry would be dropped", err)
			}
		})
	}
}

func updateWorkStream(t *testing.T, q *Queue, change func(*jetstream.StreamConfig)) {
	t.Helper()
	ctx := context.Background()
	s, err := q.js.Stream(ctx, WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	change(&cfg)
	if _, err := q.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestDedupSurvivesRestartAfterDispatch: once a work message was dispatched
// (acked, so gone from the work-queue stream) and the server restarted,
// JetStream's own duplicate window has forgotten it. A sender's redelivery
// of the same event must still store no new work: the accepted-events
// bucket is what remembers it.
func TestDedupSurvivesRestartAfterDispatch(t *testing.T) {
	dir := t.TempDir()
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(context.Background(), nc, Config{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := accepted("github", "d-1", "api", "web")
	if err := q.Publish(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, q, len(a.Targets)); len(got) != len(a.Targets) {
		t.Fatalf("dispatched %v before the restart, want each of %d work items", got, len(a.Targets))
	}
	if n := pending(t, q); n != 0 {
		t.Fatalf("work stream holds %d messages after dispatch, want 0", n)
	}
	nc.Close()
	e.Shutdown()

	q = openQueue(t, startEmbedded(t, dir), Config{})
	if err := q.Publish(context.Background(), a); !errors.Is(err, ErrAlreadyStored) {
		t.Fatalf("redelivery after a restart: %v, want ErrAlreadyStored", err)
	}
	if n := pending(t, q); n != 0 {
		t.Errorf("redelivery after dispatch and restart stored %d new work messages, want 0", n)
	}
	s, err := q.js.Stream(context.Background(), WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	if last := s.CachedInfo().State.LastSeq; last != uint64(len(a.Targets)) {
		t.Errorf("work stream last sequence = %d, want %d (nothing published twice)", last, len(a.Targets))
	}
}
