package report

import (
	"reflect"
	"testing"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// TestSlimRunKeepsWhatTheWatcherReads: the informers cache runs through
// slimRun; what the watcher observes of a slim run must be what it
// observes of the whole one, and the bulk must be gone.
func TestSlimRunKeepsWhatTheWatcherReads(t *testing.T) {
	pr := testRun(corev1.ConditionTrue, "Succeeded", true)
	pr.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "switchyard", Operation: metav1.ManagedFieldsOperationUpdate}}
	pr.OwnerReferences = []metav1.OwnerReference{{Kind: "Thing", Name: "owner"}}
	pr.Spec.PipelineRef = &pipelinev1.PipelineRef{Name: "build-and-test"}
	pr.Spec.Params = pipelinev1.Params{{Name: "repo-url", Value: *pipelinev1.NewStructuredValues("https://github.com/acme/shop")}}
	pr.Status.CompletionTime = &metav1.Time{Time: time.Unix(2, 0)}
	pr.Status.ChildReferences = []pipelinev1.ChildStatusReference{{Name: "web-build-1-unit", PipelineTaskName: "unit"}}
	pr.Status.PipelineSpec = &pipelinev1.PipelineSpec{Description: "the resolved pipeline, copied into every run's status"}

	got, err := slimRun(pr)
	if err != nil {
		t.Fatal(err)
	}
	slim := got.(*pipelinev1.PipelineRun)
	if !reflect.DeepEqual(observePipelineRun(slim), observePipelineRun(withoutManagedFields(pr))) {
		t.Errorf("observed differently:\n%+v\n%+v", observePipelineRun(slim), observePipelineRun(pr))
	}
	if slim.ManagedFields != nil || slim.Spec.Params != nil || slim.Status.PipelineSpec != nil {
		t.Errorf("bulk kept: %+v", slim)
	}
	if !reflect.DeepEqual(slim.OwnerReferences, pr.OwnerReferences) || !slim.Status.CompletionTime.Equal(pr.Status.CompletionTime) {
		t.Error("owner or completion time dropped")
	}
	if pr.ManagedFields == nil || pr.Status.PipelineSpec == nil {
		t.Error("slimRun changed the object it was given")
	}

	tr := testTaskRun(corev1.ConditionFalse, "Failed")
	tr.ManagedFields = pr.ManagedFields
	tr.Status.TaskSpec = &pipelinev1.TaskSpec{Description: "resolved"}
	got, err = slimRun(tr)
	if err != nil {
		t.Fatal(err)
	}
	slimTR := got.(*pipelinev1.TaskRun)
	want := *tr
	want.ManagedFields = nil
	if !reflect.DeepEqual(observeTaskRun(slimTR), observeTaskRun(&want)) || slimTR.Status.TaskSpec != nil || slimTR.ManagedFields != nil {
		t.Errorf("task run slimmed to %+v", slimTR)
	}

	tomb := cache.DeletedFinalStateUnknown{Key: "ci/x", Obj: pr}
	if got, _ := slimRun(tomb); !reflect.DeepEqual(got, tomb) {
		t.Error("a tombstone was changed")
	}
}

func withoutManagedFields(pr *pipelinev1.PipelineRun) *pipelinev1.PipelineRun {
	c := pr.DeepCopy()
	c.ManagedFields = nil
	return c
}
