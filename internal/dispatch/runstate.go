package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"knative.dev/pkg/apis"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// RunStates reads, from the cluster, how the runs an event created are
// doing: the queue's status says a run was created, the run itself says
// whether it is running, succeeded or failed. GET /v1/events/{id} and
// `router status` show it.
type RunStates struct {
	client versioned.Interface
	// Timeout bounds the reads of one event's runs (default 5 s).
	Timeout time.Duration
}

// NewRunStates returns a RunStates reading through client.
func NewRunStates(client versioned.Interface) *RunStates { return &RunStates{client: client} }

// runStateReads is how many runs of one event are read at once, and
// maxRunStates how many in all: an event fanned out to more targets shows
// the rest as the queue has them (created), so one status request costs
// the API server at most that many reads.
const (
	runStateReads = 8
	maxRunStates  = 64
)

// Fill replaces the state of each target of st the queue reports as
// created with its run's: running (started, not finished), succeeded, or
// run-failed with why (the reason, "cancelled" or "timed out", and Tekton's
// message). A run not started yet stays created; one that no longer
// exists (deleted, pruned) stays created with that as its reason; one
// that cannot be read keeps what the queue said. Reads run
// runStateReads at a time, for at most Timeout in all, for the first
// maxRunStates created targets.
func (r *RunStates) Fill(ctx context.Context, st *policy.EventStatus) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sem := make(chan struct{}, runStateReads)
	var wg sync.WaitGroup
	reads := 0
	for i := range st.Targets {
		t := &st.Targets[i]
		if t.State != policy.StateCreated || t.Namespace == "" || t.Name == "" {
			continue
		}
		if reads++; reads > maxRunStates {
			break
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			o, err := r.read(ctx, t.Namespace, t.Name)
			switch {
			case errors.Is(err, errRunGone):
				t.Reason = "the run no longer exists (deleted or pruned)"
			case err == nil:
				t.State, t.Reason = stateOf(o)
			}
		})
	}
	wg.Wait()
}

// errRunGone is a run found neither as a PipelineRun nor as a TaskRun.
var errRunGone = errors.New("run not found")

// runStatus is what Fill reads of a run: its Succeeded condition and
// whether it started.
type runStatus struct {
	cond    *apis.Condition
	started bool
}

// read gets the run namespace/name: a PipelineRun, or else a TaskRun
// (templates of Tekton Triggers render those too; the status does not
// say which). A TaskRun is listed by name: the router may list TaskRuns,
// not get them (deploy/rbac.yaml).
func (r *RunStates) read(ctx context.Context, namespace, name string) (runStatus, error) {
	pr, err := r.client.TektonV1().PipelineRuns(namespace).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return runStatus{cond: pr.Status.GetCondition(apis.ConditionSucceeded), started: pr.Status.StartTime != nil}, nil
	}
	if !apierrors.IsNotFound(err) {
		return runStatus{}, fmt.Errorf("pipelinerun %s/%s: %w", namespace, name, err)
	}
	trs, err := r.client.TektonV1().TaskRuns(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		return runStatus{}, fmt.Errorf("taskrun %s/%s: %w", namespace, name, err)
	}
	for _, tr := range trs.Items {
		if tr.Name == name {
			return runStatus{cond: tr.Status.GetCondition(apis.ConditionSucceeded), started: tr.Status.StartTime != nil}, nil
		}
	}
	return runStatus{}, errRunGone
}

// cancelled and timed-out reasons of PipelineRuns and TaskRuns.
var (
	cancelledReasons = []string{
		string(pipelinev1.PipelineRunReasonCancelled), string(pipelinev1.PipelineRunReasonCancelledRunningFinally),
		string(pipelinev1.TaskRunReasonCancelled),
	}
	timedOutReasons = []string{
		string(pipelinev1.PipelineRunReasonTimedOut), string(pipelinev1.PipelineRunReasonTimedOutRunningFinally),
		string(pipelinev1.TaskRunReasonTimedOut),
	}
)

// stateOf is a run's state and reason from its Succeeded condition.
func stateOf(o runStatus) (state, reason string) {
	c := o.cond
	if c == nil {
		if o.started {
			return policy.StateRunning, ""
		}
		return policy.StateCreated, ""
	}
	switch c.Status {
	case corev1.ConditionTrue:
		return policy.StateSucceeded, c.Message
	case corev1.ConditionFalse:
		why := c.Reason
		switch {
		case slices.Contains(cancelledReasons, c.Reason):
			why = "cancelled"
		case slices.Contains(timedOutReasons, c.Reason):
			why = "timed out"
		}
		if c.Message != "" {
			why += ": " + c.Message
		}
		return policy.StateRunFailed, why
	}
	if o.started || c.Reason == string(pipelinev1.PipelineRunReasonRunning) {
		return policy.StateRunning, ""
	}
	return policy.StateCreated, c.Reason
}
