package queue

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
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
