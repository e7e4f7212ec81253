package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

func streamInfo(t *testing.T, q *Queue, name string) *jetstream.StreamInfo {
	t.Helper()
	s, err := q.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo()
}

// A flood of audit records drops the oldest ones at the cap instead of
// filling the store; the other streams keep no size cap.
func TestAuditStreamSizeCap(t *testing.T) {
	const capBytes = 16 << 10
	e := startEmbedded(t, t.TempDir())
	q := openQueue(t, e, Config{AuditMaxBytes: capBytes})
	const n = 300
	for i := range n {
		q.Audit(policy.Record{Decision: policy.DecisionUnauthenticated, Kind: "webhook", Source: "github",
			Status: 401, Reason: fmt.Sprintf("flood %d %s", i, strings.Repeat("x", 100))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := q.FlushAudit(ctx); err != nil {
		t.Fatal(err)
	}
	info := streamInfo(t, q, AuditStream)
	if info.Config.MaxBytes != capBytes || info.Config.Discard != jetstream.DiscardOld {
		t.Fatalf("audit stream max bytes %d, discard %v; want %d, old", info.Config.MaxBytes, info.Config.Discard, capBytes)
	}
	kept := 0
	if err := q.AuditRecords(context.Background(), time.Time{}, func(policy.Record) bool { kept++; return true }); err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > capBytes || info.State.FirstSeq <= 1 || kept >= n {
		t.Fatalf("audit stream holds %d bytes, %d records in %d messages from seq %d: want at most %d bytes, the oldest dropped",
			info.State.Bytes, kept, info.State.Msgs, info.State.FirstSeq, capBytes)
	}
	// The newest record is kept.
	var last policy.Record
	if err := q.AuditRecords(context.Background(), info.State.LastTime, func(r policy.Record) bool { last = r; return true }); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(last.Reason, fmt.Sprintf("flood %d ", n-1)) {
		t.Fatalf("last audit record %q, want the newest", last.Reason)
	}
	for _, name := range []string{EventsStream, WorkStream, DLQStream} {
		if got := streamInfo(t, q, name).Config.MaxBytes; got != -1 {
			t.Errorf("%s max bytes = %d, want no cap", name, got)
		}
	}

	// An operator command attaching leaves the router's cap alone.
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := Attach(context.Background(), nc, nil); err != nil {
		t.Fatal(err)
	}
	if got := streamInfo(t, q, AuditStream).Config.MaxBytes; got != capBytes {
		t.Fatalf("audit max bytes after Attach = %d, want the router's %d", got, capBytes)
	}
	// A router opening with the defaults sets the default cap.
	q2 := openQueue(t, e, Config{})
	if got := streamInfo(t, q2, AuditStream).Config.MaxBytes; got != DefaultAuditMaxBytes {
		t.Fatalf("default audit max bytes = %d, want %d", got, DefaultAuditMaxBytes)
	}
}

func TestAuditMaxBytesNegative(t *testing.T) {
	if _, err := (Config{AuditMaxBytes: -1}).withDefaults(); err == nil {
		t.Fatal("a negative audit cap was accepted")
	}
}
