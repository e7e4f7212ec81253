package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// LiveRuns remembers, per run, the reports its deletion would call for,
// from the moment a watcher reports it unfinished until it reports it
// finished. A watcher that starts later (a leader handover, a time with no
// router running) finds in it the runs deleted while nobody watched, which
// no informer will ever tell it about, and reports them. *Queue is one.
type LiveRuns interface {
	// RememberLive stores the jobs a deletion of run uid calls for.
	RememberLive(ctx context.Context, uid string, onDelete []Job) error
	// ForgetLive drops what RememberLive stored for uid.
	ForgetLive(ctx context.Context, uid string) error
	// LiveRuns returns what RememberLive stored, by run uid.
	LiveRuns(ctx context.Context) (map[string][]Job, error)
}

var _ LiveRuns = (*Queue)(nil)

// liveSuffix ends the bucket key of a run's remembered deletion jobs.
const liveSuffix = ".live"

func liveKey(uid string) string { return uid + liveSuffix }

// RememberLive stores onDelete under the run's uid, in the reports bucket
// (kept BucketTTL: a run unfinished for longer is not looked for).
func (q *Queue) RememberLive(ctx context.Context, uid string, onDelete []Job) error {
	data, err := json.Marshal(onDelete)
	if err != nil {
		return fmt.Errorf("remember live run: %w", err)
	}
	if _, err := q.kv.Put(ctx, liveKey(uid), data); err != nil {
		return fmt.Errorf("remember live run %s: %w", uid, err)
	}
	return nil
}

// ForgetLive drops the run's remembered deletion jobs.
func (q *Queue) ForgetLive(ctx context.Context, uid string) error {
	if err := q.kv.Purge(ctx, liveKey(uid)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget live run %s: %w", uid, err)
	}
	return nil
}

// LiveRuns lists the runs remembered live and their deletion jobs.
func (q *Queue) LiveRuns(ctx context.Context) (map[string][]Job, error) {
	keys, err := q.kv.ListKeysFiltered(ctx, "*"+liveSuffix)
	if err != nil {
		return nil, fmt.Errorf("live runs: %w", err)
	}
	out := map[string][]Job{}
	for key := range keys.Keys() {
		entry, err := q.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // forgotten meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("live runs: %w", err)
		}
		var jobs []Job
		if err := json.Unmarshal(entry.Value(), &jobs); err != nil {
			continue // not ours to repair: it expires with the bucket's TTL
		}
		out[strings.TrimSuffix(key, liveSuffix)] = jobs
	}
	return out, nil
}
