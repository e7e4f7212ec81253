package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// testLogger shows warnings and errors from the code under test in -v output.
func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startEmbedded starts a server on dir and shuts it down at cleanup.
func startEmbedded(t testing.TB, dir string) *Embedded {
	t.Helper()
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// openQueue connects to e and opens a Queue, closing the connection at
// cleanup.
func openQueue(t testing.TB, e *Embedded, cfg Config) *Queue {
	t.Helper()
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := Open(context.Background(), nc, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func newQueue(t testing.TB) *Queue {
	t.Helper()
	return openQueue(t, startEmbedded(t, t.TempDir()), Config{})
}

// accepted builds an Accepted for source and event id with one work item
// per app (trigger "build").
func accepted(source, id string, apps ...string) policy.Accepted {
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("https://github.com/acme/widgets")
	ev.SetType("dev.switchyard.git.push")
	ev.SetSubject("refs/heads/main")
	ev.SetExtension("repository", "acme/widgets")
	if err := ev.SetData(event.ApplicationJSON, map[string]any{"ref": "refs/heads/main"}); err != nil {
		panic(err) // a map always encodes
	}
	a := policy.Accepted{Source: source, Event: ev}
	for _, app := range apps {
		a.Targets = append(a.Targets, routing.Target{App: app, Trigger: "build", Namespace: app, Name: app + "-build-" + id})
	}
	return a
}

// workOf is the i-th unit of work Publish makes of a: its target, with
// the event's attributes and no data.
func workOf(a policy.Accepted, i int) Work {
	attrs := a.Event.Clone()
	attrs.DataEncoded = nil
	return Work{Source: a.Source, Event: attrs, Target: a.Targets[i]}
}

func workKey(w Work) string {
	return workMsgID(w.Source, w.Event.ID(), w.Target.App, w.Target.Trigger)
}

// streamMsgs returns the number of messages in stream.
func streamMsgs(t testing.TB, q *Queue, stream string) uint64 {
	t.Helper()
	s, err := q.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// lastMsg returns the last message stored on subject in stream.
func lastMsg(t testing.TB, q *Queue, stream, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := q.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishDedup(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()

	a := accepted("github", "d-1", "api", "web")
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	// A redelivery is a success that says it stored nothing new.
	if err := q.Publish(ctx, a); !errors.Is(err, ErrAlreadyStored) {
		t.Fatalf("redelivery: %v, want ErrAlreadyStored", err)
	}
	if got := streamMsgs(t, q, EventsStream); got != 1 {
		t.Errorf("events after redelivery = %d, want 1", got)
	}
	if got := streamMsgs(t, q, WorkStream); got != 2 {
		t.Errorf("work after redelivery = %d, want 2", got)
	}

	// The same delivery id from another source is another event.
	if err := q.Publish(ctx, accepted("gitlab", "d-1", "api", "web")); err != nil {
		t.Fatal(err)
	}
	if got := streamMsgs(t, q, EventsStream); got != 2 {
		t.Errorf("events after other source = %d, want 2", got)
	}
	if got := streamMsgs(t, q, WorkStream); got != 4 {
		t.Errorf("work after other source = %d, want 4", got)
	}
}

func TestPublishStoresEventAndWork(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	a := accepted("github", "d-1", "api")
	// Data in a work item must not travel: dispatch never reads payloads.
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}

	m := lastMsg(t, q, EventsStream, EventsSubjectPrefix+"github")
	var got event.Event
	if err := got.UnmarshalJSON(m.Data); err != nil {
		t.Fatal(err)
	}
	if got.ID() != "d-1" || string(got.Data()) != string(a.Event.Data()) {
		t.Errorf("stored event = %s, want id d-1 with the original data", m.Data)
	}
	if id := m.Header.Get(nats.MsgIdHdr); id != "github/d-1" {
		t.Errorf("event msg id = %q, want github/d-1", id)
	}

	m = lastMsg(t, q, WorkStream, WorkSubjectPrefix+"api")
	if id := m.Header.Get(nats.MsgIdHdr); id != "github/d-1/api/build" {
		t.Errorf("work msg id = %q, want github/d-1/api/build", id)
	}
	var w Work
	if err := json.Unmarshal(m.Data, &w); err != nil {
		t.Fatal(err)
	}
	if w.Event.ID() != "d-1" || len(w.Event.Data()) != 0 {
		t.Errorf("stored work = %s, want event d-1 without data", m.Data)
	}
	if len(a.Event.Data()) == 0 {
		t.Error("Publish cleared the caller's event data")
	}
}

func TestPublishRejectsInvalid(t *testing.T) {
	q := newQueue(t)
	noID := accepted("github", "", "api")
	tests := []struct {
		name    string
		a       policy.Accepted
		wantErr error
	}{
		{name: "source with dot", a: accepted("git.hub", "d-1", "api"), wantErr: ErrInvalidName},
		{name: "source with wildcard", a: accepted("git*", "d-1", "api"), wantErr: ErrInvalidName},
		{name: "empty source", a: accepted("", "d-1", "api"), wantErr: ErrInvalidName},
		{name: "app with gt", a: accepted("github", "d-1", "api>"), wantErr: ErrInvalidName},
		{name: "app with space", a: accepted("github", "d-1", "my app"), wantErr: ErrInvalidName},
		{name: "app with tab", a: accepted("github", "d-1", "app\t"), wantErr: ErrInvalidName},
		{name: "empty event id", a: noID},
		{name: "no event", a: policy.Accepted{Source: "github"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := q.Publish(context.Background(), tt.a)
			if err == nil {
				t.Fatal("Publish succeeded, want an error")
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("error %v wraps ErrUnavailable; a retry cannot fix it", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
		})
	}
	// Nothing of a rejected Accepted is stored, not even its event.
	if got := streamMsgs(t, q, EventsStream); got != 0 {
		t.Errorf("events = %d, want 0", got)
	}
}

func TestPublishUnavailable(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	q := openQueue(t, e, Config{PublishTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	if err := q.Ready(ctx); err != nil {
		t.Fatalf("Ready with the server up: %v", err)
	}
	e.Shutdown()

	err := q.Publish(ctx, accepted("github", "d-1", "api"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish with the server down = %v, want ErrUnavailable", err)
	}
	if err := q.Ready(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready with the server down = %v, want ErrUnavailable", err)
	}
}

func TestPublishClosedConnection(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	q := openQueue(t, e, Config{PublishTimeout: time.Second})
	q.nc.Close()
	err := q.Publish(context.Background(), accepted("github", "d-1", "api"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish on a closed connection = %v, want ErrUnavailable", err)
	}
}

func TestOpenConfig(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		// What the server holds afterwards (for the cases that open).
		maxAge, dupWindow time.Duration
	}{
		{name: "defaults", cfg: Config{}, maxAge: 7 * 24 * time.Hour, dupWindow: 2 * time.Minute},
		{name: "short retention", cfg: Config{EventsMaxAge: time.Hour, DuplicateWindow: time.Minute}, maxAge: time.Hour, dupWindow: time.Minute},
		{name: "dedup longer than retention", cfg: Config{EventsMaxAge: time.Hour, DuplicateWindow: 2 * time.Hour}, wantErr: true},
		{name: "negative replicas", cfg: Config{Replicas: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Open(ctx, nc, tt.cfg, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if err := q.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			checkStoredSettings(t, q, tt.maxAge, tt.dupWindow)
		})
	}
}

// checkStoredSettings reads the streams' and buckets' settings back from
// the server: Open must apply the config, not only accept it.
func checkStoredSettings(t *testing.T, q *Queue, maxAge, dupWindow time.Duration) {
	t.Helper()
	ctx := context.Background()
	info := func(name string) jetstream.StreamConfig {
		s, err := q.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config
	}
	events, work, dlq := info(EventsStream), info(WorkStream), info(DLQStream)
	if events.MaxAge != maxAge || events.Duplicates != dupWindow {
		t.Errorf("events stream max age %s, duplicates %s; want %s, %s", events.MaxAge, events.Duplicates, maxAge, dupWindow)
	}
	if work.MaxAge != 0 || work.Retention != jetstream.WorkQueuePolicy || work.Duplicates != dupWindow {
		t.Errorf("work stream max age %s, retention %s, duplicates %s; want none, work queue, %s", work.MaxAge, work.Retention, work.Duplicates, dupWindow)
	}
	// Dead letters keep their ids a day whatever the events' window: a
	// lost terminate may be redelivered after a restart hours later.
	if dlq.MaxAge != DLQMaxAge || dlq.Duplicates != 24*time.Hour {
		t.Errorf("dead-letter stream max age %s, duplicates %s; want %s, 24h", dlq.MaxAge, dlq.Duplicates, DLQMaxAge)
	}
	for _, c := range []jetstream.StreamConfig{events, work, dlq} {
		if c.Replicas != 1 || c.Storage != jetstream.FileStorage {
			t.Errorf("stream %s: replicas %d, storage %s; want 1, file", c.Name, c.Replicas, c.Storage)
		}
	}
	st, err := q.accepted.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != maxAge {
		t.Errorf("accepted-events bucket TTL = %s, want %s (dedup across restarts lasts as long as the events)", st.TTL(), maxAge)
	}
}

func TestDurability(t *testing.T) {
	dir := t.TempDir()
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(context.Background(), nc, Config{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := range 3 {
		a := accepted("github", fmt.Sprintf("d-%d", i), "api", "web")
		if err := q.Publish(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		for i := range a.Targets {
			w := workOf(a, i)
			want[workKey(w)] = true
		}
	}
	nc.Close()
	e.Shutdown()

	q = openQueue(t, startEmbedded(t, dir), Config{})
	got := collect(t, q, len(want))
	for k := range want {
		if got[k] != 1 {
			t.Errorf("after restart, %s delivered %d times, want 1", k, got[k])
		}
	}
	// The dedup window survives too: a redelivery after the restart is
	// still a duplicate.
	if err := q.Publish(context.Background(), accepted("github", "d-0", "api", "web")); !errors.Is(err, ErrAlreadyStored) {
		t.Fatalf("redelivery across restart: %v, want ErrAlreadyStored", err)
	}
	if n := streamMsgs(t, q, EventsStream); n != 3 {
		t.Errorf("events after redelivery across restart = %d, want 3", n)
	}
}

func TestEmbeddedListen(t *testing.T) {
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := nats.Connect(e.ClientURL())
	if err != nil {
		t.Fatalf("connect over TCP to %s: %v", e.ClientURL(), err)
	}
	defer nc.Close()
	if got := nc.MaxPayload(); got != DefaultMaxPayload {
		t.Errorf("max payload = %d, want %d", got, DefaultMaxPayload)
	}
}

func TestEmbeddedRequiresStoreDir(t *testing.T) {
	if _, err := StartEmbedded(EmbeddedOptions{}); err == nil {
		t.Fatal("StartEmbedded without a store dir succeeded")
	}
}

// TestPublishLargePayload stores a payload at GitHub's 25 MiB cap.
func TestPublishLargePayload(t *testing.T) {
	if testing.Short() {
		t.Skip("large payload")
	}
	// Generous: the race detector makes moving 25 MiB slow.
	q := openQueue(t, startEmbedded(t, t.TempDir()), Config{PublishTimeout: 2 * time.Minute})
	a := accepted("github", "d-big", "api")
	big := make([]byte, 0, 25<<20)
	big = append(big, `{"blob":"`...)
	big = append(big, strings.Repeat("x", 25<<20-len(`{"blob":""}`))...)
	big = append(big, `"}`...)
	// As ingest holds it: the raw body bytes, which SetData marks as binary.
	if err := a.Event.SetData(event.ApplicationJSON, big); err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(context.Background(), a); err != nil {
		t.Fatalf("publish 25 MiB payload: %v", err)
	}
	m := lastMsg(t, q, EventsStream, EventsSubjectPrefix+"github")
	if !bytes.Contains(m.Data, []byte(`"data":{"blob":"xxx`)) {
		t.Errorf("stored event does not embed the payload as JSON: %.200s", m.Data)
	}
}

func BenchmarkPublish(b *testing.B) {
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown()
	nc, err := e.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	q, err := Open(context.Background(), nc, Config{}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		b.Fatal(err)
	}
	a := accepted("github", "d", "api")
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// A fresh id each time, or dedup would make this a no-op.
		id := fmt.Sprintf("d-%d", i)
		i++
		a.Event.SetID(id)
		if err := q.Publish(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
}

// Attach uses the streams as a router configured them: an operator command
// must not reset a router's settings to the defaults.
func TestAttachKeepsTheStreamsSettings(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	ctx := context.Background()
	q := openQueue(t, e, Config{EventsMaxAge: 36 * time.Hour})
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := Attach(ctx, nc, nil); err != nil {
		t.Fatal(err)
	}
	s, err := q.js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 36*time.Hour {
		t.Fatalf("events max age after Attach = %s, want the router's 36h", got)
	}

	empty := startEmbedded(t, t.TempDir())
	nc2, err := empty.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc2.Close)
	if _, err := Attach(ctx, nc2, nil); err == nil || !strings.Contains(err.Error(), "has a router run here?") {
		t.Fatalf("Attach to a server no router used: %v", err)
	}
}

// TestAttachWithoutTheIntakeStream: operator commands attach to the
// streams of a router of the version before bursts, which has no intake.
func TestAttachWithoutTheIntakeStream(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	ctx := context.Background()
	q := openQueue(t, e, Config{})
	if err := q.js.DeleteStream(ctx, IntakeStream); err != nil {
		t.Fatal(err)
	}
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := Attach(ctx, nc, nil); err != nil {
		t.Fatalf("Attach without the intake stream: %v", err)
	}
}

// The events stream is written in 4 MiB blocks, not the 8 MiB nats-server
// gives a stream without limits: the block being written is held in
// memory whole, so a burst of events pins half as much (issue 12's peak
// RSS). Its per-subject limit, which gives the smaller blocks, keeps
// every event.
func TestEventsStreamWritesFourMiBBlocks(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, startEmbedded(t, dir), Config{})
	if got := streamInfo(t, q, EventsStream).Config.MaxMsgsPerSubject; got != eventsPerSource {
		t.Fatalf("events stream max messages per subject %d, want %d", got, eventsPerSource)
	}
	// 10 MiB of events of one source, in messages of about 64 KiB.
	payload := map[string]string{"blob": strings.Repeat("x", 64<<10)}
	const n = 160
	for i := range n {
		a := accepted("github", fmt.Sprintf("d-%d", i), "api")
		if err := a.Event.SetData(event.ApplicationJSON, payload); err != nil {
			t.Fatal(err)
		}
		if err := q.Publish(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	if got := streamMsgs(t, q, EventsStream); got != n {
		t.Fatalf("events stream holds %d events, want all %d", got, n)
	}
	blocks, err := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", EventsStream, "msgs", "*.blk"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) < 3 {
		t.Fatalf("events stream has %d block files %v, want 10 MiB in at least three", len(blocks), blocks)
	}
	for _, b := range blocks {
		fi, err := os.Stat(b)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 4<<20 {
			t.Errorf("block %s holds %d bytes, want at most 4 MiB", filepath.Base(b), fi.Size())
		}
	}
}
