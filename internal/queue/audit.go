package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// Audit appends rec to the audit stream (switchyard.audit.<decision>). It
// does not wait for JetStream: the record goes to a bounded buffer that a
// background writer stores, the records of one decision taken together in
// one message (a JSON array), awaiting each message's ack and publishing
// again, under the same message id, what was not acknowledged (NATS down,
// a timeout, the stream unavailable), so a retry after a lost ack stores it
// once. So auditing adds no latency to a request and cannot block one, and
// a record is lost only when the buffer is full (AuditDropped counts those;
// the router's log has every decision as well) or the process ends before
// FlushAudit. One ack for many records keeps the writer about as cheap as
// the fire-and-forget publish it replaced: an ack per record cost about
// 3 KB of allocations each, a tenth more peak memory in a burst.
func (q *Queue) Audit(rec policy.Record) {
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	rec.Reason = trimReason(rec.Reason)
	data, err := json.Marshal(rec)
	if err != nil {
		q.logger.Warn("audit record not published", "decision", rec.Decision, "source", rec.Source, "err", err)
		return
	}
	q.audits.add(q, auditRecord{subject: AuditSubjectPrefix + rec.Decision, data: data})
}

// AuditDropped returns how many audit records this queue dropped because
// its buffer was full: JetStream was unreachable for that long.
func (q *Queue) AuditDropped() uint64 { return q.audits.dropped.Load() }

