package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LegacyAcceptedBucket is where routers before the short record keys
// (recordRef.key) kept the accepted-events records, under the longer keys
// of recordRef.legacyKey. A router reads it, never writes it, for as long
// as it holds records, so a redelivery of an event an older router stored
// is still a no-op. Its records expire with the max age they were written
// with. It is never deleted, even empty: during a rolling upgrade an older
// replica may still write to it.
const LegacyAcceptedBucket = "switchyard-accepted"

// legacyRecheck is how long an answer to "does the legacy bucket hold
// records?" is trusted before it is asked again. An older replica that
// writes into an empty legacy bucket is noticed this late at most; a
// redelivery stored twice in between still finds JetStream's duplicate
// window and, after it, its PipelineRun by name.
const legacyRecheck = time.Minute

// legacyRecords is the legacy bucket, when it exists (nil otherwise).
type legacyRecords struct {
	kv  jetstream.KeyValue
	now func() time.Time
	// holds is the last answer, trusted until until (UnixNano). holds is
	// stored before until, so a reader that sees the new until sees it.
	holds atomic.Bool
	until atomic.Int64
}

// openLegacy returns the legacy bucket, or nil when there is none (a
// store no router before the short keys wrote).
func openLegacy(ctx context.Context, js jetstream.JetStream, logger *slog.Logger) (*legacyRecords, error) {
	kv, err := js.KeyValue(ctx, LegacyAcceptedBucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("bucket %s: %w", LegacyAcceptedBucket, err)
	}
	l := &legacyRecords{kv: kv, now: time.Now}
	if l.holdsRecords(ctx) { // and the answer is trusted for the first minute
		logger.Info("reading the records of an earlier version until they expire", "bucket", LegacyAcceptedBucket)
	}
	return l, nil
}

// holdsRecords reports whether the legacy bucket holds records, so that a
// record not found under its short key must be looked up there too. While
// the bucket's state cannot be read, it says yes: one more lookup costs a
// round trip, a missed record an event stored twice.
func (l *legacyRecords) holdsRecords(ctx context.Context) bool {
	if l == nil {
		return false
	}
	now := l.now()
	if now.UnixNano() < l.until.Load() {
		return l.holds.Load()
	}
	st, err := l.kv.Status(ctx)
	if err != nil {
		return true
	}
	holds := st.Values() > 0
	l.holds.Store(holds)
	l.until.Store(now.Add(legacyRecheck).UnixNano())
	return holds
}

// recordsAfterUpgrade creates the records bucket for an operator command
// run on a store only routers before the short keys wrote (an upgrade
// whose new router has not started yet): with the legacy bucket's
// settings (max age, replicas, storage), so that it reconfigures nothing a
// router's Open would set otherwise. Without a legacy bucket the store is
// not a router's, and the answer stays jetstream.ErrBucketNotFound.
func recordsAfterUpgrade(ctx context.Context, js jetstream.JetStream, legacy *legacyRecords) (jetstream.KeyValue, error) {
	if legacy == nil {
		return nil, jetstream.ErrBucketNotFound
	}
	st, err := legacy.kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", LegacyAcceptedBucket, err)
	}
	cfg := st.Config()
	cfg.Bucket, cfg.Description = AcceptedBucket, recordsDescription
	cfg.Metadata = nil // the server's own (versions), not settings
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		// A router started meanwhile and created it.
		return js.KeyValue(ctx, AcceptedBucket)
	}
	return kv, err
}
