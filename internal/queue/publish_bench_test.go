package queue

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPublishParallel publishes from 20 goroutines at once, as 20
// concurrent webhook senders do: the figure the ingest rate rests on.
func BenchmarkPublishParallel(b *testing.B) {
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
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(10) // 20 senders on 2 CPUs
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			a := accepted("github", fmt.Sprintf("d-%d", n.Add(1)), "api")
			if err := q.Publish(ctx, a); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// keptWait is how long BenchmarkKeptKeyHeap waits before it measures.
var keptWait = flag.Duration("kept-wait", 0, "BenchmarkKeptKeyHeap: wait this long before measuring (150s: the blocks' own subject state has expired)")

// BenchmarkKeptKeyHeap stores records under keys of each form and
// reports the embedded server's heap per key (heap-B/key): what a kept
// event's key costs. Right after the writes each block still holds its
// own subject state, which nats-server drops 2 minutes after the block's
// last use; what a key costs for the rest of its days is measured with
// -benchtime 200000x -args -kept-wait 150s (recordRef.key has the figures).
func BenchmarkKeptKeyHeap(b *testing.B) {
	for _, form := range []struct {
		name string
		key  func(recordRef) string
	}{{"short", recordRef.key}, {"legacy", recordRef.legacyKey}} {
		b.Run(form.name, func(b *testing.B) {
			q := newQueue(b)
			before := liveHeap()
			b.ResetTimer()
			for i := range b.N {
				subject := acceptedSubjectPrefix + form.key(acceptedKey("github", fmt.Sprintf("d-%d", i)))
				if _, err := q.js.PublishAsync(subject, []byte(`{}`)); err != nil {
					b.Fatal(err)
				}
				if i%4096 == 4095 {
					<-q.js.PublishAsyncComplete()
				}
			}
			<-q.js.PublishAsyncComplete()
			b.StopTimer()
			time.Sleep(*keptWait)
			b.ReportMetric(float64(liveHeap()-before)/float64(b.N), "heap-B/key")
		})
	}
}

// liveHeap is the heap in use after two collections, in bytes.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
