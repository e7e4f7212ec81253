package queue

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// Audit appends rec to the audit stream (switchyard.audit.<decision>). It
// does not wait for JetStream's ack, so it adds no latency to a request and
// cannot block one while NATS is down (the nats client buffers across a
// reconnect); the router's log has every decision as well.
func (q *Queue) Audit(rec policy.Record) {
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	rec.Reason = trimReason(rec.Reason)
	data, err := json.Marshal(rec)
	if err == nil {
		err = q.nc.Publish(AuditSubjectPrefix+rec.Decision, data)
	}
	if err != nil {
		q.logger.Warn("audit record not published", "decision", rec.Decision, "source", rec.Source, "err", err)
	}
}

// AuditRecords calls fn for every audit record at or after since (zero:
// all), oldest first, until fn returns false or the end.
func (q *Queue) AuditRecords(ctx context.Context, since time.Time, fn func(policy.Record) bool) error {
	return q.readStream(ctx, AuditStream, since, func(msg jetstream.Msg, _ *jetstream.MsgMetadata) (bool, error) {
		var rec policy.Record
		if err := json.Unmarshal(msg.Data(), &rec); err != nil {
			return false, err
		}
		return fn(rec), nil
	})
}
