package dispatch

// Tests added for concurrency mutants that lived (docs/testing.md,
// "Mutation testing").

import (
	"context"
	"testing"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// groupRuns creates runs of billing/deploy in group c directly (no
// AfterCreate), dispatched at the given times, with spec.status status.
func groupRuns(t *testing.T, client *fake.Clientset, c *routing.Concurrency, status pipelinev1.PipelineRunSpecStatus, at map[string]time.Time) map[string]*pipelinev1.PipelineRun {
	t.Helper()
	out := map[string]*pipelinev1.PipelineRun{}
	for id, when := range at {
		pr := mustRender(t, groupWork("billing", "deploy", id, c))
		pr.Annotations[AnnotationDispatchedAt] = when.UTC().Format(time.RFC3339Nano)
		pr.Spec.Status = status
		if _, err := client.TektonV1().PipelineRuns(pr.Namespace).Create(context.Background(), pr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		out[id] = pr
	}
	return out
}

// A run with cancelInProgress cancels every older unfinished run of its
// group, not only the first.
func TestCancelInProgressCancelsEveryOlderRun(t *testing.T) {
	client := fake.NewSimpleClientset()
	kc := NewKubeCreatorForClient(client)
	c := &routing.Concurrency{Group: "deploy", CancelInProgress: true}
	t0 := time.Now()
	runs := groupRuns(t, client, c, "", map[string]time.Time{"old-1": t0, "old-2": t0.Add(time.Second), "new": t0.Add(2 * time.Second)})
	if err := kc.concurrency.AfterCreate(context.Background(), runs["new"]); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"old-1", "old-2"} {
		if got := specStatus(t, client, runs[id]); got != pipelinev1.PipelineRunSpecStatusCancelled {
			t.Errorf("%s: spec.status %q, want cancelled", id, got)
		}
	}
	if got := specStatus(t, client, runs["new"]); got != "" {
		t.Errorf("new: spec.status %q, want running", got)
	}
}

// Runs are ordered by their dispatched-at annotation, not by name or
// creation time: the newest by dispatch cancels the others.
func TestGroupOrderIsDispatchTime(t *testing.T) {
	client := fake.NewSimpleClientset()
	kc := NewKubeCreatorForClient(client)
	c := &routing.Concurrency{Group: "deploy", CancelInProgress: true}
	t0 := time.Now()
	// Names sort opposite to dispatch times.
	runs := groupRuns(t, client, c, "", map[string]time.Time{"a-newest": t0.Add(time.Minute), "z-oldest": t0})
	if err := kc.concurrency.AfterCreate(context.Background(), runs["a-newest"]); err != nil {
		t.Fatal(err)
	}
	if got := specStatus(t, client, runs["z-oldest"]); got != pipelinev1.PipelineRunSpecStatusCancelled {
		t.Errorf("the older run by dispatch time: spec.status %q, want cancelled", got)
	}
}

// With room for N, Resync starts exactly N pending runs, oldest first.
func TestResyncStartsUpToTheLimit(t *testing.T) {
	for _, limit := range []int{1, 2} {
		client := fake.NewSimpleClientset()
		kc := NewKubeCreatorForClient(client)
		t0 := time.Now()
		runs := groupRuns(t, client, &routing.Concurrency{Group: "deploy", Limit: limit}, pipelinev1.PipelineRunSpecStatusPending,
			map[string]time.Time{"p-1": t0, "p-2": t0.Add(time.Second), "p-3": t0.Add(2 * time.Second)})
		if err := kc.concurrency.Resync(context.Background(), []string{runs["p-1"].Namespace}); err != nil {
			t.Fatal(err)
		}
		for i, id := range []string{"p-1", "p-2", "p-3"} {
			want := pipelinev1.PipelineRunSpecStatus("")
			if i >= limit {
				want = pipelinev1.PipelineRunSpecStatusPending
			}
			if got := specStatus(t, client, runs[id]); got != want {
				t.Errorf("limit %d, %s: spec.status %q, want %q", limit, id, got, want)
			}
		}
	}
}

// Create stamps a grouped run with its dispatch time (the group's order),
// and leaves a run of no group as rendered.
func TestCreateStampsDispatchTimeOnGroupedRuns(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	kc := NewKubeCreatorForClient(client)
	grouped := mustRender(t, groupWork("billing", "deploy", "g-1", &routing.Concurrency{Group: "deploy", Limit: 2}))
	plain := mustRender(t, groupWork("billing", "deploy", "p-1", nil))
	for _, pr := range []*pipelinev1.PipelineRun{grouped, plain} {
		if err := kc.Create(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	get := func(pr *pipelinev1.PipelineRun) *pipelinev1.PipelineRun {
		got, err := client.TektonV1().PipelineRuns(pr.Namespace).Get(ctx, pr.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if _, err := time.Parse(time.RFC3339Nano, get(grouped).Annotations[AnnotationDispatchedAt]); err != nil {
		t.Errorf("grouped run: dispatched-at %q: %v", get(grouped).Annotations[AnnotationDispatchedAt], err)
	}
	if v, ok := get(plain).Annotations[AnnotationDispatchedAt]; ok {
		t.Errorf("run of no group: dispatched-at %q, want none", v)
	}
}

// A group without a limit (cancelInProgress only) has no limit annotation.
func TestRenderNoLimitAnnotationWithoutLimit(t *testing.T) {
	pr := mustRender(t, groupWork("billing", "deploy", "c-1", &routing.Concurrency{Group: "deploy", CancelInProgress: true}))
	if v, ok := pr.Annotations[AnnotationConcurrencyLimit]; ok {
		t.Errorf("limit annotation %q on a group with no limit", v)
	}
}

// The target's service account (the one routing checked against the
// grant) replaces the template's in a TaskRun.
func TestRenderTaskRunServiceAccount(t *testing.T) {
	w := taskRunWork(lintTaskRun)
	w.Target.ServiceAccount = "granted-sa"
	tr, err := RenderTaskRun(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Spec.ServiceAccountName != "granted-sa" {
		t.Errorf("serviceAccountName %q, want the target's granted-sa", tr.Spec.ServiceAccountName)
	}
}

// RenderAny renders each kind of work as its own kind.
func TestRenderAnyKinds(t *testing.T) {
	if obj, err := RenderAny(context.Background(), taskRunWork(lintTaskRun)); err != nil {
		t.Errorf("TaskRun work: %v", err)
	} else if _, ok := obj.(*pipelinev1.TaskRun); !ok {
		t.Errorf("TaskRun work rendered a %T", obj)
	}
	if obj, err := RenderAny(context.Background(), groupWork("billing", "deploy", "r-1", nil)); err != nil {
		t.Errorf("PipelineRun work: %v", err)
	} else if _, ok := obj.(*pipelinev1.PipelineRun); !ok {
		t.Errorf("PipelineRun work rendered a %T", obj)
	}
}

// A run cancelled after it started still runs until Tekton stops it, so it
// takes a slot; one cancelled before it started never runs, and does not.
func TestCancelledRunsAndTheLimit(t *testing.T) {
	for _, started := range []bool{true, false} {
		client := fake.NewSimpleClientset()
		kc := NewKubeCreatorForClient(client)
		c := &routing.Concurrency{Group: "deploy", Limit: 1}
		t0 := time.Now()
		cancelled := groupRuns(t, client, c, pipelinev1.PipelineRunSpecStatusCancelled, map[string]time.Time{"c-1": t0})["c-1"]
		if started {
			cancelled.Status.StartTime = &metav1.Time{Time: t0}
			if _, err := client.TektonV1().PipelineRuns(cancelled.Namespace).UpdateStatus(context.Background(), cancelled, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		pending := groupRuns(t, client, c, pipelinev1.PipelineRunSpecStatusPending, map[string]time.Time{"p-1": t0.Add(time.Second)})["p-1"]
		if err := kc.concurrency.Resync(context.Background(), []string{pending.Namespace}); err != nil {
			t.Fatal(err)
		}
		want := pipelinev1.PipelineRunSpecStatus("")
		if started {
			want = pipelinev1.PipelineRunSpecStatusPending
		}
		if got := specStatus(t, client, pending); got != want {
			t.Errorf("cancelled run started=%v: pending run's spec.status %q, want %q", started, got, want)
		}
	}
}

// Runs take their group's order from when their events were accepted, not
// from when dispatch created them: work is dispatched in parallel, and a
// burst's webhooks are judged two at a time. The older event's run,
// created last, is the one cancelled; with a limit, pending runs start in
// the order their events came.
func TestGroupOrderIsAcceptanceNotDispatch(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now().Add(-time.Minute)
	work := func(id string, at time.Time, c *routing.Concurrency) queue.Work {
		w := groupWork("billing", "deploy", id, c)
		w.Accepted = at
		return w
	}

	client := fake.NewSimpleClientset()
	d := New(NewKubeCreatorForClient(client), nil)
	cancel := &routing.Concurrency{Group: "deploy", CancelInProgress: true}
	older, newer := work("older", t0, cancel), work("newer", t0.Add(time.Millisecond), cancel)
	for _, w := range []queue.Work{newer, older} { // the newer event's work dispatched first
		if err := d.Handle(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if got := specStatus(t, client, mustRender(t, older)); got != pipelinev1.PipelineRunSpecStatusCancelled {
		t.Errorf("the older event's run, created last: spec.status %q, want cancelled", got)
	}
	if got := specStatus(t, client, mustRender(t, newer)); got != "" {
		t.Errorf("the newer event's run: spec.status %q, want running", got)
	}
	pr, err := client.TektonV1().PipelineRuns(mustRender(t, newer).Namespace).Get(ctx, mustRender(t, newer).Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := pr.Annotations[AnnotationAcceptedAt]; a != newer.Accepted.UTC().Format(time.RFC3339Nano) {
		t.Errorf("accepted-at %q, want the event's acceptance %s", a, newer.Accepted.UTC().Format(time.RFC3339Nano))
	}

	client = fake.NewSimpleClientset()
	d = New(NewKubeCreatorForClient(client), nil)
	one := &routing.Concurrency{Group: "deploy", Limit: 1}
	first, second, third := work("first", t0, one), work("second", t0.Add(time.Millisecond), one), work("third", t0.Add(2*time.Millisecond), one)
	for _, w := range []queue.Work{third, second, first} {
		if err := d.Handle(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	// third was created alone and started; the others wait behind it. When
	// it is done, the oldest event's run starts next.
	running := mustRender(t, third)
	done, err := client.TektonV1().PipelineRuns(running.Namespace).Get(ctx, running.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue})
	if _, err := client.TektonV1().PipelineRuns(done.Namespace).UpdateStatus(ctx, done, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.creator.(*KubeCreator).concurrency.Resync(ctx, []string{done.Namespace}); err != nil {
		t.Fatal(err)
	}
	if s1, s2 := specStatus(t, client, mustRender(t, first)), specStatus(t, client, mustRender(t, second)); s1 != "" || s2 != pipelinev1.PipelineRunSpecStatusPending {
		t.Errorf("limit 1 after the running one finished: first %q, second %q; want the oldest event's run started, the next pending", s1, s2)
	}
}
