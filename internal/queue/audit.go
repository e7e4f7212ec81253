package queue

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Audit decisions.
const (
	DecisionAccepted        = "accepted"        // stored (2xx), or a ping/handshake answered
	DecisionUnauthenticated = "unauthenticated" // 401: missing or wrong credential
	DecisionDenied          = "denied"          // 403: authenticated, out of scope
	DecisionRateLimited     = "rate-limited"    // 429
	DecisionInvalid         = "invalid"         // 400, 404, 405, 413, 415
	DecisionUnavailable     = "unavailable"     // 503: not stored, the sender retries
)

// AuditRecord is one ingest decision. It never holds a credential or a
// payload.
type AuditRecord struct {
	Time     time.Time `json:"time"`
	Decision string    `json:"decision"`
	// Kind is "webhook" or "endpoint"; Source the hook source or endpoint.
	Kind   string `json:"kind"`
	Source string `json:"source"`
	// Identity is who authenticated ("source:github", "endpoint:x/<sub>"),
	// empty when authentication failed.
	Identity string `json:"identity,omitempty"`
	Subject  string `json:"subject,omitempty"` // the token's subject
	EventID  string `json:"eventId,omitempty"`
	Type     string `json:"type,omitempty"`
	Status   int    `json:"status"`
	Reason   string `json:"reason,omitempty"`
	// Rule is the scope rule that refused an event (403).
	Rule    string `json:"rule,omitempty"`
	Targets int    `json:"targets,omitempty"`
	Remote  string `json:"remote,omitempty"`
}

// Audit appends rec to the audit stream (switchyard.audit.<decision>). It
// does not wait for JetStream's ack, so it adds no latency to a request and
// cannot block one while NATS is down (the nats client buffers across a
// reconnect); the router's log has every decision as well.
func (q *Queue) Audit(rec AuditRecord) {
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
func (q *Queue) AuditRecords(ctx context.Context, since time.Time, fn func(AuditRecord) bool) error {
	return q.readStream(ctx, AuditStream, since, func(msg jetstream.Msg, _ *jetstream.MsgMetadata) (bool, error) {
		var rec AuditRecord
		if err := json.Unmarshal(msg.Data(), &rec); err != nil {
			return false, err
		}
		return fn(rec), nil
	})
}
