package queue

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// The sweeper expires what is past its deadline as soon as it starts, and
// returns once its context ends.
func TestRunApprovalSweeper(t *testing.T) {
	q := newQueue(t)
	a := held("agents", "rs-1", "prod")
	a.Hold.Deadline = time.Now().Add(-time.Minute).UTC()
	if err := q.Publish(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.RunApprovalSweeper(ctx, time.Hour)
	}()
	waitFor(t, "the held target to expire", func() bool {
		return targetStates(t, q, "agents", "rs-1")["prod"] == policy.StateExpired
	})
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("RunApprovalSweeper did not return after cancel")
	}
}
