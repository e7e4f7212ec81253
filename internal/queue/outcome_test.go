package queue

import (
	"context"
	"sync"
	"testing"
)

// TestHandlerOutcomes: Skip and Done ack the work (no retry, no dead
// letter) and record skipped or created with the reason; LastAttempt is
// true only on the attempt that would dead-letter.
func TestHandlerOutcomes(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	a := accepted("github", "o-1", "skip", "note", "retry")
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	last := map[int]bool{} // retry's attempts: LastAttempt
	var retries int
	cfg := fastRetry
	cfg.MaxAttempts = 3
	runConsume(t, q, cfg, func(ctx context.Context, w Work) error {
		switch w.Target.App {
		case "skip":
			return Skip("no changed file matches paths src/**")
		case "note":
			return Done("paths not checked: compare API: 502; treated as matched")
		}
		mu.Lock()
		defer mu.Unlock()
		retries++
		last[retries] = LastAttempt(ctx)
		if LastAttempt(ctx) {
			return nil
		}
		return context.DeadlineExceeded
	})
	want := map[string][2]string{
		"skip":  {StateSkipped, "no changed file matches paths src/**"},
		"note":  {StateCreated, "paths not checked: compare API: 502; treated as matched"},
		"retry": {StateCreated, ""},
	}
	waitFor(t, "every target settled", func() bool {
		st, err := q.Status(ctx, "github", "o-1")
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range st.Targets {
			if w := want[ts.App]; ts.State != w[0] || ts.Reason != w[1] {
				return false
			}
		}
		return pending(t, q) == 0
	})
	if dls := deadLetters(t, q); len(dls) != 0 {
		t.Errorf("dead letters %+v, want none", dls)
	}
	mu.Lock()
	defer mu.Unlock()
	if retries != 3 || last[1] || last[2] || !last[3] {
		t.Errorf("attempts %d with LastAttempt %v, want 3, true on the third only", retries, last)
	}
	if LastAttempt(ctx) {
		t.Error("LastAttempt outside Consume = true")
	}
}
