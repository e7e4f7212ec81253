package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fastRetry keeps tests quick; they assert counts, never timing.
var fastRetry = ConsumerConfig{BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}

// runConsume runs q.Consume in the background. The returned stop cancels it
// and waits for it to return (also done at cleanup).
func runConsume(t testing.TB, q *Queue, cfg ConsumerConfig, h Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- q.Consume(ctx, cfg, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Consume returned %v, want nil after cancel", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Consume did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// counter records handler calls per work item.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(w Work) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[workKey(w)]++
	return c.n[workKey(w)]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.n))
	for k, v := range c.n {
		m[k] = v
	}
	return m
}

func pending(t testing.TB, q *Queue) uint64 {
	t.Helper()
	n, err := q.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func deadLetters(t testing.TB, q *Queue) []DeadLetter {
	t.Helper()
	dls, err := q.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dls
}

// collect consumes until n work items were handled successfully and the
// work stream is empty, stops, and returns the deliveries per work item.
func collect(t testing.TB, q *Queue, n int) map[string]int {
	t.Helper()
	var c counter
	stop := runConsume(t, q, fastRetry, func(_ context.Context, w Work) error {
		c.add(w)
		return nil
	})
	waitFor(t, fmt.Sprintf("%d deliveries and an empty work stream", n), func() bool {
		return c.total() >= n && pending(t, q) == 0
	})
	stop()
	return c.snapshot()
}

func TestConsumeDeliversEachWorkOnce(t *testing.T) {
	q := newQueue(t)
	want := map[string]bool{}
	for i := range 5 {
		a := accepted("github", fmt.Sprintf("d-%d", i), "api", "web", "docs")
		// A sender's redelivery must not produce a second dispatch.
		for range 2 {
			if err := q.Publish(context.Background(), a); err != nil && !errors.Is(err, ErrAlreadyStored) {
				t.Fatal(err)
			}
		}
		for i := range a.Targets {
			w := workOf(a, i)
			want[workKey(w)] = true
		}
	}
	got := collect(t, q, len(want))
	if len(got) != len(want) {
		t.Errorf("delivered %d distinct work items, want %d", len(got), len(want))
	}
	for k := range want {
		if got[k] != 1 {
			t.Errorf("%s delivered %d times, want 1", k, got[k])
		}
	}
	if dls := deadLetters(t, q); len(dls) != 0 {
		t.Errorf("dead letters = %+v, want none", dls)
	}
}

func TestConsumeFailures(t *testing.T) {
	errBoom := errors.New("api server unavailable")
	tests := []struct {
		name        string
		maxAttempts int
		// fail returns the handler's answer on call n (1-based).
		fail         func(n int) error
		wantCalls    int
		wantDead     bool
		wantReason   string
		wantAttempts int
	}{
		{
			name:      "success first time",
			fail:      func(int) error { return nil },
			wantCalls: 1,
		},
		{
			name:         "permanent",
			fail:         func(int) error { return Permanent(errors.New("forbidden namespace")) },
			wantCalls:    1,
			wantDead:     true,
			wantReason:   ReasonPermanent,
			wantAttempts: 1,
		},
		{
			name: "transient until the third attempt",
			fail: func(n int) error {
				if n < 3 {
					return errBoom
				}
				return nil
			},
			wantCalls: 3,
		},
		{
			name:         "exhausted",
			maxAttempts:  4,
			fail:         func(int) error { return errBoom },
			wantCalls:    4,
			wantDead:     true,
			wantReason:   ReasonExhausted,
			wantAttempts: 4,
		},
		{
			name: "permanent after transient",
			fail: func(n int) error {
				if n < 2 {
					return errBoom
				}
				return fmt.Errorf("render: %w", Permanent(errors.New("invalid template")))
			},
			wantCalls:    2,
			wantDead:     true,
			wantReason:   ReasonPermanent,
			wantAttempts: 2,
		},
		{
			name:         "permanent after three attempts",
			fail:         func(int) error { return PermanentAfter(errors.New("forbidden"), 3) },
			wantCalls:    3,
			wantDead:     true,
			wantReason:   ReasonPermanent,
			wantAttempts: 3,
		},
		{
			name: "permanent-after error that clears up",
			fail: func(n int) error {
				if n < 2 {
					return PermanentAfter(errors.New("forbidden while caches fill"), 3)
				}
				return nil
			},
			wantCalls: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(t)
			a := accepted("github", "d-1", "api")
			if err := q.Publish(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			cfg := fastRetry
			cfg.MaxAttempts = tt.maxAttempts
			var c counter
			stop := runConsume(t, q, cfg, func(_ context.Context, w Work) error {
				return tt.fail(c.add(w))
			})
			waitFor(t, "the work stream to empty", func() bool { return pending(t, q) == 0 })
			stop()

			if got := c.total(); got != tt.wantCalls {
				t.Errorf("handler calls = %d, want %d", got, tt.wantCalls)
			}
			dls := deadLetters(t, q)
			if !tt.wantDead {
				if len(dls) != 0 {
					t.Errorf("dead letters = %+v, want none", dls)
				}
				return
			}
			if len(dls) != 1 {
				t.Fatalf("dead letters = %d, want 1", len(dls))
			}
			dl := dls[0]
			if dl.Reason != tt.wantReason || dl.Attempts != tt.wantAttempts {
				t.Errorf("dead letter reason %q attempts %d, want %q %d", dl.Reason, dl.Attempts, tt.wantReason, tt.wantAttempts)
			}
			if workKey(dl.Work) != workKey(workOf(a, 0)) || !reflect.DeepEqual(dl.Work.Target, workOf(a, 0).Target) {
				t.Errorf("dead letter work = %+v, want %+v", dl.Work, workOf(a, 0))
			}
			if dl.LastError == "" || dl.Time.IsZero() {
				t.Errorf("dead letter misses its error or time: %+v", dl)
			}
		})
	}
}

func TestConsumeUndecodable(t *testing.T) {
	q := newQueue(t)
	raw := []byte("not json")
	if _, err := q.js.Publish(context.Background(), WorkSubjectPrefix+"api", raw, jetstream.WithMsgID("junk")); err != nil {
		t.Fatal(err)
	}
	var c counter
	stop := runConsume(t, q, fastRetry, func(_ context.Context, w Work) error {
		c.add(w)
		return nil
	})
	waitFor(t, "the work stream to empty", func() bool { return pending(t, q) == 0 })
	stop()

	if c.total() != 0 {
		t.Errorf("handler called %d times for undecodable work", c.total())
	}
	dls := deadLetters(t, q)
	if len(dls) != 1 || dls[0].Reason != ReasonUndecodable || string(dls[0].Raw) != string(raw) {
		t.Fatalf("dead letters = %+v, want one undecodable with the raw message", dls)
	}
	m := lastMsg(t, q, DLQStream, DLQSubjectPrefix+"api")
	if id := m.Header.Get(jetstream.MsgIDHeader); id != "junk/dlq" {
		t.Errorf("dead letter msg id = %q, want junk/dlq", id)
	}
}

func TestConsumeSharedDurable(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	q1 := openQueue(t, e, Config{})
	q2 := openQueue(t, e, Config{})

	const events = 20
	for i := range events {
		if err := q1.Publish(context.Background(), accepted("github", fmt.Sprintf("d-%d", i), "api")); err != nil {
			t.Fatal(err)
		}
	}
	// Each replica's first handler call holds its work until the other
	// replica got some too: one replica cannot drain the stream alone, so
	// the test fails unless both really share the work.
	var all, c1, c2 counter
	shared := func(mine, other *counter) Handler {
		return func(_ context.Context, w Work) error {
			all.add(w)
			if mine.add(w) == 1 {
				deadline := time.Now().Add(20 * time.Second)
				for other.total() == 0 {
					if time.Now().After(deadline) {
						t.Error("the other replica got no work while this one held its first item")
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			return nil
		}
	}
	cfg := fastRetry
	cfg.Concurrency = 2
	stop1 := runConsume(t, q1, cfg, shared(&c1, &c2))
	stop2 := runConsume(t, q2, cfg, shared(&c2, &c1))
	waitFor(t, "all work handled", func() bool { return all.total() >= events && pending(t, q1) == 0 })
	stop1()
	stop2()

	got := all.snapshot()
	if len(got) != events || all.total() != events {
		t.Errorf("handled %d distinct items in %d calls, want %d in %d", len(got), all.total(), events, events)
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("%s handled %d times", k, n)
		}
	}
	if c1.total() == 0 || c2.total() == 0 {
		t.Errorf("replica 1 handled %d, replica 2 handled %d: both must take work from the shared consumer", c1.total(), c2.total())
	}
}

func TestConsumeDrainsInFlight(t *testing.T) {
	q := newQueue(t)
	if err := q.Publish(context.Background(), accepted("github", "d-1", "api")); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	var handlerErr error
	stop := runConsume(t, q, fastRetry, func(ctx context.Context, _ Work) error {
		close(started)
		<-release
		handlerErr = ctx.Err()
		return nil
	})
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Consume returned while a handler was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	if handlerErr != nil {
		t.Errorf("handler context ended with the consume context: %v", handlerErr)
	}
	if n := pending(t, q); n != 0 {
		t.Errorf("pending after drain = %d, want 0 (the in-flight work was acked)", n)
	}
}

// TestConsumeAbortLeavesWorkQueued: a dispatch still running at the drain
// deadline is interrupted, and its work stays queued (not dead-lettered,
// not lost) and is done by the next consumer.
func TestConsumeAbortLeavesWorkQueued(t *testing.T) {
	q := newQueue(t)
	if err := q.Publish(context.Background(), accepted("github", "d-1", "api")); err != nil {
		t.Fatal(err)
	}
	hctx, abort := context.WithCancel(context.Background())
	started := make(chan struct{})
	var once sync.Once
	cfg := fastRetry
	cfg.HandlerContext = hctx
	stop := runConsume(t, q, cfg, func(ctx context.Context, _ Work) error {
		once.Do(func() { close(started) })
		<-ctx.Done() // a dispatch that outlasts the grace
		return ctx.Err()
	})
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	// As serve does: stop fetching, then at the deadline interrupt.
	select {
	case <-stopped:
		t.Fatal("Consume returned while a handler was running")
	case <-time.After(50 * time.Millisecond):
	}
	abort()
	<-stopped
	if n := len(deadLetters(t, q)); n != 0 {
		t.Fatalf("%d dead letters: an interrupted dispatch is not a failure", n)
	}
	if n := pending(t, q); n != 1 {
		t.Fatalf("pending after abort = %d, want 1", n)
	}
	var c counter
	runConsume(t, q, fastRetry, func(_ context.Context, w Work) error { c.add(w); return nil })
	waitFor(t, "the next consumer to do the work", func() bool { return pending(t, q) == 0 })
	if c.total() != 1 {
		t.Fatalf("next consumer ran %d times, want 1", c.total())
	}
}

func TestDeadLetterJSON(t *testing.T) {
	tests := []struct {
		name string
		dl   DeadLetter
	}{
		{name: "with work", dl: DeadLetter{Work: workOf(accepted("github", "d-1", "api"), 0), Reason: ReasonPermanent, Attempts: 1, LastError: "x"}},
		{name: "undecodable", dl: DeadLetter{Reason: ReasonUndecodable, Attempts: 1, Raw: []byte("junk")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.dl)
			if err != nil {
				t.Fatal(err)
			}
			var got DeadLetter
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.Reason != tt.dl.Reason || string(got.Raw) != string(tt.dl.Raw) || !reflect.DeepEqual(got.Work.Target, tt.dl.Work.Target) {
				t.Errorf("round trip = %+v, want %+v", got, tt.dl)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	base, maxDelay := 100*time.Millisecond, time.Second
	for attempt := 1; attempt <= 10; attempt++ {
		ceil := min(base<<(attempt-1), maxDelay)
		for range 100 {
			if d := backoff(attempt, base, maxDelay); d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %s, want within [0, %s]", attempt, d, ceil)
			}
		}
	}
	if d := backoff(1000, time.Second, time.Duration(1<<62)); d < 0 {
		t.Fatalf("backoff overflowed: %s", d)
	}
}

func TestRetryDelayFor(t *testing.T) {
	cfg := ConsumerConfig{BackoffBase: 10 * time.Millisecond, BackoffMax: time.Minute}
	plain := errors.New("503")
	for range 50 {
		if d := retryDelayFor(plain, 1, cfg); d > 10*time.Millisecond {
			t.Fatalf("first backoff %s exceeds the base", d)
		}
		if d := retryDelayFor(RetryAfter(plain, 20*time.Second), 1, cfg); d != 20*time.Second {
			t.Fatalf("Retry-After 20s gave %s", d)
		}
		if d := retryDelayFor(RetryAfter(plain, time.Hour), 1, cfg); d != time.Minute {
			t.Fatalf("Retry-After 1h gave %s, want the 1m cap", d)
		}
	}
}

// A backlog for one app does not hold up another app's work: apps are
// served in turn, not in arrival order (DESIGN.md section 5).
func TestConsumeServesAppsInTurn(t *testing.T) {
	q := newQueue(t)
	const backlog = 200
	for i := range backlog {
		if err := q.Publish(context.Background(), accepted("github", fmt.Sprintf("busy-%d", i), "busy")); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Publish(context.Background(), accepted("github", "quiet-1", "quiet")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	cfg := fastRetry
	cfg.Concurrency = 1 // one at a time: the order is the order of service
	stop := runConsume(t, q, cfg, func(_ context.Context, w Work) error {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, w.Target.App)
		return nil
	})
	waitFor(t, "every work item", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == backlog+1
	})
	stop()
	at := -1
	for i, app := range order {
		if app == "quiet" {
			at = i
			break
		}
	}
	// Arrival order would serve it last (position 200); in turn, it is
	// served within the first two rounds.
	if at < 0 || at > 2 {
		t.Fatalf("the quiet app's only work item was served at position %d of %d", at, len(order))
	}
}

// Routers before per-app consumers shared one unfiltered consumer; it is
// replaced, and the work it held is still delivered.
func TestConsumeReplacesTheSharedConsumer(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if _, err := q.js.CreateOrUpdateConsumer(ctx, WorkStream, jetstream.ConsumerConfig{
		Durable: "dispatch", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1,
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, accepted("github", "old-1", "web", "api")); err != nil {
		t.Fatal(err)
	}
	got := collect(t, q, 2)
	if len(got) != 2 {
		t.Fatalf("delivered %v, want both work items", got)
	}
	if _, err := q.js.Consumer(ctx, WorkStream, "dispatch"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the shared consumer is still there: %v", err)
	}
}

// During a rolling upgrade an old router may create the shared consumer
// again after a new one started; the new router drops it and carries on.
func TestConsumeDropsASharedConsumerCreatedLater(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	var c counter
	runConsume(t, q, fastRetry, func(_ context.Context, w Work) error {
		c.add(w)
		return nil
	})
	if _, err := q.js.CreateOrUpdateConsumer(ctx, WorkStream, jetstream.ConsumerConfig{
		Durable: "dispatch", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1,
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, accepted("github", "late-1", "web")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the work item", func() bool { return c.total() == 1 && pending(t, q) == 0 })
	if _, err := q.js.Consumer(ctx, WorkStream, "dispatch"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the shared consumer is still there: %v", err)
	}
}
