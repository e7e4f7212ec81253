package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream names of the report queue.
const (
	// Stream holds reports not yet posted (work-queue retention).
	Stream = "SWITCHYARD_REPORTS"
	// SubjectPrefix starts each report's subject: SubjectPrefix + kind.
	SubjectPrefix = "switchyard.reports."
	// Bucket records, per run, the states posted (see the package doc).
	Bucket = "switchyard-reports"
	// ConsumerPrefix names the durable consumers: one per kind, shared by
	// every router.
	ConsumerPrefix = "switchyard-report-"
)

// Retention of the queue: a report still unposted after StreamMaxAge is
// dropped; the bucket remembers what was posted for BucketTTL, longer than
// any watcher could see the run again.
const (
	StreamMaxAge    = 7 * 24 * time.Hour
	BucketTTL       = 30 * 24 * time.Hour
	DuplicateWindow = 24 * time.Hour
)

// Queue is the report queue on JetStream: publish jobs, consume them.
type Queue struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
	// replicas of the stream and bucket.
	replicas int
}

// OpenQueue creates (or updates) the report stream and bucket on nc.
// replicas is the streams' replica count (1, or 3 on a NATS cluster).
func OpenQueue(ctx context.Context, nc *nats.Conn, replicas int) (*Queue, error) {
	if replicas <= 0 {
		replicas = 1
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open report queue: %w", err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "Commit statuses and CDEvents not yet posted.",
		Subjects:    []string{SubjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      StreamMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  DuplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("open report queue: stream %s: %w", Stream, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "The last commit status posted per PipelineRun, and the CDEvents sent.",
		TTL:         BucketTTL,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open report queue: bucket %s: %w", Bucket, err)
	}
	return &Queue{js: js, kv: kv, replicas: replicas}, nil
}

// Publish stores j, deduplicated by its MsgID: the same transition
// published by several watchers is stored once.
func (q *Queue) Publish(ctx context.Context, j Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("publish report: %w", err)
	}
	if _, err := q.js.Publish(ctx, SubjectPrefix+j.Kind, data, jetstream.WithMsgID(j.MsgID())); err != nil {
		return fmt.Errorf("publish report %s: %w", j.MsgID(), err)
	}
	return nil
}

// consumer returns the durable consumer of one kind of job.
func (q *Queue) consumer(ctx context.Context, kind string, ackWait time.Duration) (jetstream.Consumer, error) {
	c, err := q.js.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
		Durable:       ConsumerPrefix + kind,
		FilterSubject: SubjectPrefix + kind,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: 256,
		Replicas:      q.replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("report consumer %s: %w", kind, err)
	}
	return c, nil
}

// record is the bucket's value for a run's status (key "<uid>.status") or
// one of its CDEvents (key "<uid>.cdevent.<phase>").
type record struct {
	State string `json:"state"`
	// Claimed is when a sender started posting State; zero once settled or
	// released.
	Claimed  time.Time `json:"claimed,omitzero"`
	Posted   bool      `json:"posted,omitempty"`
	Rejected string    `json:"rejected,omitempty"`
	// CheckRunID is the run's GitHub check run, once created (report: checks).
	CheckRunID int64 `json:"checkRunId,omitempty"`
}

func (r record) settled() bool { return r.Posted || r.Rejected != "" }

func statusKey(uid string) string         { return uid + ".status" }
func cdeventKey(uid, phase string) string { return uid + ".cdevent." + phase }

var errConflict = errors.New("record changed concurrently")

// get reads a record; found is false when there is none.
func (q *Queue) get(ctx context.Context, key string) (rec record, rev uint64, found bool, err error) {
	e, err := q.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, false, nil
	}
	if err != nil {
		return record{}, 0, false, fmt.Errorf("read report record: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return record{}, 0, false, fmt.Errorf("read report record %s: %w", key, err)
	}
	return rec, e.Revision(), true, nil
}

// swap writes rec if the key is still at rev (0: absent), and returns the
// new revision; errConflict when another writer came first.
func (q *Queue) swap(ctx context.Context, key string, rec record, rev uint64) (uint64, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	var n uint64
	if rev == 0 {
		n, err = q.kv.Create(ctx, key, data)
	} else {
		n, err = q.kv.Update(ctx, key, data, rev)
	}
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)) {
		return 0, errConflict
	}
	if err != nil {
		return 0, fmt.Errorf("write report record %s: %w", key, err)
	}
	return n, nil
}
