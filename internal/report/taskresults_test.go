package report

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// jobRecorder records the jobs published.
type jobRecorder struct {
	mu   sync.Mutex
	jobs []Job
}

func (r *jobRecorder) Publish(_ context.Context, j Job) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, j)
	return nil
}

func (r *jobRecorder) final(t *testing.T) Job {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		for _, j := range r.jobs {
			if j.Kind == KindStatus && j.State != StatePending {
				r.mu.Unlock()
				return j
			}
		}
		r.mu.Unlock()
	}
	t.Fatal("no final status published")
	return Job{}
}

// childTaskRun is a TaskRun Tekton made for the PipelineRun web-build-1.
func childTaskRun(name string, status corev1.ConditionStatus, reason string, took time.Duration) *pipelinev1.TaskRun {
	start := metav1.NewTime(time.Unix(1000, 0))
	end := metav1.NewTime(start.Add(took))
	tr := &pipelinev1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ci", UID: types.UID("t-" + name),
		Labels: map[string]string{labelPipelineRun: "web-build-1"}}}
	tr.Status.StartTime, tr.Status.CompletionTime = &start, &end
	tr.Status.Conditions = duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: status, Reason: reason}}
	return tr
}

// TestFinishedRunListsTaskResults: the final report of a PipelineRun lists
// each task's own result and duration, read from its TaskRuns with one
// list (the router may list TaskRuns, not get them); a task whose TaskRun
// is gone is listed without a result.
func TestFinishedRunListsTaskResults(t *testing.T) {
	pr := testRun(corev1.ConditionFalse, "Failed", true)
	pr.Status.ChildReferences = []pipelinev1.ChildStatusReference{
		{TypeMeta: runtimeTypeMeta("TaskRun"), Name: "web-build-1-test", PipelineTaskName: "test"},
		{TypeMeta: runtimeTypeMeta("TaskRun"), Name: "web-build-1-lint", PipelineTaskName: "lint"},
		{TypeMeta: runtimeTypeMeta("TaskRun"), Name: "web-build-1-gone", PipelineTaskName: "gone"},
	}
	client := fake.NewSimpleClientset(pr,
		childTaskRun("web-build-1-test", corev1.ConditionFalse, "Failed", 83*time.Second),
		childTaskRun("web-build-1-lint", corev1.ConditionTrue, "Succeeded", 2400*time.Millisecond))
	rec := &jobRecorder{}
	w := NewWatcher(WatcherConfig{Client: client, Publisher: rec, Namespaces: func() []string { return []string{"ci"} },
		Status: func(string) bool { return true }, Resync: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	j := rec.final(t)
	want := []Task{
		{PipelineTask: "test", Kind: "TaskRun", Name: "web-build-1-test", Result: "failed", Duration: "1m23s"},
		{PipelineTask: "lint", Kind: "TaskRun", Name: "web-build-1-lint", Result: "succeeded", Duration: "2s"},
		{PipelineTask: "gone", Kind: "TaskRun", Name: "web-build-1-gone"},
	}
	if len(j.Tasks) != len(want) {
		t.Fatalf("tasks %+v, want %+v", j.Tasks, want)
	}
	for i := range want {
		if j.Tasks[i] != want[i] {
			t.Errorf("task %d = %+v, want %+v", i, j.Tasks[i], want[i])
		}
	}
	if s := checkSummary(j); !strings.Contains(s, "| test | TaskRun | `web-build-1-test` | failed | 1m23s |") {
		t.Errorf("check summary lacks the test task's result:\n%s", s)
	}
}

func runtimeTypeMeta(kind string) runtime.TypeMeta {
	return runtime.TypeMeta{APIVersion: "tekton.dev/v1", Kind: kind}
}