// FlushAudit waits until every record Audit was given before the call is
// stored (or dropped), for commands that exit right after auditing and for
// a router shutting down. It returns an error when ctx ends first.
func (q *Queue) FlushAudit(ctx context.Context) error {
	a := &q.audits
	target := a.added.Load()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for a.settled.Load() < target {
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit: %d records not stored yet: %w", target-a.settled.Load(), ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// auditBuffer bounds the audit records waiting for JetStream (about 1 KiB
// each): a few seconds of a flood, or minutes of a NATS outage at a
// normal rate.
const auditBuffer = 8192

// auditBatch is how many records the writer takes at once; auditMsgBytes
// bounds the records packed into one message.
const (
	auditBatch    = 256
	auditMsgBytes = 256 << 10
)

// auditWriter is the audit records' way to the stream: Audit hands them
// over, one goroutine (started by the first record, ended when the NATS
// connection closes) stores them.
type auditWriter struct {
	start sync.Once
	msgs  chan auditRecord
	// added counts records handed over, settled those stored or dropped:
	// FlushAudit waits for settled to reach added.
	added, settled, dropped atomic.Uint64
	// failedRounds counts publishing rounds that left records unstored.
	failedRounds atomic.Uint64
	// idPrefix and next make each message's id.
	idPrefix string
	next     atomic.Uint64
	// lastDropLog rate-limits the warning about dropped records.
	lastDropLog atomic.Int64
}

// auditRecord is one encoded record and its subject.
type auditRecord struct {
	subject string
	data    []byte
}

// auditMsg is one message of records to store: each publish of it is a
// new nats.Msg, since the client may still be publishing an earlier one
// again (its own retry of a publish nobody answered) when the writer
// retries.
type auditMsg struct {
	subject, id string
	data        []byte
	records     int
}

func (a *auditWriter) add(q *Queue, r auditRecord) {
	a.start.Do(func() {
		a.msgs = make(chan auditRecord, q.auditBuffer())
		a.idPrefix = newAuditIDPrefix()
		go a.run(q, q.nc.StatusChanged(nats.CLOSED))
	})
	a.added.Add(1)
	select {
	case a.msgs <- r:
	default:
		a.dropped.Add(1)
		a.settled.Add(1)
		now := time.Now().UnixNano()
		if last := a.lastDropLog.Load(); now-last > int64(10*time.Second) && a.lastDropLog.CompareAndSwap(last, now) {
			q.logger.Warn("audit buffer full: records dropped (the log has every decision)", "dropped_total", a.dropped.Load())
		}
	}
}

// run stores the records as they come, until the connection closes.
func (a *auditWriter) run(q *Queue, closed <-chan nats.Status) {
	batch := make([]auditRecord, 0, auditBatch)
	for {
		select {
		case r := <-a.msgs:
			batch = append(batch[:0], r)
		case <-closed:
			return
		}
	fill:
		for len(batch) < auditBatch {
			select {
			case r := <-a.msgs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if !a.store(q, a.pack(batch, q.cfg.AuditMaxBytes), closed) {
			return
		}
	}
}

// pack puts batch's records into messages: a JSON array of the records of
// one subject (decision), in their order, each with its message id, and of
// at most auditMsgBytes or a sixteenth of the stream's size cap (unless one
// record alone is larger): a message is dropped whole at the cap, and one
// larger than the cap could never be stored.
func (a *auditWriter) pack(batch []auditRecord, maxBytes int64) []auditMsg {
	limit := min(int64(auditMsgBytes), maxBytes/16)
	var msgs []auditMsg
	open := map[string]int{} // subject → index in msgs of its message being filled
	for _, r := range batch {
		i, ok := open[r.subject]
		if ok && int64(len(msgs[i].data)+len(r.data)+1) > limit {
			ok = false
		}
		if !ok {
			i = len(msgs)
			open[r.subject] = i
			msgs = append(msgs, auditMsg{subject: r.subject, id: a.idPrefix + strconv.FormatUint(a.next.Add(1), 36),
				data: append(make([]byte, 0, len(r.data)+2), '[')})
		} else {
			msgs[i].data[len(msgs[i].data)-1] = ','
		}
		msgs[i].data = append(append(msgs[i].data, r.data...), ']')
		msgs[i].records++
	}
	return msgs
}

// store publishes batch until JetStream acknowledged every message, waiting
// longer between rounds while it does not; false when the connection
// closed first (what was left is lost with the process).
func (a *auditWriter) store(q *Queue, batch []auditMsg, closed <-chan nats.Status) bool {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		failed, err := q.publishAudit(batch)
		a.settled.Add(uint64(records(batch) - records(failed)))
		if len(failed) == 0 {
			if attempt > 1 {
				q.logger.Info("audit records stored after a retry", "attempts", attempt)
			}
			return true
		}
		a.failedRounds.Add(1)
		if attempt == 1 {
			q.logger.Warn("audit records not stored yet: retrying", "records", records(failed), "err", err)
		}
		batch = failed
		select {
		case <-time.After(delay):
		case <-closed:
			q.logger.Warn("audit records lost: the NATS connection closed", "records", records(batch))
			return false
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// records counts the records of msgs.
func records(msgs []auditMsg) int {
	n := 0
	for _, m := range msgs {
		n += m.records
	}
	return n
}

// publishAudit publishes msgs and awaits their acks together, returning
// the ones not acknowledged and the first error.
func (q *Queue) publishAudit(msgs []auditMsg) ([]auditMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.PublishTimeout)
	defer cancel()
	var failed []auditMsg
	var first error
	fail := func(m auditMsg, err error) {
		failed = append(failed, m)
		if first == nil {
			first = err
		}
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	sent := make([]auditMsg, 0, len(msgs))
	for _, m := range msgs {
		f, err := q.js.PublishMsgAsync(&nats.Msg{Subject: m.subject, Data: m.data},
			jetstream.WithMsgID(m.id), jetstream.WithExpectStream(AuditStream))
		if err != nil {
			fail(m, err)
			continue
		}
		futures, sent = append(futures, f), append(sent, m)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			fail(sent[i], err)
		case <-ctx.Done():
			fail(sent[i], ctx.Err())
		}
	}
	return failed, first
}

// newAuditIDPrefix makes this writer's message ids unique across routers
// and restarts: JetStream deduplicates by id within its window.
func newAuditIDPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return "audit-" + hex.EncodeToString(b[:]) + "-"
}

// AuditRecords calls fn for every audit record at or after since (zero:
// all), oldest first, until fn returns false or the end. A message holds
// one record (a JSON object: `router replay`'s, and those of routers
// before the writer packed them) or several (a JSON array).
func (q *Queue) AuditRecords(ctx context.Context, since time.Time, fn func(policy.Record) bool) error {
	return q.readStream(ctx, AuditStream, since, func(msg jetstream.Msg, _ *jetstream.MsgMetadata) (bool, error) {
		recs, err := decodeAudit(msg.Data())
		if err != nil {
			return false, err
		}
		for _, rec := range recs {
			if !fn(rec) {
				return false, nil
			}
		}
		return true, nil
	})
}

// decodeAudit decodes an audit message: one record, or an array of them.
func decodeAudit(data []byte) ([]policy.Record, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		var recs []policy.Record
		err := json.Unmarshal(data, &recs)
		return recs, err
	}
	var rec policy.Record
	err := json.Unmarshal(data, &rec)
	return []policy.Record{rec}, err
}
