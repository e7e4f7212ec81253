package queue

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestPublishWaitsForEveryAck: the event and its work are sent together,
// and one refused work item fails the whole Publish with ErrUnavailable,
// without the accepted record, so the sender's retry stores the rest.
func TestPublishWaitsForEveryAck(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	s, err := q.js.Stream(ctx, WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	// One message per subject, and the next one refused: app "full" is.
	cfg := s.CachedInfo().Config
	cfg.MaxMsgsPerSubject, cfg.Discard, cfg.DiscardNewPerSubject = 1, jetstream.DiscardNew, true
	if _, err := q.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := q.js.Publish(ctx, WorkSubjectPrefix+"full", []byte("{}")); err != nil {
		t.Fatal(err)
	}

	a := accepted("github", "d-acks", "api", "full", "web")
	if err := q.Publish(ctx, a); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish with a refused work item = %v, want ErrUnavailable", err)
	}
	if _, err := q.Accepted(ctx, "github", "d-acks"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("accepted record after a refused work item: %v, want none", err)
	}

	if err := s.Purge(ctx, jetstream.WithPurgeSubject(WorkSubjectPrefix+"full")); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, a); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := q.Accepted(ctx, "github", "d-acks"); err != nil {
		t.Fatalf("accepted record after the retry: %v", err)
	}
	if got := streamMsgs(t, q, WorkStream); got != 3 {
		t.Errorf("work after the retry = %d, want 3 (one per app, none twice)", got)
	}
}
