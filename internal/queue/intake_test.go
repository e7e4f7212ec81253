package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// githubIntake is a GitHub push as the router stores it during a burst:
// the headers GitHub sends (the signature already stripped) and a body.
func githubIntake(t testing.TB, delivery string) Intake {
	t.Helper()
	body, err := os.ReadFile("../../cmd/router/samples/github.json")
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitHub-Hookshot/044aadd")
	h.Set("X-GitHub-Event", "push")
	h.Set("X-GitHub-Delivery", delivery)
	h.Add("X-Forwarded-For", "140.82.115.1")
	h.Add("X-Forwarded-For", "10.0.0.1")
	h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	return Intake{Source: "github", Remote: "140.82.115.1", SecretLine: 2,
		Received: time.Date(2026, 11, 30, 7, 30, 0, 123456789, time.UTC), Header: h, Body: body}
}

func TestIntakeEncodingRoundTrip(t *testing.T) {
	in := githubIntake(t, "d-1")
	m, err := encodeIntake(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Data) >= len(in.Body) {
		t.Errorf("stored %d bytes for a %d-byte body: not compressed", len(m.Data), len(in.Body))
	}
	if m.Subject != IntakeSubjectPrefix+"github" {
		t.Errorf("subject %q", m.Subject)
	}
	got, err := decodeIntake(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, in)
	}

	// An empty body and no headers survive too.
	empty := Intake{Source: "hub", Received: in.Received, Header: http.Header{}, Body: []byte{}}
	m, err = encodeIntake(nil, empty)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = decodeIntake(m.Header, m.Data); err != nil || len(got.Body) != 0 || len(got.Header) != 0 || got.Source != "hub" {
		t.Errorf("empty request decoded as %+v, %v", got, err)
	}
}

