package queue

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A round takes every idle handler slot, not just the one it waited for.
func TestClaimSlotsTakesEveryIdleSlot(t *testing.T) {
	for _, tt := range []struct {
		name          string
		busy, limit   int
		want, holding int
	}{
		{name: "all idle", busy: 0, limit: 4, want: 4, holding: 4},
		{name: "one running", busy: 1, limit: 4, want: 3, holding: 4},
		{name: "one slot", busy: 0, limit: 1, want: 1, holding: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			slots := make(chan struct{}, tt.limit)
			for range tt.busy {
				slots <- struct{}{}
			}
			slots <- struct{}{} // the slot the loop waited for
			if got := claimSlots(slots, tt.limit); got != tt.want {
				t.Errorf("claimSlots = %d, want %d", got, tt.want)
			}
			if len(slots) != tt.holding {
				t.Errorf("%d slots taken, want %d", len(slots), tt.holding)
			}
		})
	}
}

// fetchCall is one ask of fetchRound's take.
type fetchCall struct {
	app  string
	most int
}

// A round shares its idle slots between the apps in turn, never asks an
// app for more than its room nor for nothing, and stops once the slots
// are used or the apps asked once.
func TestFetchRound(t *testing.T) {
	for _, tt := range []struct {
		name      string
		apps      []string
		start, n  int
		room      map[string]int // default 100
		available map[string]int // what take finds; default 100
		want      []fetchCall
		started   int
	}{
		{name: "equal shares", apps: []string{"a", "b"}, n: 4,
			want: []fetchCall{{"a", 2}, {"b", 2}}, started: 4},
		{name: "one app further each round", apps: []string{"a", "b"}, start: 1, n: 4,
			want: []fetchCall{{"b", 2}, {"a", 2}}, started: 4},
		{name: "a share of at least one, until the slots are used", apps: []string{"a", "b", "c"}, n: 2,
			want: []fetchCall{{"a", 1}, {"b", 1}}, started: 2},
		{name: "each app asked once a round", apps: []string{"a", "b"}, n: 4, available: map[string]int{"a": 1, "b": 1},
			want: []fetchCall{{"a", 2}, {"b", 2}}, started: 2},
		{name: "an app's room caps its ask", apps: []string{"a"}, n: 4, room: map[string]int{"a": 3},
			want: []fetchCall{{"a", 3}}, started: 3},
		{name: "an app without room is not asked", apps: []string{"a", "b"}, n: 4, room: map[string]int{"a": 0},
			want: []fetchCall{{"b", 2}}, started: 2},
		{name: "nor one over its room", apps: []string{"a", "b"}, n: 4, room: map[string]int{"a": -1, "b": 1},
			want: []fetchCall{{"b", 1}}, started: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls []fetchCall
			room := func(app string) int {
				if r, ok := tt.room[app]; ok {
					return r
				}
				return 100
			}
			take := func(app string, most int) int {
				calls = append(calls, fetchCall{app, most})
				if a, ok := tt.available[app]; ok {
					return min(a, most)
				}
				return most
			}
			got := fetchRound(context.Background(), tt.apps, tt.start, tt.n, room, take)
			if !reflect.DeepEqual(calls, tt.want) {
				t.Errorf("asks = %v, want %v", calls, tt.want)
			}
			if got != tt.started {
				t.Errorf("fetchRound = %d, want %d", got, tt.started)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := fetchRound(ctx, []string{"a"}, 0, 4, func(string) int { return 1 }, func(string, int) int {
		t.Error("a stopped round fetched")
		return 0
	}); got != 0 {
		t.Errorf("stopped round = %d, want 0", got)
	}
}

// An app's room is MaxAckPending less its running and delayed work.
func TestRoomCountsRunningAndDelayedWork(t *testing.T) {
	c := &consumer{cfg: ConsumerConfig{MaxAckPending: 5}, loads: map[string]*appLoad{}}
	l := c.load("web")
	l.running.Add(2)
	l.delayed.Add(1)
	if got := l.unacked(); got != 3 {
		t.Errorf("unacked = %d, want 3", got)
	}
	if got := c.room("web"); got != 2 {
		t.Errorf("room = %d, want 2", got)
	}
	if got := c.room("api"); got != 5 {
		t.Errorf("room of an app without work = %d, want 5", got)
	}
}

// Work handed back with a delay counts until the delay is over.
func TestRetryingCountsUntilTheDelayEnds(t *testing.T) {
	long := new(appLoad)
	long.retrying(time.Hour)
	if got := long.unacked(); got != 1 {
		t.Errorf("unacked during the delay = %d, want 1", got)
	}
	short := new(appLoad)
	short.retrying(time.Millisecond)
	waitFor(t, "the delayed work to stop counting", func() bool { return short.unacked() == 0 })
}

// Progress acks come more often than AckWait, so a running handler's
// message is never redelivered meanwhile.
func TestProgressEveryIsWithinAckWait(t *testing.T) {
	for _, ackWait := range []time.Duration{30 * time.Second, time.Second, 10 * time.Millisecond, 2 * time.Millisecond} {
		if p := progressEvery(ackWait); p <= 0 || p >= ackWait {
			t.Errorf("progressEvery(%s) = %s, want in (0, %s)", ackWait, p, ackWait)
		}
	}
	if p := progressEvery(time.Nanosecond); p <= 0 {
		t.Errorf("progressEvery(1ns) = %s, want a positive ticker period", p)
	}
}

// testConsumer is Consume's state for q with cfg's defaults filled in.
func testConsumer(t *testing.T, q *Queue, cfg ConsumerConfig, h Handler) *consumer {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newConsumer(q, cfg, h)
}

// The list of apps with work is reused while it is fresh, and listed
// again once it is not.
func TestAppsListCached(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if err := q.Publish(ctx, accepted("github", "c-1", "web")); err != nil {
		t.Fatal(err)
	}
	c := testConsumer(t, q, ConsumerConfig{}, nil)
	// Taken in the future: fresh however slow this machine is.
	c.appList, c.appsAt = []string{"cached"}, time.Now().Add(time.Hour)
	got, err := c.apps(ctx)
	if err != nil || !reflect.DeepEqual(got, []string{"cached"}) {
		t.Errorf("fresh apps = %v, %v; want the cached list", got, err)
	}
	c.appsAt = time.Time{}
	got, err = c.apps(ctx)
	if err != nil || !reflect.DeepEqual(got, []string{"web"}) {
		t.Errorf("stale apps = %v, %v; want [web]", got, err)
	}
}

// A shared consumer an old router created while this one ran makes the
// per-app consumer's creation fail: fetch drops it and creates it again in
// the same round.
func TestFetchDropsASharedConsumerAndRetries(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if _, err := q.js.CreateOrUpdateConsumer(ctx, WorkStream, jetstream.ConsumerConfig{
		Durable: "dispatch", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1,
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, accepted("github", "s-1", "web")); err != nil {
		t.Fatal(err)
	}
	c := testConsumer(t, q, ConsumerConfig{}, nil)
	msgs := c.fetch(ctx, "web", 1)
	if len(msgs) != 1 {
		t.Fatalf("fetched %d messages, want the one work item", len(msgs))
	}
	if _, err := q.js.Consumer(ctx, WorkStream, "dispatch"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the shared consumer is still there: %v", err)
	}
}

// An app's consumer has the consumer settings, and the server removes it
// once unused for a long while (apps come and go with the manifest).
func TestPerAppConsumerSettings(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	c := testConsumer(t, q, ConsumerConfig{MaxAckPending: 7, AckWait: 9 * time.Second}, nil)
	if _, err := c.create(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	cons, err := q.js.Consumer(ctx, WorkStream, "dispatch-web")
	if err != nil {
		t.Fatal(err)
	}
	got := cons.CachedInfo().Config
	if got.FilterSubject != WorkSubjectPrefix+"web" || got.MaxAckPending != 7 || got.AckWait != 9*time.Second ||
		got.MaxDeliver != -1 || got.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("consumer config = %+v", got)
	}
	if got.InactiveThreshold <= 0 {
		t.Errorf("inactive threshold = %s: an idle app's consumer would never be removed", got.InactiveThreshold)
	}
}

// Work that fails with a retry delay counts against its app's room until
// the delay is over: the server still counts it against MaxAckPending.
func TestRetryDelayCountsAgainstRoom(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if err := q.Publish(ctx, accepted("github", "r-1", "web")); err != nil {
		t.Fatal(err)
	}
	// A Retry-After of an hour within BackoffMax: the delay is exactly that.
	c := testConsumer(t, q, ConsumerConfig{BackoffMax: 2 * time.Hour}, func(context.Context, Work) error {
		return RetryAfter(errors.New("busy"), time.Hour)
	})
	msgs := c.fetch(ctx, "web", 1)
	if len(msgs) != 1 {
		t.Fatalf("fetched %d messages, want 1", len(msgs))
	}
	load := c.load("web")
	c.handle(ctx, msgs[0], load)
	if got := load.delayed.Load(); got != 1 {
		t.Errorf("delayed = %d, want 1", got)
	}
	if got, want := c.room("web"), c.cfg.MaxAckPending-1; got != want {
		t.Errorf("room = %d, want %d", got, want)
	}
}

// Undecodable work is dead-lettered with why: the decoder's error, or
// that the work has no event.
func TestUndecodableWorkSaysWhy(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	for app, raw := range map[string]string{"api": "not json", "web": `{"source":"github"}`} {
		if _, err := q.js.Publish(ctx, WorkSubjectPrefix+app, []byte(raw), jetstream.WithMsgID("junk-"+app)); err != nil {
			t.Fatal(err)
		}
	}
	stop := runConsume(t, q, fastRetry, func(context.Context, Work) error {
		t.Error("handler called for undecodable work")
		return nil
	})
	waitFor(t, "the work stream to empty", func() bool { return pending(t, q) == 0 })
	stop()
	why := map[string]string{}
	for _, dl := range deadLetters(t, q) {
		why[string(dl.Raw)] = dl.LastError
	}
	if got := why["not json"]; !strings.Contains(got, "invalid character") {
		t.Errorf("not json: last error %q, want the decoder's", got)
	}
	if got := why[`{"source":"github"}`]; got != "work has no event" {
		t.Errorf("no event: last error %q, want %q", got, "work has no event")
	}
}

// waits records the loop's pauses.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) pause(ctx context.Context, d time.Duration) {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	pause(ctx, d)
}

func (w *waits) list() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// runLoop runs c's loop with its pauses recorded; the returned stop
// cancels it and waits for it to return.
func runLoop(t *testing.T, c *consumer) (*waits, func()) {
	t.Helper()
	w := new(waits)
	c.pause = w.pause
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.loop(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return w, stop
}

// The loop waits idlePoll after a round that found no work, and not at
// all after one that started work.
func TestLoopWaitsOnlyWhenIdle(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	var c counter
	cons := testConsumer(t, q, fastRetry, func(_ context.Context, w Work) error {
		c.add(w)
		return nil
	})
	w, stop := runLoop(t, cons)
	waitFor(t, "an idle round", func() bool { return len(w.list()) > 0 })
	if got := w.list()[0]; got != idlePoll {
		t.Errorf("wait after an idle round = %s, want %s", got, idlePoll)
	}
	for i := range 3 {
		if err := q.Publish(ctx, accepted("github", fmt.Sprintf("w-%d", i), "web", "api")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every work item", func() bool { return c.total() == 6 && pending(t, q) == 0 })
	stop() // the rounds that started work have ended
	for _, d := range w.list() {
		if d != idlePoll {
			t.Fatalf("waits = %v, want only idle waits of %s", w.list(), idlePoll)
		}
	}
}

// A round whose listing of the apps failed waits a second, not the idle
// poll: it must not spin against a broken stream.
func TestLoopWaitsAfterAListingError(t *testing.T) {
	q := newQueue(t)
	if err := q.js.DeleteStream(context.Background(), WorkStream); err != nil {
		t.Fatal(err)
	}
	w, _ := runLoop(t, testConsumer(t, q, fastRetry, nil))
	waitFor(t, "a round", func() bool { return len(w.list()) > 0 })
	if got := w.list()[0]; got != time.Second {
		t.Errorf("wait after a failed listing = %s, want 1s", got)
	}
}

// The consumer settings are checked once their defaults are filled in.
func TestConsumerConfigChecked(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  ConsumerConfig
		ok   bool
	}{
		{name: "defaults", ok: true},
		{name: "backoff max equal to base", cfg: ConsumerConfig{BackoffBase: time.Second, BackoffMax: time.Second}, ok: true},
		{name: "negative max ack pending", cfg: ConsumerConfig{MaxAckPending: -1}},
		{name: "negative max attempts", cfg: ConsumerConfig{MaxAttempts: -1}},
		{name: "negative concurrency", cfg: ConsumerConfig{Concurrency: -1}},
		{name: "negative ack wait", cfg: ConsumerConfig{AckWait: -1}},
		{name: "negative backoff base", cfg: ConsumerConfig{BackoffBase: -1}},
		{name: "negative backoff max", cfg: ConsumerConfig{BackoffMax: -1}},
		{name: "negative handler timeout", cfg: ConsumerConfig{HandlerTimeout: -1}},
		{name: "backoff max below base", cfg: ConsumerConfig{BackoffBase: 2 * time.Second, BackoffMax: time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.withDefaults()
			if (err == nil) != tt.ok {
				t.Errorf("withDefaults: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// A list of apps taken just now is reused: the next rounds cost a fetch,
// not a stream lookup. (Tried a few times: a pause of appsRefresh between
// two statements, on a loaded machine, would make one try stale.)
func TestAppsListReusedRightAway(t *testing.T) {
	q := newQueue(t)
	c := testConsumer(t, q, ConsumerConfig{}, nil)
	for range 10 {
		c.appList, c.appsAt = []string{"cached"}, time.Now()
		if got, err := c.apps(context.Background()); err == nil && reflect.DeepEqual(got, []string{"cached"}) {
			return
		}
	}
	t.Fatal("a list of apps taken just now was never reused")
}

// An app's consumer that the server removed (idle past its inactive
// threshold) is created again, and its app's work still flows.
func TestFetchAfterItsConsumerWasRemoved(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if err := q.Publish(ctx, accepted("github", "rm-1", "web")); err != nil {
		t.Fatal(err)
	}
	c := testConsumer(t, q, ConsumerConfig{}, nil)
	msgs := c.fetch(ctx, "web", 1)
	if len(msgs) != 1 {
		t.Fatalf("fetched %d messages, want 1", len(msgs))
	}
	if err := msgs[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.js.DeleteConsumer(ctx, WorkStream, "dispatch-web"); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(ctx, accepted("github", "rm-2", "web")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the app's work after its consumer was removed", func() bool { return len(c.fetch(ctx, "web", 1)) == 1 })
}

// A delivery past MaxAttempts whose previous delivery was never settled
// (its router crashed) is dead-lettered with the attempts that ran.
func TestUnsettledDeliveryPastTheLimit(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if err := q.Publish(ctx, accepted("github", "x-1", "web")); err != nil {
		t.Fatal(err)
	}
	c := testConsumer(t, q, ConsumerConfig{MaxAttempts: 1, AckWait: 200 * time.Millisecond}, func(context.Context, Work) error {
		t.Error("handler called past the delivery limit")
		return nil
	})
	if msgs := c.fetch(ctx, "web", 1); len(msgs) != 1 {
		t.Fatalf("fetched %d messages, want 1", len(msgs))
	} // never settled: the router "crashed"
	var again []jetstream.Msg
	waitFor(t, "the redelivery", func() bool {
		again = c.fetch(ctx, "web", 1)
		return len(again) == 1
	})
	c.handle(ctx, again[0], c.load("web"))
	dls := deadLetters(t, q)
	if len(dls) != 1 || dls[0].Reason != ReasonExhausted || dls[0].Attempts != 1 {
		t.Fatalf("dead letters = %+v, want one exhausted after 1 attempt", dls)
	}
}

// Work that fails on its last attempt is dead-lettered with the handler's
// error, on that delivery, not after one more.
func TestExhaustedDeadLetterKeepsTheLastError(t *testing.T) {
	q := newQueue(t)
	if err := q.Publish(context.Background(), accepted("github", "e-1", "web")); err != nil {
		t.Fatal(err)
	}
	cfg := fastRetry
	cfg.MaxAttempts = 2
	var c counter
	stop := runConsume(t, q, cfg, func(_ context.Context, w Work) error {
		return fmt.Errorf("boom %d", c.add(w))
	})
	waitFor(t, "the work stream to empty", func() bool { return pending(t, q) == 0 })
	stop()
	dls := deadLetters(t, q)
	if len(dls) != 1 || dls[0].Reason != ReasonExhausted || dls[0].Attempts != 2 || dls[0].LastError != "boom 2" {
		t.Fatalf("dead letters = %+v, want one exhausted after 2 attempts with the last error", dls)
	}
}
