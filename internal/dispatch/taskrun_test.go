package dispatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// taskRunWork is the work of the second run a template rendered: a TaskRun.
func taskRunWork(resource string) queue.Work {
	return testWork(func(w *queue.Work) {
		w.Target.Kind = routing.KindTaskRun
		w.Target.Index = 1
		w.Target.Name = routing.RunName("shop", "build", "github-acme", testDeliveryID, 1)
		w.Target.Params, w.Target.Timeout, w.Target.PipelineRef = nil, "", "lint"
		w.Target.Resource = []byte(resource)
	})
}

const lintTaskRun = `{"apiVersion":"tekton.dev/v1","kind":"TaskRun","metadata":{"name":"x","labels":{"team":"shop"}},
"spec":{"serviceAccountName":"shop-builder","taskRef":{"name":"lint"},"params":[{"name":"rev","value":"abc"}]}}`

// TestRenderTaskRun: a TaskRun target renders a tekton.dev/v1 TaskRun with
// Switchyard's name, namespace, labels and annotations, checked by Tekton's
// validation; a PipelineRun render refuses it.
func TestRenderTaskRun(t *testing.T) {
	w := taskRunWork(lintTaskRun)
	tr, err := RenderTaskRun(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if tr.APIVersion != "tekton.dev/v1" || tr.Kind != "TaskRun" || tr.Name != w.Target.Name || tr.Namespace != "shop-ci" {
		t.Errorf("TaskRun = %s %s %s/%s", tr.APIVersion, tr.Kind, tr.Namespace, tr.Name)
	}
	if tr.Labels[LabelApp] != "shop" || tr.Labels[LabelManagedBy] != ManagedBy || tr.Labels["team"] != "shop" || tr.Annotations[AnnotationEventID] != testDeliveryID {
		t.Errorf("metadata = %v %v", tr.Labels, tr.Annotations)
	}
	if tr.Labels[LabelTektonTrigger] != "build" || tr.Labels[LabelTektonEventListener] != "github-acme" || tr.Labels[LabelTektonEventID] != testDeliveryID {
		t.Errorf("Tekton Triggers' labels missing: %v", tr.Labels)
	}
	if tr.Spec.ServiceAccountName != "shop-builder" || tr.Spec.TaskRef.Name != "lint" {
		t.Errorf("spec = %+v", tr.Spec)
	}
	if _, err := Render(context.Background(), w); err == nil || !queue.IsPermanent(err) {
		t.Errorf("Render(TaskRun work) = %v, want a permanent refusal", err)
	}
	for name, res := range map[string]string{
		"no task":          `{"apiVersion":"tekton.dev/v1","kind":"TaskRun","spec":{}}`,
		"a PipelineRun":    `{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","spec":{"pipelineRef":{"name":"a"}}}`,
		"reserved label":   `{"apiVersion":"tekton.dev/v1","kind":"TaskRun","metadata":{"labels":{"switchyard.dev/app":"bank"}},"spec":{"taskRef":{"name":"a"}}}`,
		"unknown field":    `{"apiVersion":"tekton.dev/v1","kind":"TaskRun","spec":{"taskRef":{"name":"a"},"surprise":1}}`,
		"tekton rejects":   `{"apiVersion":"tekton.dev/v1","kind":"TaskRun","spec":{"taskRef":{"name":"a"},"params":[{"name":"a","value":"1"},{"name":"a","value":"2"}]}}`,
		"not a run at all": `{"apiVersion":"v1","kind":"Pod"}`,
	} {
		if _, err := RenderTaskRun(context.Background(), taskRunWork(res)); err == nil || !queue.IsPermanent(err) {
			t.Errorf("%s: RenderTaskRun = %v, want a permanent error", name, err)
		}
	}
	c := taskRunWork(lintTaskRun)
	c.Target.Concurrency = &routing.Concurrency{Group: "g", CancelInProgress: true}
	if _, err := RenderTaskRun(context.Background(), c); err == nil {
		t.Error("RenderTaskRun accepted a TaskRun in a concurrency group")
	}
}

// TestDispatcherTaskRun: the dispatcher creates a TaskRun target as a
// TaskRun, once: a redelivery finds it and creates nothing.
func TestDispatcherTaskRun(t *testing.T) {
	client := fake.NewSimpleClientset()
	d := New(NewKubeCreatorForClient(client), nil)
	w := taskRunWork(lintTaskRun)
	for range 2 {
		if err := d.Handle(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	trs, err := client.TektonV1().TaskRuns("shop-ci").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(trs.Items) != 1 || trs.Items[0].Name != w.Target.Name {
		t.Fatalf("TaskRuns = %v (err %v), want exactly %s", trs, err, w.Target.Name)
	}
	if prs, _ := client.TektonV1().PipelineRuns("shop-ci").List(context.Background(), metav1.ListOptions{}); len(prs.Items) != 0 {
		t.Errorf("a TaskRun target created PipelineRuns: %v", prs.Items)
	}
	if s := d.Stats(); s.Created != 1 || s.Existed != 1 {
		t.Errorf("Stats = %+v, want 1 created, 1 existed", s)
	}

	// A creator that cannot create TaskRuns dead-letters the work.
	only := New(creatorFunc(func(context.Context, *pipelinev1.PipelineRun) error { return nil }), nil)
	if err := only.Handle(context.Background(), w); !queue.IsPermanent(err) {
		t.Errorf("Handle without a TaskRunCreator = %v, want permanent", err)
	}
}

func TestDirCreatorTaskRun(t *testing.T) {
	dir := t.TempDir()
	d := New(DirCreator{Dir: dir}, nil)
	w := taskRunWork(lintTaskRun)
	if err := d.Handle(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "shop-ci", w.Target.Name+".yaml"))
	if err != nil || !strings.Contains(string(b), "kind: TaskRun") {
		t.Fatalf("file = %s (err %v), want a TaskRun", b, err)
	}
	tr, _ := RenderTaskRun(context.Background(), w)
	if err := (DirCreator{Dir: dir}).CreateTaskRun(context.Background(), tr); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("second write = %v, want ErrAlreadyExists", err)
	}
}
