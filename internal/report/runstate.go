package report

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

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

// read gets the run namespace/name: a PipelineRun, or else a TaskRun
// (templates of Tekton Triggers render those too; the status does not
// say which). A TaskRun is listed by name: the router may list TaskRuns,
// not get them (deploy/rbac.yaml).
func (r *RunStates) read(ctx context.Context, namespace, name string) (observed, error) {
	pr, err := r.client.TektonV1().PipelineRuns(namespace).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return observePipelineRun(pr), nil
	}
	if !apierrors.IsNotFound(err) {
		return observed{}, fmt.Errorf("pipelinerun %s/%s: %w", namespace, name, err)
	}
	trs, err := r.client.TektonV1().TaskRuns(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		return observed{}, fmt.Errorf("taskrun %s/%s: %w", namespace, name, err)
	}
	for i := range trs.Items {
		if trs.Items[i].Name == name {
			return observeTaskRun(&trs.Items[i]), nil
		}
	}
	return observed{}, errRunGone
}

// stateOf is a run's status state and reason, from what its Succeeded
// condition says (resultOf, as reports read it): created until it
// starts, running, succeeded, or run-failed saying why.
func stateOf(o observed) (state, reason string) {
	res := resultOf(o)
	switch {
	case res.state == "" && res.started:
		return policy.StateRunning, ""
	case res.state == "":
		if o.cond != nil {
			return policy.StateCreated, o.cond.Reason
		}
		return policy.StateCreated, ""
	case res.state == StateSuccess:
		return policy.StateSucceeded, o.cond.Message
	}
	why := o.cond.Reason
	switch {
	case res.cancelled:
		why = "cancelled"
	case res.timedOut:
		why = "timed out"
	}
	if o.cond.Message != "" {
		why += ": " + o.cond.Message
	}
	return policy.StateRunFailed, why
}
