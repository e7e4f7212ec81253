package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LockTTL bounds how long a lock outlives a holder that died holding it.
// Critical sections (a list and a few patches) take far less.
const LockTTL = 30 * time.Second

// Lock takes the cluster-wide lock named key, waiting while another router
// replica holds it, and returns the function that releases it. It is a
// key-value entry created only if absent (JetStream's compare-and-set), so
// exactly one holder exists at a time; a holder that crashes releases it
// after LockTTL.
func (q *Queue) Lock(ctx context.Context, key string) (func(), error) {
	k := lockKey(key)
	for {
		rev, err := q.locks.Create(ctx, k, []byte(key))
		if err == nil {
			return func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.PublishTimeout)
				defer cancel()
				// Only our own entry: after a TTL expiry someone else may
				// hold the lock now.
				_ = q.locks.Delete(ctx, k, jetstream.LastRevision(rev))
			}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %s: %w", key, ctx.Err())
		case <-time.After(10*time.Millisecond + rand.N(40*time.Millisecond)):
		}
	}
}

// lockKey is the bucket key of the lock named key: a hash, since names are
// arbitrary text and keys are not.
func lockKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
