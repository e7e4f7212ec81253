package queue

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Leadership timing: a leader renews its lock every leaseRenewEvery (well
// inside LockTTL, the bucket's age limit), and a replica waiting to lead
// asks every leasePollEvery (plus jitter). A Queue's fields of the same
// names, when set, replace them (tests shorten them).
const (
	leaseRenewEvery = LockTTL / 3
	leasePollEvery  = 5 * time.Second
)

func (q *Queue) renewEvery() time.Duration {
	if q.leaseRenewEvery > 0 {
		return q.leaseRenewEvery
	}
	return leaseRenewEvery
}

func (q *Queue) pollEvery() time.Duration {
	if q.leasePollEvery > 0 {
		return q.leasePollEvery
	}
	return leasePollEvery
}

// Lead runs fn while this process holds the cluster-wide leadership named
// key, so that among router replicas exactly one does what must be done
// once (watching the runs it reports on). It waits until the lock is free,
// keeps it by renewing it, and cancels fn's context as soon as a renewal
// fails (another replica may then lead, after LockTTL); it then waits to
// lead again. A leader that dies loses the lock after LockTTL. Lead
// returns fn's error, or nil when ctx ends.
func (q *Queue) Lead(ctx context.Context, key string, fn func(ctx context.Context) error) error {
	k := lockKey("lead:" + key)
	for ctx.Err() == nil {
		rev, err := q.locks.Create(ctx, k, []byte(key))
		if err != nil {
			// Held by another replica, or JetStream is unavailable: ask
			// again later either way.
			select {
			case <-ctx.Done():
			case <-time.After(q.pollEvery() + rand.N(q.pollEvery()/2+1)):
			}
			continue
		}
		if err := q.leadWhileHeld(ctx, k, key, rev, fn); err != nil || ctx.Err() != nil {
			return err
		}
	}
	return nil
}

// leadWhileHeld runs fn while renewals of the lock at revision rev succeed.
// It returns fn's error; nil when the lock was lost (Lead tries again) or
// ctx ended.
func (q *Queue) leadWhileHeld(ctx context.Context, k, key string, rev uint64, fn func(ctx context.Context) error) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(lctx) }()
	renew := time.NewTicker(q.renewEvery())
	defer renew.Stop()
	defer func() {
		// Only our own entry: after a lost renewal someone else may hold it.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.PublishTimeout)
		defer rcancel()
		_ = q.locks.Delete(rctx, k, jetstream.LastRevision(rev))
	}()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("lead " + key + ": stopped while leading")
			}
			return err
		case <-renew.C:
			next, err := q.locks.Update(lctx, k, []byte(key), rev)
			if err != nil {
				q.logger.Warn("lost leadership: stopping until it is taken again", "lead", key, "error", err.Error())
				cancel()
				<-done
				return nil
			}
			rev = next
		}
	}
}
