package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names and subject prefixes. Each subject ends in one token: the
// source name for events, the app name for work and dead letters.
const (
	EventsStream = "SWITCHYARD_EVENTS"
	WorkStream   = "SWITCHYARD_WORK"
	DLQStream    = "SWITCHYARD_DLQ"
	AuditStream  = "SWITCHYARD_AUDIT"
	// AcceptedBucket is the key-value bucket recording every event whose
	// messages were all stored (see recordRef.key; LegacyAcceptedBucket
	// is where earlier versions recorded them).
	AcceptedBucket = "switchyard-records"
	// LocksBucket holds the locks of Lock.
	LocksBucket = "switchyard-locks"
	// StatusBucket holds each target's dispatch state (see Status).
	StatusBucket = "switchyard-status"

	EventsSubjectPrefix = "switchyard.events."
	WorkSubjectPrefix   = "switchyard.work."
	DLQSubjectPrefix    = "switchyard.dlq."
	AuditSubjectPrefix  = "switchyard.audit."
)

// AuditMaxAge is how long audit records are kept.
const AuditMaxAge = 90 * 24 * time.Hour

// DefaultAuditMaxBytes caps the audit stream when Config.AuditMaxBytes is
// zero: a flood of refused requests then drops the oldest records instead of
// filling the store that accepted webhooks need.
const DefaultAuditMaxBytes = 256 << 20

// DLQMaxAge is how long dead letters are kept: long enough for someone to
// notice, fix the cause and replay.
const DLQMaxAge = 30 * 24 * time.Hour

// DefaultDuplicateWindow is how long JetStream itself remembers the message
// ids of the events and work streams. Its ids are held in the server's
// memory for the whole window, at every event's cost, so it is short: it
// only has to cover two deliveries of one event in flight together and a
// sender's prompt retry of a publish that failed half way. The
// accepted-events bucket makes a redelivery of a stored event a no-op for
// Config.EventsMaxAge, and a work item queued again after the window (a
// retry, minutes later, of a publish whose record was lost) finds its
// PipelineRun by its deterministic name and creates nothing.
const DefaultDuplicateWindow = 2 * time.Minute

// dlqDuplicateWindow deduplicates dead letters: a terminate lost after its
// dead letter was stored means one more delivery, maybe after a restart
// hours later, which dead-letters again under the same id. Dead letters
// are few, so their ids cost no memory worth saving.
const dlqDuplicateWindow = 24 * time.Hour

// Config configures the streams and publishing.
type Config struct {
	Replicas        int           // stream replicas (1 default; 3 for a NATS cluster)
	EventsMaxAge    time.Duration // how long accepted events are kept for replay/audit (default 7*24h)
	DuplicateWindow time.Duration // JetStream dedup window of the events and work streams (default DefaultDuplicateWindow)
	PublishTimeout  time.Duration // per publish ack wait (default 5s)
	AuditMaxBytes   int64         // audit stream size cap, oldest records dropped first (default DefaultAuditMaxBytes)
}

func (c Config) withDefaults() (Config, error) {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.EventsMaxAge == 0 {
		c.EventsMaxAge = 7 * 24 * time.Hour
	}
	if c.DuplicateWindow == 0 {
		// Shorter when events are kept less (JetStream refuses a window
		// longer than the stream's max age).
		c.DuplicateWindow = min(DefaultDuplicateWindow, c.EventsMaxAge)
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.AuditMaxBytes == 0 {
		c.AuditMaxBytes = DefaultAuditMaxBytes
	}
	switch {
	case c.Replicas < 0:
		return c, fmt.Errorf("queue config: replicas must be positive, got %d", c.Replicas)
	case c.EventsMaxAge < 0, c.DuplicateWindow < 0, c.PublishTimeout < 0:
		return c, errors.New("queue config: durations must not be negative")
	case c.AuditMaxBytes < 0:
		return c, fmt.Errorf("queue config: audit max bytes must be positive, got %d", c.AuditMaxBytes)
	case c.DuplicateWindow > c.EventsMaxAge:
		// JetStream refuses a duplicate window longer than the stream's max age.
		return c, fmt.Errorf("queue config: duplicate window %s is longer than events max age %s", c.DuplicateWindow, c.EventsMaxAge)
	}
	return c, nil
}

// Validate reports a configuration Open would refuse, before connecting.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// Queue publishes accepted events and work, and consumes work for dispatch.
// It is safe for concurrent use.
type Queue struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	accepted jetstream.KeyValue
	legacy   *legacyRecords // nil: no LegacyAcceptedBucket
	locks    jetstream.KeyValue
	status   jetstream.KeyValue
	cfg      Config
	logger   *slog.Logger
	audits   auditWriter
	// auditBufferLen overrides auditBuffer (tests).
	auditBufferLen int
	// leaseRenewEvery and leasePollEvery override Lead's timing (tests).
	leaseRenewEvery, leasePollEvery time.Duration
}

func (q *Queue) auditBuffer() int {
	if q.auditBufferLen > 0 {
		return q.auditBufferLen
	}
	return auditBuffer
}

// newJetStream is the JetStream client of a Queue. An asynchronous
// publish nobody acknowledges is forgotten after the publish timeout:
// otherwise each would hold one of the client's pending slots, and enough
// of them would stall every later publish.
func newJetStream(nc *nats.Conn, cfg Config) (jetstream.JetStream, error) {
	return jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
}

