package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

func auditRec(i int) policy.Record {
	return policy.Record{Decision: policy.DecisionAccepted, Kind: "webhook", Source: "github", Status: 202, EventID: fmt.Sprintf("d-%d", i)}
}

// auditIDs returns the event ids of the audit records stored, in order.
func auditIDs(t *testing.T, q *Queue) []string {
	t.Helper()
	var ids []string
	if err := q.AuditRecords(context.Background(), time.Time{}, func(r policy.Record) bool {
		ids = append(ids, r.EventID)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// Audit records given while the audit stream cannot store them (here: it
// is gone, as while JetStream is down) are not lost: the writer publishes
// them again until they are stored, each once.
func TestAuditRecordsWaitForTheStream(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	q := openQueue(t, e, Config{PublishTimeout: time.Second})
	ctx := context.Background()
	if err := q.js.DeleteStream(ctx, AuditStream); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		q.Audit(auditRec(i))
	}
	// The writer fails at least once (the client's own retries of a
	// publish nobody answered are over by then).
	waitFor(t, "a failed round", func() bool { return q.audits.failedRounds.Load() > 0 })
	if q.audits.settled.Load() != 0 {
		t.Fatalf("%d records counted as stored while their stream did not exist", q.audits.settled.Load())
	}
	// JetStream is back: opening the queue again makes the streams.
	openQueue(t, e, Config{})
	flushCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := q.FlushAudit(flushCtx); err != nil {
		t.Fatal(err)
	}
	ids := auditIDs(t, q)
	if len(ids) != n {
		t.Fatalf("%d audit records stored, want %d: %v", len(ids), n, ids)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("record %s stored twice", id)
		}
		seen[id] = true
	}
	if q.AuditDropped() != 0 {
		t.Errorf("dropped %d records, want 0", q.AuditDropped())
	}
}

// FlushAudit returns once every record given before it is stored: a
// command that audits and exits loses nothing.
func TestFlushAuditStoresEverythingGiven(t *testing.T) {
	q := newQueue(t)
	const n = 500
	for i := range n {
		q.Audit(auditRec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := q.FlushAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(auditIDs(t, q)); got != n {
		t.Fatalf("after FlushAudit the audit stream holds %d records, want %d", got, n)
	}
}

// A full buffer (JetStream unreachable for long) drops records, counts
// them, and never blocks the request that audits; FlushAudit then says
// how many were not stored when its context ends.
func TestFullAuditBufferDropsAndCounts(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	q := openQueue(t, e, Config{PublishTimeout: 100 * time.Millisecond})
	q.auditBufferLen = 4
	ctx := context.Background()
	if err := q.js.DeleteStream(ctx, AuditStream); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		q.Audit(auditRec(i)) // must return although nothing can be stored
	}
	dropped := q.AuditDropped()
	// At most the buffer and one batch in the writer's hands are kept.
	if dropped == 0 || dropped > n-4 {
		t.Fatalf("dropped %d of %d with a buffer of 4, want all but the buffer and a batch", dropped, n)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := q.FlushAudit(short); err == nil {
		t.Fatal("FlushAudit returned nil while records could not be stored")
	}
	openQueue(t, e, Config{})
	flushCtx, cancel2 := context.WithTimeout(ctx, 20*time.Second)
	defer cancel2()
	if err := q.FlushAudit(flushCtx); err != nil {
		t.Fatal(err)
	}
	if got := uint64(len(auditIDs(t, q))); got+dropped != n {
		t.Fatalf("stored %d and dropped %d of %d records", got, dropped, n)
	}
}

func (l *lockedBuffer) count(s string) int { return strings.Count(l.String(), s) }

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An outage is logged once, not once a record: one warning that records
// wait, one that the buffer is full, one when they are stored after a
// retry; FlushAudit says how many were not stored yet.
func TestAuditOutageIsLoggedOnce(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var logs lockedBuffer
	ctx := context.Background()
	q, err := Open(ctx, nc, Config{PublishTimeout: 100 * time.Millisecond}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	q.auditBufferLen = 4
	if err := q.js.DeleteStream(ctx, AuditStream); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		q.Audit(auditRec(i))
	}
	dropped := q.AuditDropped()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = q.FlushAudit(short)
	if want := fmt.Sprintf("audit: %d records not stored yet", n-dropped); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("FlushAudit during the outage: %v, want %q", err, want)
	}
	waitFor(t, "three failed rounds", func() bool { return q.audits.failedRounds.Load() > 2 })
	// Two more while the writer retries: they wait in the buffer (or are
	// dropped when it is still full); what waits there is stored at its
	// first attempt once the stream is back.
	q.Audit(auditRec(n))
	q.Audit(auditRec(n + 1))
	openQueue(t, e, Config{})
	flushCtx, cancel2 := context.WithTimeout(ctx, 20*time.Second)
	defer cancel2()
	if err := q.FlushAudit(flushCtx); err != nil {
		t.Fatal(err)
	}
	if got, want := uint64(len(auditIDs(t, q))), n+2-q.AuditDropped(); got != want {
		t.Errorf("%d records stored, want %d", got, want)
	}
	if logs.count("err=<nil>") > 0 {
		t.Errorf("a warning without its error:\n%s", logs.String())
	}
	if regexp.MustCompile(`stored after a retry.* attempts=1\b`).MatchString(logs.String()) {
		t.Errorf("records stored at their first attempt logged as stored after a retry:\n%s", logs.String())
	}
	for msg, want := range map[string]int{
		"audit buffer full":                  1,
		"audit records not stored yet":       1,
		"audit records stored after a retry": 1,
	} {
		if got := logs.count(msg); got != want {
			t.Errorf("%d log lines %q, want %d:\n%s", got, msg, want, logs.String())
		}
	}
}

// The writer packs a batch's records into one message per decision, in
// their order, split at the size bound; the reader takes a packed message
// and a single record (replay's, older routers') alike.
func TestAuditRecordsPackedPerDecision(t *testing.T) {
	a := &auditWriter{idPrefix: "t-"}
	rec := func(decision, id string) auditRecord {
		data, err := json.Marshal(policy.Record{Decision: decision, EventID: id})
		if err != nil {
			t.Fatal(err)
		}
		return auditRecord{subject: AuditSubjectPrefix + decision, data: data}
	}
	batch := []auditRecord{rec("accepted", "a1"), rec("denied", "d1"), rec("accepted", "a2"), rec("accepted", "a3")}
	msgs := a.pack(batch, DefaultAuditMaxBytes)
	if len(msgs) != 2 || msgs[0].subject != AuditSubjectPrefix+"accepted" || msgs[1].subject != AuditSubjectPrefix+"denied" {
		t.Fatalf("packed into %d messages: %+v", len(msgs), msgs)
	}
	if msgs[0].records != 3 || msgs[1].records != 1 || msgs[0].id == msgs[1].id {
		t.Fatalf("records %d and %d, ids %q %q", msgs[0].records, msgs[1].records, msgs[0].id, msgs[1].id)
	}
	var ids []string
	for _, m := range msgs {
		recs, err := decodeAudit(m.data)
		if err != nil {
			t.Fatalf("%s: %v", m.data, err)
		}
		for _, r := range recs {
			ids = append(ids, r.EventID)
		}
	}
	if got := strings.Join(ids, " "); got != "a1 a2 a3 d1" {
		t.Fatalf("records read back %q, want a1 a2 a3 d1", got)
	}
	// A message is at most a sixteenth of the stream's cap: two records
	// fit in 2L+3 bytes ("[", a record, ",", a record, "]"), not in one less.
	two := int64(2*len(batch[0].data) + 3)
	if msgs := a.pack(batch, 16*two); len(msgs) != 3 || msgs[0].records != 2 {
		t.Fatalf("a cap of 16×%d bytes: %d messages, want a1+a2, a3, d1", two, len(msgs))
	}
	if msgs := a.pack(batch, 16*(two-1)); len(msgs) != 4 {
		t.Fatalf("a cap of 16×%d bytes: %d messages, want one per record", two-1, len(msgs))
	}
	recs, err := decodeAudit(batch[1].data)
	if err != nil || len(recs) != 1 || recs[0].EventID != "d1" {
		t.Fatalf("a single record: %v %v", recs, err)
	}
	if _, err := decodeAudit([]byte(`[{"decision":`)); err == nil {
		t.Fatal("a cut message decoded")
	}
}
