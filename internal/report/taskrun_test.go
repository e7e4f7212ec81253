package report

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	cdevents "github.com/cdevents/sdk-go/pkg/api"
	cdeventsv05 "github.com/cdevents/sdk-go/pkg/api/v05"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
)

// testTaskRun is a TaskRun dispatch created for a template, as testRun is
// a PipelineRun.
func testTaskRun(status corev1.ConditionStatus, reason string) *pipelinev1.TaskRun {
	pr := testRun(status, reason, status != "")
	return &pipelinev1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "web-build-t", Namespace: "ci", UID: "t1",
		Labels: pr.Labels, Annotations: pr.Annotations},
		Spec:   pipelinev1.TaskRunSpec{TaskRef: &pipelinev1.TaskRef{Name: "unit"}},
		Status: pipelinev1.TaskRunStatus{Status: duckv1.Status{Conditions: pr.Status.Conditions}}}
}

func TestJobsForTaskRun(t *testing.T) {
	tests := []struct {
		name        string
		tr          *pipelinev1.TaskRun
		state, desc string
		phases      []string
	}{
		{"created", testTaskRun("", ""), StatePending, "TaskRun web-build-t created", nil},
		{"running", testTaskRun(corev1.ConditionUnknown, "Running"), StatePending, "TaskRun web-build-t created", []string{PhaseStarted}},
		{"succeeded", testTaskRun(corev1.ConditionTrue, "Succeeded"), StateSuccess, "TaskRun web-build-t succeeded", []string{PhaseStarted, PhaseFinished}},
		{"failed", testTaskRun(corev1.ConditionFalse, "Failed"), StateFailure, "TaskRun web-build-t failed", []string{PhaseStarted, PhaseFinished}},
		{"cancelled", testTaskRun(corev1.ConditionFalse, "TaskRunCancelled"), StateError, "TaskRun web-build-t cancelled", []string{PhaseStarted, PhaseFinished}},
		{"timed out", testTaskRun(corev1.ConditionFalse, "TaskRunTimeout"), StateFailure, "TaskRun web-build-t timed out", []string{PhaseStarted, PhaseFinished}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var phases []string
			var status []Job
			for _, j := range jobsFor(observeTaskRun(tc.tr), false, true, true, time.Unix(2, 0)) {
				if j.Run.Kind != RunKindTaskRun || j.Run.Task != "unit" || j.Run.Context() != "switchyard/web/build" {
					t.Errorf("run %+v", j.Run)
				}
				if j.Kind == KindStatus {
					status = append(status, j)
				} else {
					phases = append(phases, j.State)
				}
			}
			if len(status) != 1 || status[0].State != tc.state || status[0].Description != tc.desc {
				t.Errorf("status jobs %+v, want %s %q", status, tc.state, tc.desc)
			}
			if !slices.Equal(phases, tc.phases) {
				t.Errorf("cdevents %v, want %v (CDEvents has no taskrun.queued)", phases, tc.phases)
			}
		})
	}
}

// TestWatcherReportsTaskRuns: a TaskRun a template rendered is reported
// like a PipelineRun; a PipelineRun's own TaskRun (Tekton copies the
// PipelineRun's labels onto it) is not, its PipelineRun is.
func TestWatcherReportsTaskRuns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := testTaskRun("", "")
	child := testTaskRun("", "")
	child.Name, child.UID = "web-build-1-unit", "child"
	child.Labels = map[string]string{dispatch.LabelManagedBy: dispatch.ManagedBy, dispatch.LabelApp: "web",
		dispatch.LabelTrigger: "build", labelPipelineRun: "web-build-1"}
	owned := testTaskRun("", "")
	owned.Name, owned.UID = "web-build-1-lint", "owned"
	yes := true
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "tekton.dev/v1", Kind: "PipelineRun", Name: "web-build-1", UID: "u1", Controller: &yes}}
	client := fake.NewSimpleClientset(tr, child, owned)
	pub := &flakyPublisher{}
	w := NewWatcher(WatcherConfig{Client: client, Publisher: pub, Namespaces: func() []string { return []string{"ci"} },
		Status: func(string) bool { return true }, CDEvents: true, Resync: time.Hour})
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	pub.waitFor(t, "t1/status/pending")
	cur, err := client.TektonV1().TaskRuns("ci").Get(ctx, tr.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Status.Conditions = duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"}}
	if _, err := client.TektonV1().TaskRuns("ci").UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pub.waitFor(t, "t1/status/pending", "t1/status/success", "t1/cdevent/started", "t1/cdevent/finished")
	// Seen by the watcher too: the child's own updates publish nothing.
	w.observe(child, false)
	w.observe(owned, false)
	w.mu.Lock()
	n := len(w.pending)
	w.mu.Unlock()
	if n != 0 {
		t.Errorf("%d jobs queued for a PipelineRun's TaskRuns", n)
	}
	cancel()
	<-done
}

// TestTaskRunCDEventsAreValid: a TaskRun's started and finished CDEvents
// pass the SDK's validation, name the task, and go to taskrun.<phase>.
func TestTaskRunCDEventsAreValid(t *testing.T) {
	c := &CDEvents{}
	run := testJob(StatePending).Run
	run.Kind, run.Task = RunKindTaskRun, "unit"
	for _, tc := range []struct{ phase, outcome, wantType string }{
		{PhaseStarted, "", "dev.cdevents.taskrun.started.0.3.0"},
		{PhaseFinished, StateFailure, "dev.cdevents.taskrun.finished.0.3.0"},
	} {
		j := Job{Kind: KindCDEvent, State: tc.phase, Outcome: tc.outcome, Description: "failed", Time: time.Unix(10, 0).UTC(), Run: run}
		ce, err := c.Event(j)
		if err != nil {
			t.Fatalf("%s: %v", tc.phase, err)
		}
		if ce.Type() != tc.wantType || c.subject(subjectOf(j)) != DefaultCDEventsSubject+"taskrun."+tc.phase {
			t.Errorf("%s: type %s subject %s", tc.phase, ce.Type(), c.subject(subjectOf(j)))
		}
		parsed, err := cdeventsv05.NewFromJsonBytes(ce.Data())
		if err != nil {
			t.Fatalf("%s: parse: %v", tc.phase, err)
		}
		if err := cdevents.Validate(parsed); err != nil {
			t.Errorf("%s: invalid cdevent: %v", tc.phase, err)
		}
		var data struct {
			Subject struct {
				Content struct{ TaskName, Outcome string }
			}
		}
		_ = json.Unmarshal(ce.Data(), &data)
		if data.Subject.Content.TaskName != "unit" {
			t.Errorf("%s: subject %+v", tc.phase, data.Subject)
		}
	}
	if _, err := c.Event(Job{Kind: KindCDEvent, State: PhaseQueued, Run: run}); err == nil {
		t.Error("a taskrun.queued CDEvent, which CDEvents does not define")
	}
}