// Open creates the streams, or updates them to cfg, and returns a Queue on
// nc. The caller owns nc and closes it after the Queue is no longer used.
func Open(ctx context.Context, nc *nats.Conn, cfg Config, logger *slog.Logger) (*Queue, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	js, err := newJetStream(nc, cfg)
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	for _, sc := range streamConfigs(cfg) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("open queue: stream %s: %w", sc.Name, err)
		}
	}
	q := &Queue{nc: nc, js: js, cfg: cfg, logger: logger.With("component", "queue")}
	for _, b := range []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&q.accepted, jetstream.KeyValueConfig{
			Bucket:      AcceptedBucket,
			Description: recordsDescription,
			TTL:         cfg.EventsMaxAge,
		}},
		{&q.locks, jetstream.KeyValueConfig{
			Bucket:      LocksBucket,
			Description: "Short-lived locks serializing decisions across router replicas (concurrency groups).",
			TTL:         LockTTL,
		}},
		{&q.status, jetstream.KeyValueConfig{
			Bucket:      StatusBucket,
			Description: "Dispatch state of every target of every accepted event.",
			TTL:         cfg.EventsMaxAge,
		}},
	} {
		// Only the latest value counts; stored and replicated like the streams.
		b.cfg.History = 1
		b.cfg.Storage = jetstream.FileStorage
		b.cfg.Replicas = cfg.Replicas
		kv, err := js.CreateOrUpdateKeyValue(ctx, b.cfg)
		if err != nil {
			return nil, fmt.Errorf("open queue: bucket %s: %w", b.cfg.Bucket, err)
		}
		*b.kv = kv
	}
	if q.legacy, err = openLegacy(ctx, js, q.logger); err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	return q, nil
}

// Attach returns a Queue on the streams and buckets a router's Open
// created, as they are: for operator commands, which must not reconfigure
// them (an Open with default settings would set a replicated cluster's
// streams back to one replica). It fails if they do not exist.
func Attach(ctx context.Context, nc *nats.Conn, logger *slog.Logger) (*Queue, error) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	js, err := newJetStream(nc, cfg)
	if err != nil {
		return nil, fmt.Errorf("attach queue: %w", err)
	}
	for _, sc := range streamConfigs(cfg) {
		if sc.Name == IntakeStream {
			continue // no operator command reads it, and older routers have none
		}
		if _, err := js.Stream(ctx, sc.Name); err != nil {
			return nil, fmt.Errorf("attach queue: stream %s (has a router run here?): %w", sc.Name, err)
		}
	}
	q := &Queue{nc: nc, js: js, cfg: cfg, logger: logger.With("component", "queue")}
	if q.legacy, err = openLegacy(ctx, js, q.logger); err != nil {
		return nil, fmt.Errorf("attach queue: %w", err)
	}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{{&q.accepted, AcceptedBucket}, {&q.locks, LocksBucket}, {&q.status, StatusBucket}} {
		kv, err := js.KeyValue(ctx, b.name)
		if b.name == AcceptedBucket && errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = recordsAfterUpgrade(ctx, js, q.legacy)
		}
		if err != nil {
			return nil, fmt.Errorf("attach queue: bucket %s (has a router run here?): %w", b.name, err)
		}
		*b.kv = kv
	}
	return q, nil
}

// recordsDescription describes AcceptedBucket.
const recordsDescription = "Events whose messages were all stored, for deduplication across restarts."

// eventsPerSource is the events stream's per-subject limit: one no source
// reaches (see streamConfigs).
const eventsPerSource = math.MaxInt64

func streamConfigs(cfg Config) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "Accepted CloudEvents, kept for replay and audit.",
			Subjects:    []string{EventsSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      cfg.EventsMaxAge,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.DuplicateWindow,
			// Not a limit (a subject is a source: no source reaches it): it
			// makes the file store write 4 MiB blocks, as it does for
			// key-value buckets, instead of the 8 MiB it gives a stream with
			// no limit. nats-server sizes blocks only from a stream's limits,
			// and holds the block being written in a buffer of the block's
			// size: a burst of events pinned 8 MiB here, and twice that in
			// memory with the garbage collector's headroom.
			MaxMsgsPerSubject: eventsPerSource,
		},
		{
			Name:        WorkStream,
			Description: "Work to dispatch, one subject per app; removed once dispatched.",
			Subjects:    []string{WorkSubjectPrefix + ">"},
			// No MaxAge: accepted work never expires undispatched.
			Retention:  jetstream.WorkQueuePolicy,
			Storage:    jetstream.FileStorage,
			Replicas:   cfg.Replicas,
			Duplicates: cfg.DuplicateWindow,
		},
		{
			Name:        DLQStream,
			Description: "Work that failed permanently or exhausted its attempts.",
			Subjects:    []string{DLQSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      DLQMaxAge,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  dlqDuplicateWindow,
		},
		{
			Name:        AuditStream,
			Description: "Every ingest decision: accepted, denied with the reason, rate-limited, authentication failed.",
			Subjects:    []string{AuditSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      AuditMaxAge,
			// Refused requests cost a sender nothing: cap the bytes so a flood
			// drops old records rather than filling the store.
			MaxBytes: cfg.AuditMaxBytes,
			Discard:  jetstream.DiscardOld,
			Storage:  jetstream.FileStorage,
			Replicas: cfg.Replicas,
		},
		intakeStreamConfig(cfg),
	}
}

// Ready reports whether JetStream answers and the work stream exists, for
// readiness probes. A failure wraps ErrUnavailable.
func (q *Queue) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.PublishTimeout)
	defer cancel()
	if _, err := q.js.Stream(ctx, WorkStream); err != nil {
		return fmt.Errorf("queue ready: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Pending returns the number of messages in the work stream: work not yet
// dispatched, including work being dispatched right now.
func (q *Queue) Pending(ctx context.Context) (uint64, error) {
	return q.messages(ctx, WorkStream, "queue pending")
}

// messages returns the number of messages in stream; what names the
// caller in an error.
func (q *Queue) messages(ctx context.Context, stream, what string) (uint64, error) {
	s, err := q.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return s.CachedInfo().State.Msgs, nil
}
