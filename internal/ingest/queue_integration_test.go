//go:build !nonats

// The tests in this file run ingest on the real queue, on an embedded NATS
// server: they check that memStore's contract is the queue's. Every other
// test uses memStore; `-tags nonats` leaves these out (mutation testing).

package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
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

// queueDeferrer is how `router serve` defers: onto the queue's intake.
type queueDeferrer struct{ q *queue.Queue }

func (d queueDeferrer) Defer(ctx context.Context, def Deferred) error {
	return d.q.StoreIntake(ctx, queue.Intake(def))
}

// TestQueueBurstStoresEveryBodyAsSent: deferred webhooks sent together
// (their body buffers reused from one request to the next) are each
// stored, judged and kept with the body their sender signed.
func TestQueueBurstStoresEveryBodyAsSent(t *testing.T) {
	secret := newSecret(t)
	q := newTestQueue(t)
	s := NewServer(Config{Rules: routing.NewHolder(mustRules(t, ghSource, map[string]string{"S": string(secret)})),
		Publisher: q, Deferrer: queueDeferrer{q}, DeferAbove: DefaultDeferAbove})
	s.deferAll = true
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	push := readSample(t, "github", "push.json")
	const n = 40
	bodyOf := func(i int) []byte {
		return bytes.Replace(push, []byte(`"ref": "refs/heads/main"`), []byte(fmt.Sprintf(`"delivery": "d-%d", "ref": "refs/heads/main"`, i)), 1)
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				body := bodyOf(i)
				hd := githubHeader("push", fmt.Sprintf("d-%d", i))
				hd.Set("X-Hub-Signature-256", signGitHub(secret, body))
				if status, out := post(t, srv.URL+"/v1/hooks/gh", hd, body); status != http.StatusAccepted || !strings.Contains(string(out), `"deferred":true`) {
					t.Errorf("d-%d: status %d: %s", i, status, out)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = q.ConsumeIntake(ctx, queue.IntakeConfig{}, func(ctx context.Context, in queue.Intake) error { return s.Judge(ctx, Deferred(in)) })
	}()
	for i := range n {
		id := fmt.Sprintf("d-%d", i)
		deadline := time.Now().Add(20 * time.Second)
		for {
			ev, err := q.StoredEvent(ctx, "gh", id)
			if err == nil {
				if !bytes.Equal(ev.Data(), bodyOf(i)) {
					t.Fatalf("%s stored with another body:\n%.200s", id, ev.Data())
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not stored: %v", id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