func TestIntakeDecodeRefusesWhatNoRouterWrote(t *testing.T) {
	m, err := encodeIntake(nil, githubIntake(t, "d-1"))
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(h nats.Header, data []byte) (nats.Header, []byte){
		"no source":        func(h nats.Header, d []byte) (nats.Header, []byte) { h.Del(intakeSource); return h, d },
		"unknown encoding": func(h nats.Header, d []byte) (nats.Header, []byte) { h.Set(intakeEncoding, "gzip"); return h, d },
		"bad secret line":  func(h nats.Header, d []byte) (nats.Header, []byte) { h.Set(intakeSecretLine, "x"); return h, d },
		"bad time":         func(h nats.Header, d []byte) (nats.Header, []byte) { h.Set(intakeReceived, "yesterday"); return h, d },
		"body not s2":      func(h nats.Header, d []byte) (nats.Header, []byte) { return h, append(d, 0xff, 0xff) },
		"no header block":  func(h nats.Header, _ []byte) (nats.Header, []byte) { return h, []byte("no colon here") },
		// An S2 block whose length says 1 GiB: refused before allocating.
		"body claims 1 GiB": func(h nats.Header, _ []byte) (nats.Header, []byte) {
			return h, binary.AppendUvarint([]byte("X-A: b\r\n\r\n"), 1<<30)
		},
	} {
		h := nats.Header{}
		for k, v := range m.Header {
			h[k] = append([]string(nil), v...)
		}
		h, data := mutate(h, bytes.Clone(m.Data))
		if _, err := decodeIntake(h, data); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

func FuzzDecodeIntake(f *testing.F) {
	m, err := encodeIntake(nil, githubIntake(f, "d-1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(m.Header.Get(intakeEncoding), m.Header.Get(intakeReceived), m.Data)
	f.Add(intakeFormat, "2026-11-30T07:30:00Z", []byte("X-A: b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, encoding, received string, data []byte) {
		h := nats.Header{}
		h.Set(intakeSource, "github")
		h.Set(intakeSecretLine, "1")
		h.Set(intakeEncoding, encoding)
		h.Set(intakeReceived, received)
		in, err := decodeIntake(h, data)
		if err != nil {
			return
		}
		// What decodes encodes back to the same request.
		again, err := encodeIntake(nil, in)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := decodeIntake(again.Header, again.Data)
		if err != nil {
			t.Fatalf("decode of a re-encoded request: %v", err)
		}
		if !bytes.Equal(back.Body, in.Body) || !reflect.DeepEqual(back.Header, in.Header) {
			t.Fatalf("round trip changed the request: %+v vs %+v", back, in)
		}
	})
}

// judged collects what a judge saw, by delivery id.
type judged struct {
	mu   sync.Mutex
	seen map[string]int
}

func (j *judged) add(in Intake) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.seen == nil {
		j.seen = map[string]int{}
	}
	j.seen[in.Header.Get("X-GitHub-Delivery")]++
}

func (j *judged) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.seen)
}

func TestConsumeIntakeJudgesEveryStoredWebhookOnce(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 25
	for i := range n {
		if err := q.StoreIntake(ctx, githubIntake(t, fmt.Sprintf("d-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := streamMsgs(t, q, IntakeStream); got != n {
		t.Fatalf("%d intake messages stored, want %d", got, n)
	}
	var j judged
	var failedOnce atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = q.ConsumeIntake(ctx, IntakeConfig{}, func(_ context.Context, in Intake) error {
			// d-7's first judgment finds the queue unavailable: it is
			// judged again, not dropped.
			if in.Header.Get("X-GitHub-Delivery") == "d-7" && failedOnce.CompareAndSwap(false, true) {
				return fmt.Errorf("publish: %w", ErrUnavailable)
			}
			j.add(in)
			return nil
		})
	}()
	waitFor(t, "every stored webhook judged", func() bool { return j.count() == n })
	waitFor(t, "the intake stream emptied", func() bool {
		p, err := q.IntakePending(ctx)
		return err == nil && p == 0
	})
	cancel()
	<-done
	j.mu.Lock()
	defer j.mu.Unlock()
	for id, c := range j.seen {
		if c != 1 {
			t.Errorf("%s judged %d times, want once", id, c)
		}
	}
	if !failedOnce.Load() {
		t.Error("d-7 was never refused: the retry was not exercised")
	}
}

func TestConsumeIntakeWaitsForTheBurstToEnd(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := q.StoreIntake(ctx, githubIntake(t, "d-1")); err != nil {
		t.Fatal(err)
	}
	var busy atomic.Bool
	busy.Store(true)
	var j judged
	var busyWhenJudged atomic.Bool
	go func() {
		_ = q.ConsumeIntake(ctx, IntakeConfig{Busy: busy.Load, MaxDelay: time.Hour}, func(_ context.Context, in Intake) error {
			busyWhenJudged.Store(busy.Load())
			j.add(in)
			return nil
		})
	}()
	// The consumer holds the webhook while the burst lasts: it has
	// fetched it (the stream shows it acknowledged-pending) and judged
	// nothing.
	waitFor(t, "the webhook fetched", func() bool {
		if j.count() > 0 {
			t.Fatal("judged during the burst")
		}
		info, err := q.js.Consumer(ctx, IntakeStream, intakeConsumer)
		return err == nil && info.CachedInfo().NumAckPending == 1
	})
	time.Sleep(100 * time.Millisecond)
	if j.count() != 0 {
		t.Fatal("judged during the burst")
	}
	busy.Store(false)
	waitFor(t, "the webhook judged once the burst ended", func() bool { return j.count() == 1 })
	if busyWhenJudged.Load() {
		t.Error("judged while the burst lasted")
	}
}

func TestConsumeIntakeJudgesAfterMaxDelayEvenInABurst(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := q.StoreIntake(ctx, githubIntake(t, "d-1")); err != nil {
		t.Fatal(err)
	}
	var j judged
	go func() {
		// A burst that never ends must not starve the stored webhooks.
		_ = q.ConsumeIntake(ctx, IntakeConfig{Busy: func() bool { return true }, MaxDelay: 50 * time.Millisecond}, func(_ context.Context, in Intake) error {
			j.add(in)
			return nil
		})
	}()
	waitFor(t, "the webhook judged", func() bool { return j.count() == 1 })
}

func TestStoreIntakeUnavailable(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	q := openQueue(t, e, Config{PublishTimeout: 200 * time.Millisecond})
	e.Shutdown()
	err := q.StoreIntake(context.Background(), githubIntake(t, "d-1"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("StoreIntake with the server down = %v, want ErrUnavailable", err)
	}
}

func TestConsumeIntakeRemovesWhatDoesNotDecode(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := q.js.Publish(ctx, IntakeSubjectPrefix+"github", []byte("not an intake message")); err != nil {
		t.Fatal(err)
	}
	if err := q.StoreIntake(ctx, githubIntake(t, "d-1")); err != nil {
		t.Fatal(err)
	}
	var j judged
	go func() {
		_ = q.ConsumeIntake(ctx, IntakeConfig{}, func(_ context.Context, in Intake) error {
			j.add(in)
			return nil
		})
	}()
	waitFor(t, "the good webhook judged", func() bool { return j.count() == 1 })
	waitFor(t, "the stream emptied", func() bool {
		p, err := q.IntakePending(ctx)
		return err == nil && p == 0
	})
}

func TestIntakeDecodeDoesNotTrustTheStoredLength(t *testing.T) {
	h := nats.Header{}
	h.Set(intakeSource, "github")
	h.Set(intakeEncoding, intakeFormat)
	h.Set(intakeSecretLine, "1")
	h.Set(intakeReceived, "2026-11-30T07:30:00Z")
	data := binary.AppendUvarint([]byte("X-A: b\r\n\r\n"), 1<<30)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := decodeIntake(h, data); err == nil {
		t.Fatal("decoded a body that claims 1 GiB in 5 bytes")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("allocated %d bytes for a body that claims 1 GiB", grew)
	}
}

// BenchmarkStoreIntake is the store a deferred webhook's 202 waits for:
// encode (headers, S2) and one synchronous publish to the embedded server.
func BenchmarkStoreIntake(b *testing.B) {
	q := newQueue(b)
	in := githubIntake(b, "d-1")
	ctx := context.Background()
	b.SetBytes(int64(len(in.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := q.StoreIntake(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeIntake(b *testing.B) {
	in := githubIntake(b, "d-1")
	b.SetBytes(int64(len(in.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeIntake(nil, in); err != nil {
			b.Fatal(err)
		}
	}
}
