package queue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// TestRetryDeadLetter: a permanently failed work item is dead-lettered,
// `dlq retry` puts it back once the cause is fixed, and it is then done and
// gone from the dead-letter stream.
func TestRetryDeadLetter(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	if err := q.Publish(ctx, accepted("github", "d-1", "api", "web")); err != nil {
		t.Fatal(err)
	}
	var fixed atomic.Bool
	var c counter
	runConsume(t, q, fastRetry, func(_ context.Context, w Work) error {
		if w.Target.App == "api" && !fixed.Load() {
			return Permanent(errors.New("namespace api-ci missing"))
		}
		c.add(w)
		return nil
	})
	waitFor(t, "one dead letter", func() bool { return len(deadLetters(t, q)) == 1 })
	dls := deadLetters(t, q)
	if dls[0].Seq == 0 || dls[0].Work.Target.App != "api" {
		t.Fatalf("dead letter %+v", dls[0])
	}
	shown, err := q.DeadLetterAt(ctx, dls[0].Seq)
	if err != nil || shown.LastError != "namespace api-ci missing" || shown.Reason != ReasonPermanent {
		t.Fatalf("DeadLetterAt = %+v, %v", shown, err)
	}

	fixed.Store(true)
	w, err := q.RetryDeadLetter(ctx, dls[0].Seq)
	if err != nil || w.Target.App != "api" {
		t.Fatalf("RetryDeadLetter = %+v, %v", w.Target, err)
	}
	waitFor(t, "the retried work to be done", func() bool { return c.snapshot()[workKey(w)] == 1 })
	if n := len(deadLetters(t, q)); n != 0 {
		t.Fatalf("%d dead letters after retry, want 0", n)
	}
	if _, err := q.RetryDeadLetter(ctx, dls[0].Seq); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second retry = %v, want ErrNotFound", err)
	}
	if got := c.total(); got != 2 {
		t.Fatalf("handler succeeded %d times, want 2 (web once, api once after the retry)", got)
	}
}

// TestEventsAndRequeue: stored events are read back with their data, and a
// replay's requeue is deduplicated by its key, not by the original work id.
func TestEventsAndRequeue(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	for _, id := range []string{"e-1", "e-2", "e-3"} {
		if err := q.Publish(ctx, accepted("github", id, "api")); err != nil {
			t.Fatal(err)
		}
	}
	var got []StoredEvent
	if err := q.Events(ctx, time.Time{}, func(se StoredEvent) bool { got = append(got, se); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Event.ID() != "e-2" || got[1].Source != "github" || len(got[1].Event.Data()) == 0 {
		t.Fatalf("events %+v", got)
	}
	var first []StoredEvent
	if err := q.Events(ctx, time.Time{}, func(se StoredEvent) bool { first = append(first, se); return false }); err != nil || len(first) != 1 {
		t.Fatalf("stopping after one: %d, %v", len(first), err)
	}
	var none int
	if err := q.Events(ctx, time.Now().Add(time.Hour), func(StoredEvent) bool { none++; return true }); err != nil || none != 0 {
		t.Fatalf("events from the future: %d, %v", none, err)
	}

	before := streamMsgs(t, q, WorkStream)
	w := workOf(accepted("github", "e-1", "api"), 0)
	for range 2 {
		if err := q.Requeue(ctx, w, "replay-1"); err != nil {
			t.Fatal(err)
		}
	}
	if after := streamMsgs(t, q, WorkStream); after != before+1 {
		t.Fatalf("work messages %d -> %d: one replay key must queue once", before, after)
	}
}

// TestLockIsExclusive: two holders never overlap, across connections.
func TestLockIsExclusive(t *testing.T) {
	ctx := context.Background()
	e := startEmbedded(t, t.TempDir())
	q1 := openQueue(t, e, Config{})
	q2 := openQueue(t, e, Config{})
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		q := q1
		if i%2 == 1 {
			q = q2
		}
		wg.Go(func() {
			for range 5 {
				unlock, err := q.Lock(ctx, "ci/group")
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Fatalf("%d overlapping holders", overlaps.Load())
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	unlock, err := q1.Lock(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := q2.Lock(cctx, "held"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second holder got %v, want to wait until its context ended", err)
	}
}

// TestStatus: every target's state follows dispatch: queued, failed while
// retrying, created, dead-lettered, and queued again after a dlq retry.
func TestStatus(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	a := accepted("github", "s-1", "api", "web", "docs")
	a.Event.SetExtension("identity", "source:github")
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	st, err := q.Status(ctx, "github", "s-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Identity != "source:github" || len(st.Targets) != 3 || st.Targets[0].State != StateQueued {
		t.Fatalf("before dispatch: %+v", st)
	}
	var docsCalls atomic.Int32
	release := make(chan struct{})
	runConsume(t, q, fastRetry, func(_ context.Context, w Work) error {
		switch w.Target.App {
		case "api":
			return Permanent(errors.New("namespace api is missing"))
		case "docs":
			if docsCalls.Add(1) == 1 {
				return errors.New("api server timeout")
			}
			<-release
		}
		return nil
	})
	state := func(app string) TargetStatus {
		st, err := q.Status(ctx, "github", "s-1")
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range st.Targets {
			if ts.App == app {
				return ts
			}
		}
		t.Fatalf("no target %s", app)
		return TargetStatus{}
	}
	waitFor(t, "web created", func() bool { return state("web").State == StateCreated })
	waitFor(t, "api dead-lettered", func() bool { return state("api").State == StateDeadLettered })
	if r := state("api").Reason; !strings.Contains(r, "permanent") || !strings.Contains(r, "namespace api is missing") {
		t.Errorf("dead-letter reason %q", r)
	}
	waitFor(t, "docs failed, retrying", func() bool { return state("docs").State == StateFailed })
	if ts := state("docs"); ts.Reason != "api server timeout" || ts.Attempts != 1 {
		t.Errorf("docs %+v", ts)
	}
	close(release)
	waitFor(t, "docs created", func() bool { return state("docs").State == StateCreated })

	dls := deadLetters(t, q)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters", len(dls))
	}
	// Retried while the cause persists: queued, then dead-lettered again.
	if _, err := q.RetryDeadLetter(ctx, dls[0].Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "api dead-lettered again", func() bool { return len(deadLetters(t, q)) == 1 && state("api").State == StateDeadLettered })
	if _, err := q.Status(ctx, "github", "never"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown event: %v", err)
	}
}

func TestAudit(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	q.Audit(policy.Record{Decision: policy.DecisionAccepted, Kind: "webhook", Source: "github", Identity: "source:github", EventID: "a-1", Status: 202})
	q.Audit(policy.Record{Decision: policy.DecisionUnauthenticated, Kind: "webhook", Source: "github", Status: 401, Reason: "missing X-Hub-Signature-256 header"})
	var got []policy.Record
	waitFor(t, "two audit records", func() bool {
		got = nil
		if err := q.AuditRecords(ctx, time.Time{}, func(r policy.Record) bool { got = append(got, r); return true }); err != nil {
			t.Fatal(err)
		}
		return len(got) == 2
	})
	if got[0].EventID != "a-1" || got[1].Decision != policy.DecisionUnauthenticated || got[1].Time.IsZero() {
		t.Fatalf("records %+v", got)
	}
	var later int
	if err := q.AuditRecords(ctx, time.Now().Add(time.Minute), func(policy.Record) bool { later++; return true }); err != nil || later != 0 {
		t.Fatalf("since the future: %d, %v", later, err)
	}
}
