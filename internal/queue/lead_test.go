package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"
	"testing"
	"time"
)

// shortLeases makes the leaders of qs renew and their waiting replicas
// ask often.
func shortLeases(qs ...*Queue) {
	for _, q := range qs {
		q.leaseRenewEvery, q.leasePollEvery = 100*time.Millisecond, 20*time.Millisecond
	}
}

// Two replicas: one leads at a time, the leader renews its lock, and when
// it stops the other takes over.
func TestLeadOneAtATime(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	q1, q2 := openQueue(t, e, Config{}), openQueue(t, e, Config{})
	shortLeases(q1, q2)
	var leading, most, started atomic.Int32
	var leader atomic.Pointer[string]
	lead := func(name string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			n := leading.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			leader.Store(&name)
			started.Add(1)
			<-ctx.Done()
			leading.Add(-1)
			return nil
		}
	}
	ctx1, stop1 := context.WithCancel(context.Background())
	ctx2, stop2 := context.WithCancel(context.Background())
	t.Cleanup(stop2)
	done1 := make(chan error, 1)
	go func() { done1 <- q1.Lead(ctx1, "watcher", lead("one")) }()
	waitFor(t, "the first replica to lead", func() bool { return started.Load() == 1 })
	go func() { _ = q2.Lead(ctx2, "watcher", lead("two")) }()

	// The leader keeps the lock: its entry gets new revisions.
	sum := sha256.Sum256([]byte("lead:watcher"))
	key := hex.EncodeToString(sum[:])
	first, err := q1.locks.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a renewal", func() bool {
		e, err := q1.locks.Get(context.Background(), key)
		return err == nil && e.Revision() > first.Revision()+2
	})
	if started.Load() != 1 || *leader.Load() != "one" {
		t.Fatalf("while one leads and renews, %d leaderships started (last %s)", started.Load(), *leader.Load())
	}

	stop1()
	if err := <-done1; err != nil {
		t.Fatalf("Lead after its context ended: %v", err)
	}
	waitFor(t, "the second replica to take over", func() bool { return started.Load() == 2 })
	if *leader.Load() != "two" || most.Load() != 1 {
		t.Errorf("leader %s, at most %d leading at once; want two, 1", *leader.Load(), most.Load())
	}
}

// A leader whose lock is gone (it expired while the leader was stalled,
// here deleted under it) stops at its next renewal, and leads again once
// the lock is free.
func TestLeadStopsWhenTheLockIsLost(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	q := openQueue(t, e, Config{})
	shortLeases(q)
	var starts, stops atomic.Int32
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go func() {
		_ = q.Lead(ctx, "watcher", func(ctx context.Context) error {
			starts.Add(1)
			<-ctx.Done()
			stops.Add(1)
			return nil
		})
	}()
	waitFor(t, "leading", func() bool { return starts.Load() == 1 })
	sum := sha256.Sum256([]byte("lead:watcher"))
	if err := q.locks.Delete(context.Background(), hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the leader to stop", func() bool { return stops.Load() == 1 })
	waitFor(t, "leading again", func() bool { return starts.Load() == 2 })
}
