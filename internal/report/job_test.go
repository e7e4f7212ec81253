package report

import (
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
)

func testRun(status corev1.ConditionStatus, reason string, started bool) *pipelinev1.PipelineRun {
	pr := &pipelinev1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "web-build-1", Namespace: "ci", UID: "u1",
		Labels: map[string]string{dispatch.LabelApp: "web", dispatch.LabelTrigger: "build", dispatch.LabelManagedBy: dispatch.ManagedBy},
		Annotations: map[string]string{dispatch.AnnotationRevision: "abc", dispatch.AnnotationRepository: "acme/shop",
			dispatch.AnnotationRouterSource: "github", dispatch.AnnotationEventID: "d-1"}}}
	if started {
		pr.Status.StartTime = &metav1.Time{Time: time.Unix(1, 0)}
	}
	if status != "" {
		pr.Status.Conditions = duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: status, Reason: reason}}
	}
	return pr
}

func TestJobsFor(t *testing.T) {
	type want struct {
		state, desc string
		cancelled   bool
		phases      []string
	}
	tests := []struct {
		name    string
		pr      *pipelinev1.PipelineRun
		deleted bool
		want    want
	}{
		{"created", testRun("", "", false), false, want{StatePending, "PipelineRun web-build-1 created", false, []string{PhaseQueued}}},
		{"running", testRun(corev1.ConditionUnknown, "Running", false), false, want{StatePending, "PipelineRun web-build-1 created", false, []string{PhaseQueued, PhaseStarted}}},
		{"started", testRun("", "", true), false, want{StatePending, "PipelineRun web-build-1 created", false, []string{PhaseQueued, PhaseStarted}}},
		{"succeeded", testRun(corev1.ConditionTrue, "Succeeded", true), false, want{StateSuccess, "PipelineRun web-build-1 succeeded", false, []string{PhaseQueued, PhaseStarted, PhaseFinished}}},
		{"failed", testRun(corev1.ConditionFalse, "Failed", true), false, want{StateFailure, "PipelineRun web-build-1 failed", false, []string{PhaseQueued, PhaseStarted, PhaseFinished}}},
		{"failed other reason", testRun(corev1.ConditionFalse, "CouldntGetPipeline", false), false, want{StateFailure, "PipelineRun web-build-1 failed: CouldntGetPipeline", false, []string{PhaseQueued, PhaseStarted, PhaseFinished}}},
		{"cancelled", testRun(corev1.ConditionFalse, "Cancelled", true), false, want{StateError, "PipelineRun web-build-1 cancelled", true, []string{PhaseQueued, PhaseStarted, PhaseFinished}}},
		{"cancelled (old reason)", testRun(corev1.ConditionFalse, "PipelineRunCancelled", true), false, want{StateError, "PipelineRun web-build-1 cancelled", true, []string{PhaseQueued, PhaseStarted, PhaseFinished}}},
		{"stopped running finally", testRun(corev1.ConditionFalse, "StoppedRunFinally", true), false, want{StateError, "PipelineRun web-build-1 cancelled", true, []string{PhaseQueued, PhaseStarted, PhaseFinished}}},
		{"timed out", testRun(corev1.ConditionFalse, "PipelineRunTimeout", true), false, want{StateFailure, "PipelineRun web-build-1 timed out", false, []string{PhaseQueued, PhaseStarted, PhaseFinished}}},
		{"deleted unfinished", testRun(corev1.ConditionUnknown, "Running", true), true, want{StateError, "PipelineRun web-build-1 deleted before it finished", false, []string{PhaseQueued, PhaseStarted, PhaseFinished}}},
		{"deleted finished", testRun(corev1.ConditionTrue, "Succeeded", true), true, want{StateSuccess, "PipelineRun web-build-1 succeeded", false, []string{PhaseQueued, PhaseStarted, PhaseFinished}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jobs := jobsFor(observePipelineRun(tc.pr), tc.deleted, true, true, time.Unix(2, 0))
			var phases []string
			var status []Job
			for _, j := range jobs {
				if j.Kind == KindStatus {
					status = append(status, j)
				} else {
					phases = append(phases, j.State)
				}
			}
			if len(status) != 1 || status[0].State != tc.want.state || status[0].Description != tc.want.desc || status[0].Cancelled != tc.want.cancelled {
				t.Errorf("status jobs %+v, want one %s %q cancelled=%v", status, tc.want.state, tc.want.desc, tc.want.cancelled)
			}
			if !slices.Equal(phases, tc.want.phases) {
				t.Errorf("cdevents %v, want %v", phases, tc.want.phases)
			}
			if got := status[0].Run.Context(); got != "switchyard/web/build" {
				t.Errorf("context %q", got)
			}
		})
	}
}

// TestJobsForNeedsRevision: an event without a revision gets no status.
func TestJobsForNeedsRevision(t *testing.T) {
	pr := testRun("", "", false)
	delete(pr.Annotations, dispatch.AnnotationRevision)
	if jobs := jobsFor(observePipelineRun(pr), false, true, false, time.Now()); len(jobs) != 0 {
		t.Errorf("jobs %+v", jobs)
	}
}

func TestTrimDescription(t *testing.T) {
	long := ""
	for range 50 {
		long += "é x "
	}
	got := trimDescription(long)
	if len(got) > maxDescription || !utf8.ValidString(got) {
		t.Errorf("len %d, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
}
