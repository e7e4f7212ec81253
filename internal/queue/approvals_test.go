package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// held is accepted(source, id, apps...) with the first app's target held
// for an hour.
func held(source, id string, apps ...string) policy.Accepted {
	a := accepted(source, id, apps...)
	a.Event.SetExtension("identity", "endpoint:agents")
	a.Event.SetExtension("principal", "bot")
	a.Hold = &policy.Hold{Gates: []string{"endpoints[agents].approval"}, Targets: []string{apps[0] + "/build"}, Deadline: time.Now().Add(time.Hour).UTC()}
	return a
}

func targetStates(t *testing.T, q *Queue, source, id string) map[string]string {
	t.Helper()
	st, err := q.Status(context.Background(), source, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tg := range st.Targets {
		out[tg.App] = tg.State
	}
	return out
}

func TestHeldTargetsWaitAndSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(ctx, nc, Config{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := held("agents", "h-1", "prod", "docs")
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, q, WorkStream); n != 1 {
		t.Fatalf("work = %d, want 1 (docs only)", n)
	}
	if got := targetStates(t, q, "agents", "h-1"); got["prod"] != policy.StateAwaitingApproval || got["docs"] != StateQueued {
		t.Fatalf("states %v", got)
	}
	// A redelivery holds nothing twice.
	if err := q.Publish(ctx, held("agents", "h-1", "prod", "docs")); !errors.Is(err, ErrAlreadyStored) {
		t.Fatalf("redelivery: %v", err)
	}
	nc.Close()
	e.Shutdown()

	q = openQueue(t, startEmbedded(t, dir), Config{})
	found, err := q.Approvals(ctx, "", "h-1")
	if err != nil || len(found) != 1 || found[0].State != policy.StateAwaitingApproval || found[0].Principal != "bot" || len(found[0].Targets) != 1 {
		t.Fatalf("after restart: %+v %v", found, err)
	}
	if got := targetStates(t, q, "agents", "h-1"); got["prod"] != policy.StateAwaitingApproval {
		t.Fatalf("states after restart %v", got)
	}
	// Concurrent approvals release the target once.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = q.Decide(ctx, Decision{Source: "agents", EventID: "h-1", Approve: true, By: "endpoint:people alice"})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := streamMsgs(t, q, WorkStream); n != 2 {
		t.Fatalf("work = %d after approvals, want 2", n)
	}
	w := lastMsg(t, q, WorkStream, WorkSubjectPrefix+"prod")
	if id := w.Header.Get("Nats-Msg-Id"); id != workMsgID("agents", "h-1", "prod", "build") {
		t.Fatalf("released work has message id %q", id)
	}
	if _, err := q.Decide(ctx, Decision{Source: "agents", EventID: "h-1", By: "x"}); !errors.Is(err, ErrApprovalDecided) {
		t.Fatalf("reject after approve: %v", err)
	}
}

func TestSweepExpiresHeldTargets(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	for _, id := range []string{"s-1", "s-2"} {
		if err := q.Publish(ctx, held("agents", id, "prod")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Decide(ctx, Decision{Source: "agents", EventID: "s-2", By: "endpoint:people alice", Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	if n, err := q.SweepApprovals(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("sweep before the deadline: %d %v", n, err)
	}
	if n, err := q.SweepApprovals(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("sweep after the deadline: %d %v", n, err)
	}
	if got := targetStates(t, q, "agents", "s-1"); got["prod"] != policy.StateExpired {
		t.Fatalf("s-1 %v", got)
	}
	if got := targetStates(t, q, "agents", "s-2"); got["prod"] != policy.StateRejected {
		t.Fatalf("s-2 %v", got)
	}
	if _, err := q.Decide(ctx, Decision{Source: "agents", EventID: "s-1", Approve: true, By: "x"}); !errors.Is(err, ErrApprovalExpired) {
		t.Fatalf("approval after expiry: %v", err)
	}
	if n := streamMsgs(t, q, WorkStream); n != 0 {
		t.Fatalf("work = %d", n)
	}
	var expired bool
	waitFor(t, "the expiry's audit record", func() bool {
		_ = q.AuditRecords(ctx, time.Time{}, func(r policy.Record) bool {
			expired = expired || r.Decision == policy.DecisionExpired && r.EventID == "s-1" && r.Subject == "bot"
			return true
		})
		return expired
	})
	if _, err := q.Approvals(ctx, "agents", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := q.Approvals(ctx, "a.*", "s-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a source that is no key token: %v", err)
	}
}

// A trigger whose template makes several runs holds each of them: Status
// reads every held run's state under its own unit (trigger and index),
// the key hold wrote it under.
func TestHeldRunsOfOneTriggerEachAwaitApproval(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	a := held("agents", "h-runs", "prod")
	second := a.Targets[0]
	second.Index, second.Name = 1, second.Name+"-1"
	a.Targets = append(a.Targets, second)
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	st, err := q.Status(ctx, "agents", "h-runs")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Targets) != 2 {
		t.Fatalf("targets %+v, want both runs", st.Targets)
	}
	for _, tg := range st.Targets {
		if tg.State != policy.StateAwaitingApproval {
			t.Errorf("run %s: %s, want %s", tg.Name, tg.State, policy.StateAwaitingApproval)
		}
	}
}

// A held target released by its approval keeps its event's place: the
// work's acceptance time is when the event was accepted (a deferred
// webhook's 202), not when it was approved (in a concurrency group, an
// approval does not make an older event the newest).
func TestReleasedWorkKeepsItsAcceptanceTime(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	a := held("agents", "a-1", "prod")
	a.Answered = time.Now().Add(-time.Second).Round(0) // stored in a burst, judged a second later
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	found, err := q.Approvals(ctx, "agents", "a-1")
	if err != nil || len(found) != 1 {
		t.Fatalf("held: %+v %v", found, err)
	}
	requested := found[0].Requested
	if !requested.Equal(a.Answered) {
		t.Errorf("approval requested at %v, want the event's 202 at %v", requested, a.Answered)
	}
	time.Sleep(20 * time.Millisecond) // the approval comes later
	if _, err := q.Decide(ctx, Decision{Source: "agents", EventID: "a-1", Approve: true, By: "endpoint:people alice"}); err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 1)
	runConsume(t, q, fastRetry, func(_ context.Context, w Work) error {
		got <- w.Accepted
		return nil
	})
	select {
	case at := <-got:
		if !at.Equal(requested) {
			t.Errorf("released work accepted at %v, want when it was held, %v", at, requested)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("released work never dispatched")
	}
}
