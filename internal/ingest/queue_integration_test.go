//go:build !nonats

// The tests in this file run ingest on the real queue, on an embedded NATS
// server: they check that memStore's contract is the queue's. Every other
// test uses memStore; `-tags nonats` leaves these out (mutation testing).

package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

func TestQueueCapturedBodyNewDeliveryID(t *testing.T) {
	checkCapturedBodyNewDeliveryID(t, newTestQueue(t))
}

func TestQueueInvalidEventRefusesTheDelivery(t *testing.T) {
	checkInvalidEventRefused(t, newTestQueue(t))
}

// newTestQueue opens the queue on a real embedded NATS server, stopped at
// the test's end.
func newTestQueue(t testing.TB) *queue.Queue {
	t.Helper()
	nats, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Shutdown)
	nc, err := nats.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := queue.Open(context.Background(), nc, queue.Config{PublishTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
