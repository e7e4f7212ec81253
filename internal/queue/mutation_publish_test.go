package queue

// Tests added for publish.go mutants that lived (docs/testing.md,
// "Mutation testing").

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPublishRefusesWhenTheLookupFails: when the accepted-events bucket
// cannot be read, Publish cannot tell a redelivery from a new event: it
// answers ErrUnavailable (the sender retries) and stores nothing, rather
// than storing what may be a second copy.
func TestPublishRefusesWhenTheLookupFails(t *testing.T) {
	q := openQueue(t, startEmbedded(t, t.TempDir()), Config{PublishTimeout: time.Second})
	if err := q.js.DeleteStream(context.Background(), acceptedStream); err != nil {
		t.Fatal(err)
	}
	for _, digest := range []string{"", "abc/0"} { // one key looked up, then two
		a := accepted("github", "d-1", "api")
		a.BodyDigest = digest
		err := q.Publish(context.Background(), a)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "look up accepted event") {
			t.Fatalf("Publish with the accepted bucket gone (digest %q) = %v, want the lookup's ErrUnavailable", digest, err)
		}
	}
	for _, stream := range []string{EventsStream, WorkStream} {
		if n := streamMsgs(t, q, stream); n != 0 {
			t.Errorf("%s holds %d messages after refused publishes, want 0", stream, n)
		}
	}
}
