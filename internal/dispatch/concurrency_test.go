package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// groupWork is a unit of work of app and trigger for event id, in the
// concurrency group c (nil: none).
func groupWork(app, trigger, id string, c *routing.Concurrency) queue.Work {
	return testWork(func(w *queue.Work) {
		w.Event.SetID(id)
		w.Target.App = app
		w.Target.Trigger = trigger
		w.Target.Name = routing.PipelineRunName(app, trigger, w.Source, id)
		w.Target.Concurrency = c
	})
}

// specStatus returns the spec.status of the named run.
func specStatus(t *testing.T, client *fake.Clientset, pr *pipelinev1.PipelineRun) pipelinev1.PipelineRunSpecStatus {
	t.Helper()
	got, err := client.TektonV1().PipelineRuns(pr.Namespace).Get(context.Background(), pr.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Spec.Status
}

// TestConcurrencyCancelStaysInApp (issue 11): a run of app A carrying app
// B's group label and cancel-in-progress, as an old render let a template
// set them, cancels nothing of B's; B's own next run does.
func TestConcurrencyCancelStaysInApp(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	kc := NewKubeCreatorForClient(client)
	deploy := &routing.Concurrency{Group: "deploy", CancelInProgress: true}

	b1 := mustRender(t, groupWork("billing", "deploy", "b-1", deploy))
	if err := kc.Create(ctx, b1); err != nil {
		t.Fatal(err)
	}
	forged := mustRender(t, groupWork("shop", "build", "a-1", nil))
	forged.Labels[LabelConcurrencyGroup] = b1.Labels[LabelConcurrencyGroup]
	forged.Annotations[AnnotationCancelInProgress] = "true"
	if err := kc.Create(ctx, forged); err != nil {
		t.Fatal(err)
	}
	if got := specStatus(t, client, b1); got != "" {
		t.Fatalf("app shop's run set billing's run to %q", got)
	}

	// A run not made by Switchyard is no member of any group either.
	foreign := b1.DeepCopy()
	foreign.Name = "by-hand"
	delete(foreign.Labels, LabelManagedBy)
	if _, err := client.TektonV1().PipelineRuns(foreign.Namespace).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	b2 := mustRender(t, groupWork("billing", "deploy", "b-2", deploy))
	if err := kc.Create(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if got := specStatus(t, client, b1); got != pipelinev1.PipelineRunSpecStatusCancelled {
		t.Errorf("billing's newer run left its older one %q, want cancelled", got)
	}
	for _, pr := range []*pipelinev1.PipelineRun{forged, foreign, b2} {
		if got := specStatus(t, client, pr); got != "" {
			t.Errorf("%s: spec.status %q, want untouched", pr.Name, got)
		}
	}
}

// TestConcurrencyLimitStaysInApp (issue 11): a run of app A in app B's
// group with a higher limit does not start B's pending runs, neither on
// create nor on resync.
func TestConcurrencyLimitStaysInApp(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	kc := NewKubeCreatorForClient(client)
	one := &routing.Concurrency{Group: "deploy", Limit: 1}

	b1 := mustRender(t, groupWork("billing", "deploy", "b-1", one))
	b2 := mustRender(t, groupWork("billing", "deploy", "b-2", one))
	for _, pr := range []*pipelinev1.PipelineRun{b1, b2} {
		if err := kc.Create(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	if s1, s2 := specStatus(t, client, b1), specStatus(t, client, b2); s1 != "" || s2 != pipelinev1.PipelineRunSpecStatusPending {
		t.Fatalf("limit 1: spec.status %q, %q; want the first started, the second pending", s1, s2)
	}

	forge := func(id string) *pipelinev1.PipelineRun {
		pr := mustRender(t, groupWork("shop", "build", id, &routing.Concurrency{Group: "mine", Limit: 5}))
		pr.Labels[LabelConcurrencyGroup] = b1.Labels[LabelConcurrencyGroup]
		return pr
	}
	if err := kc.Create(ctx, forge("a-1")); err != nil {
		t.Fatal(err)
	}
	if got := specStatus(t, client, b2); got != pipelinev1.PipelineRunSpecStatusPending {
		t.Fatalf("app shop's run started billing's pending run (spec.status %q)", got)
	}

	// Made without AfterCreate, so only Resync sees it.
	a2 := forge("a-2")
	a2.Annotations[AnnotationDispatchedAt] = "2100-01-01T00:00:00Z"
	if _, err := client.TektonV1().PipelineRuns(a2.Namespace).Create(ctx, a2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kc.concurrency.Resync(ctx, []string{b1.Namespace}); err != nil {
		t.Fatal(err)
	}
	if got := specStatus(t, client, b2); got != pipelinev1.PipelineRunSpecStatusPending {
		t.Errorf("resync started billing's pending run (spec.status %q) under shop's limit", got)
	}
	if got := specStatus(t, client, a2); got != "" {
		t.Errorf("resync left shop's own pending run %q, want started under its limit", got)
	}
}

// TestDispatcherTemplateCannotJoinAnotherAppsGroup (issue 11): app A's
// template sets app B's group label and cancel-in-progress; the work is
// dead-lettered, nothing is created and B's run keeps running.
func TestDispatcherTemplateCannotJoinAnotherAppsGroup(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	d := New(NewKubeCreatorForClient(client), nil)

	bw := groupWork("billing", "deploy", "b-1", &routing.Concurrency{Group: "deploy", CancelInProgress: true})
	if err := d.Handle(ctx, bw); err != nil {
		t.Fatal(err)
	}
	resource, err := json.Marshal(map[string]any{
		"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
		"metadata": map[string]any{
			"labels":      map[string]string{LabelConcurrencyGroup: GroupLabelValue("billing", "deploy")},
			"annotations": map[string]string{AnnotationCancelInProgress: "true"},
		},
		"spec": map[string]any{"pipelineRef": map[string]string{"name": "build"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	aw := groupWork("shop", "build", "a-1", nil)
	aw.Target.PipelineRef, aw.Target.Params, aw.Target.Timeout = "", nil, ""
	aw.Target.Resource = resource

	err = d.Handle(ctx, aw)
	if !queue.IsPermanent(err) || !errors.Is(err, ErrReservedKey) {
		t.Fatalf("Handle = %v, want a permanent ErrReservedKey", err)
	}
	list, err := client.TektonV1().PipelineRuns(bw.Target.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != bw.Target.Name || list.Items[0].Spec.Status != "" {
		t.Errorf("after shop's work: %d runs, want billing's alone and running: %+v", len(list.Items), list.Items)
	}
}
