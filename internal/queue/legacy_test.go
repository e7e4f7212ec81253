package queue

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Records are kept under 22-character keys (issue 12: nats-server holds
// every kept key in memory), and a fresh store gets no legacy bucket.
func TestRecordKeysAreShort(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	a := accepted("github", "k-1", "api")
	a.BodyDigest = strings.Repeat("ab", 32) + "/0"
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	lister, err := q.accepted.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %q, want the event's and its body's", keys)
	}
	for _, k := range keys {
		if rest, ok := strings.CutPrefix(k, "github."); !ok || len(rest) != 22 {
			t.Errorf("key %q, want github.<22 characters>", k)
		}
	}
	if _, err := q.js.KeyValue(ctx, LegacyAcceptedBucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("legacy bucket on a fresh store: %v, want none", err)
	}
	if q.legacy != nil {
		t.Error("a queue with no legacy bucket looks records up there")
	}
}

// olderRouter writes records as a router before the short keys did: into
// the legacy bucket, under the long keys.
func olderRouter(t *testing.T, e *Embedded) jetstream.KeyValue {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{
		Bucket: LegacyAcceptedBucket, History: 1, Storage: jetstream.FileStorage, TTL: 7 * 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func putLegacy(t *testing.T, kv jetstream.KeyValue, ref recordRef, rec AcceptedRecord) {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), ref.legacyKey(), data); err != nil {
		t.Fatal(err)
	}
}

// After an upgrade, the events an earlier version stored are still
// found: their redeliveries and replayed bodies store nothing, and their
// status, read and written, is served.
func TestRecordsOfAnEarlierVersion(t *testing.T) {
	ctx := context.Background()
	e := startEmbedded(t, t.TempDir())
	old := olderRouter(t, e)
	a := accepted("github", "old-1", "api", "web")
	a.BodyDigest = strings.Repeat("cd", 32) + "/0"
	rec := acceptedRecord(a)
	putLegacy(t, old, acceptedKey("github", "old-1"), rec)
	putLegacy(t, old, bodyKey("github", a.BodyDigest), rec)

	q := openQueue(t, e, Config{})
	if err := q.Publish(ctx, a); !errors.Is(err, ErrAlreadyStored) {
		t.Fatalf("redelivery of an event stored before the upgrade: %v, want ErrAlreadyStored", err)
	}
	replayed := accepted("github", "new-id-same-body", "api")
	replayed.BodyDigest = a.BodyDigest
	err := q.Publish(ctx, replayed)
	var stored *StoredBefore
	if !errors.As(err, &stored) || stored.Record.ID != "old-1" {
		t.Fatalf("captured body replayed after the upgrade: %v, want stored before as old-1", err)
	}
	if n := streamMsgs(t, q, EventsStream) + streamMsgs(t, q, WorkStream); n != 0 {
		t.Errorf("%d messages stored for events stored before the upgrade", n)
	}
	if ok, err := q.Stored(ctx, "github", "old-1"); err != nil || !ok {
		t.Errorf("Stored(old-1) = %v, %v; want true", ok, err)
	}

	// Dispatch's state for a target of a legacy record: the record is
	// never written, the target gets its own key, and Status reads both.
	q.setStatus(ctx, workOf(a, 0), StateCreated, "", 1)
	if st := statusOf(t, q, "old-1", "api"); st.State != StateCreated {
		t.Errorf("api %+v, want created", st)
	}
	if st := statusOf(t, q, "old-1", "web"); st.State != StateQueued {
		t.Errorf("web %+v, want queued", st)
	}
	if entry, err := old.Get(ctx, acceptedKey("github", "old-1").legacyKey()); err != nil || entry.Revision() != 1 {
		t.Errorf("legacy record written after the upgrade (%v)", err)
	}

	// A new event is recorded in the new bucket only.
	if err := q.Publish(ctx, accepted("github", "new-1", "api")); err != nil {
		t.Fatal(err)
	}
	if _, err := q.accepted.Get(ctx, acceptedKey("github", "new-1").key()); err != nil {
		t.Errorf("new event's record: %v", err)
	}
	if _, err := old.Get(ctx, acceptedKey("github", "new-1").legacyKey()); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("new event recorded in the legacy bucket: %v", err)
	}
}

// The legacy bucket is looked up while it holds records, asked again a
// minute after each answer: once its records expire, a lookup costs one
// round trip, and a record an older replica writes after that is found
// within the minute.
func TestLegacyBucketLookedUpWhileItHoldsRecords(t *testing.T) {
	ctx := context.Background()
	e := startEmbedded(t, t.TempDir())
	old := olderRouter(t, e)
	putLegacy(t, old, acceptedKey("github", "old-1"), acceptedRecord(accepted("github", "old-1", "api")))
	q := openQueue(t, e, Config{})
	now := time.Now()
	q.legacy.now = func() time.Time { return now }

	found := func(id string) bool {
		t.Helper()
		ok, err := q.Stored(ctx, "github", id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !found("old-1") {
		t.Fatal("legacy record not found")
	}
	// Its records expire (a purge here): trusted for a minute, then not
	// looked up.
	s, err := q.js.Stream(ctx, "KV_"+LegacyAcceptedBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if !q.legacy.holdsRecords(ctx) {
		t.Error("answer not trusted for a minute")
	}
	now = now.Add(legacyRecheck)
	if q.legacy.holdsRecords(ctx) {
		t.Error("empty legacy bucket still looked up after a minute")
	}
	// An older replica stores an event: found once the minute is over.
	putLegacy(t, old, acceptedKey("github", "old-2"), acceptedRecord(accepted("github", "old-2", "api")))
	if found("old-2") {
		t.Error("looked up the legacy bucket within the minute it was known empty")
	}
	now = now.Add(legacyRecheck)
	if !found("old-2") {
		t.Error("legacy record written by an older replica not found after a minute")
	}
}

// An operator command run after an upgrade, before the new router has
// started, attaches: it creates the records bucket as the legacy one is
// set up (nothing else is reconfigured) and reads the legacy records.
func TestAttachBeforeTheNewRouterStarted(t *testing.T) {
	ctx := context.Background()
	e := startEmbedded(t, t.TempDir())
	older := openQueue(t, e, Config{Replicas: 1})
	if err := older.js.DeleteKeyValue(ctx, AcceptedBucket); err != nil {
		t.Fatal(err)
	}
	old := olderRouter(t, e)
	putLegacy(t, old, acceptedKey("github", "old-1"), acceptedRecord(accepted("github", "old-1", "api")))

	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := Attach(ctx, nc, nil)
	if err != nil {
		t.Fatalf("attach after an upgrade: %v", err)
	}
	if ok, err := q.Stored(ctx, "github", "old-1"); err != nil || !ok {
		t.Errorf("Stored(old-1) = %v, %v; want true", ok, err)
	}
	st, err := q.accepted.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 7*24*time.Hour || st.History() != 1 || st.Config().Storage != jetstream.FileStorage {
		t.Errorf("records bucket created with TTL %v, history %d, storage %v; want the legacy bucket's 168h, 1, file",
			st.TTL(), st.History(), st.Config().Storage)
	}
	// A router started after it opens the same bucket.
	if _, err := Open(ctx, nc, Config{}, nil); err != nil {
		t.Fatalf("router after the operator command: %v", err)
	}
}
