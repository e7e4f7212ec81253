package report

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

func succeeded(status corev1.ConditionStatus, reason, message string) duckv1.Status {
	return duckv1.Status{Conditions: duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: status, Reason: reason, Message: message}}}
}

func prWith(name string, st duckv1.Status, started bool) *pipelinev1.PipelineRun {
	pr := &pipelinev1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ci"}}
	pr.Status.Status = st
	if started {
		now := metav1.NewTime(time.Now())
		pr.Status.StartTime = &now
	}
	return pr
}

// Each created target gets its run's state; targets in other states, and
// runs that cannot be read, keep the queue's.
func TestRunStatesFill(t *testing.T) {
	tr := &pipelinev1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "tr-done", Namespace: "ci"}}
	tr.Status.Status = succeeded(corev1.ConditionTrue, "Succeeded", "All Steps have completed executing")
	other := &pipelinev1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "tr-other", Namespace: "ci"}}
	other.Status.Status = succeeded(corev1.ConditionFalse, "Failed", "")
	client := fake.NewSimpleClientset(
		prWith("pending", duckv1.Status{}, false),
		prWith("pending-cond", succeeded(corev1.ConditionUnknown, "Pending", ""), false),
		prWith("started", duckv1.Status{}, true),
		prWith("running", succeeded(corev1.ConditionUnknown, "Running", ""), false),
		prWith("ok", succeeded(corev1.ConditionTrue, "Succeeded", "Tasks Completed: 2"), true),
		prWith("bad", succeeded(corev1.ConditionFalse, "Failed", "Tasks Completed: 2 (Failed: 1)"), true),
		prWith("stopped", succeeded(corev1.ConditionFalse, "Cancelled", "cancelled by /cancel"), true),
		prWith("slow", succeeded(corev1.ConditionFalse, "PipelineRunTimeout", ""), true),
		tr, other,
	)
	client.PrependReactor("get", "pipelineruns", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() == "forbidden" {
			return true, nil, errors.New("pipelineruns is forbidden")
		}
		return false, nil, nil
	})
	target := func(name, state string) policy.TargetStatus {
		return policy.TargetStatus{App: "web", Trigger: name, Namespace: "ci", Name: name, State: state, Reason: "was"}
	}
	st := policy.EventStatus{Targets: []policy.TargetStatus{
		target("pending", policy.StateCreated),
		target("pending-cond", policy.StateCreated),
		target("started", policy.StateCreated),
		target("running", policy.StateCreated),
		target("ok", policy.StateCreated),
		target("bad", policy.StateCreated),
		target("stopped", policy.StateCreated),
		target("slow", policy.StateCreated),
		target("tr-done", policy.StateCreated),
		target("gone", policy.StateCreated),
		target("forbidden", policy.StateCreated),
		target("ok", policy.StateQueued),
		target("bad", policy.StateDeadLettered),
	}}
	NewRunStates(client).Fill(context.Background(), &st)
	want := []struct{ state, reason string }{
		{"created", ""},
		{"created", "Pending"},
		{"running", ""},
		{"running", ""},
		{"succeeded", "Tasks Completed: 2"},
		{"run-failed", "Failed: Tasks Completed: 2 (Failed: 1)"},
		{"run-failed", "cancelled: cancelled by /cancel"},
		{"run-failed", "timed out"},
		{"succeeded", "All Steps have completed executing"},
		{"created", "the run no longer exists (deleted or pruned)"},
		{"created", "was"},
		{"queued", "was"},
		{"dead-lettered", "was"},
	}
	for i, w := range want {
		if got := st.Targets[i]; got.State != w.state || got.Reason != w.reason {
			t.Errorf("target %d (%s, queue said %s): state %q reason %q, want %q %q", i, got.Name, got.State, got.State, got.Reason, w.state, w.reason)
		}
	}
}

// One status request reads at most maxRunStates runs: the rest keep the
// queue's state.
func TestRunStatesFillReadsAtMostSoMany(t *testing.T) {
	client := fake.NewSimpleClientset()
	client.PrependReactor("get", "pipelineruns", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, prWith("x", succeeded(corev1.ConditionTrue, "Succeeded", ""), true), nil
	})
	st := policy.EventStatus{}
	for range maxRunStates + 10 {
		st.Targets = append(st.Targets, policy.TargetStatus{Namespace: "ci", Name: "x", State: policy.StateCreated})
	}
	NewRunStates(client).Fill(context.Background(), &st)
	filled := 0
	for _, tg := range st.Targets {
		if tg.State == policy.StateSucceeded {
			filled++
		}
	}
	if filled != maxRunStates {
		t.Fatalf("%d of %d targets read, want %d", filled, len(st.Targets), maxRunStates)
	}
}

// A TaskRun that started and has no condition yet is running.
func TestRunStatesStartedTaskRun(t *testing.T) {
	now := metav1.NewTime(time.Now())
	tr := &pipelinev1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "tr-started", Namespace: "ci"}}
	tr.Status.StartTime = &now
	st := policy.EventStatus{Targets: []policy.TargetStatus{{Namespace: "ci", Name: "tr-started", State: policy.StateCreated}}}
	NewRunStates(fake.NewSimpleClientset(tr)).Fill(context.Background(), &st)
	if st.Targets[0].State != policy.StateRunning {
		t.Fatalf("started TaskRun: state %q, want running", st.Targets[0].State)
	}
}

// slowAPIServer answers GET of a PipelineRun after delay with one that
// succeeded.
func slowAPIServer(t *testing.T, delay time.Duration) versioned.Interface {
	t.Helper()
	body, err := json.Marshal(prWith("x", succeeded(corev1.ConditionTrue, "Succeeded", ""), true))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	client, err := versioned.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// Fill waits for the API server for at most its Timeout (5 s when unset):
// a slow one cannot hold the status answer, a prompt one is read.
func TestRunStatesTimeout(t *testing.T) {
	created := func() policy.EventStatus {
		return policy.EventStatus{Targets: []policy.TargetStatus{{Namespace: "ci", Name: "x", State: policy.StateCreated}}}
	}
	st := created()
	NewRunStates(slowAPIServer(t, 50*time.Millisecond)).Fill(context.Background(), &st)
	if st.Targets[0].State != policy.StateSucceeded {
		t.Fatalf("default timeout, an answer after 50 ms: state %q, want succeeded", st.Targets[0].State)
	}
	r := NewRunStates(slowAPIServer(t, time.Minute))
	r.Timeout = 100 * time.Millisecond
	st = created()
	done := make(chan struct{})
	go func() { r.Fill(context.Background(), &st); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Fill still waiting for an API server that does not answer")
	}
	if st.Targets[0].State != policy.StateCreated {
		t.Fatalf("no answer: state %q, want created", st.Targets[0].State)
	}
}
