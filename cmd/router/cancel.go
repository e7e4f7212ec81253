package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/report"
)

// prCanceller runs /cancel comments: the PipelineRuns this router created
// for a pull request's events get spec.status Cancelled (Tekton stops
// them). It needs `patch` on pipelineruns, which the router's RBAC grants.
type prCanceller struct {
	gate   *queueGate
	client versioned.Interface
	logger *slog.Logger
}

var _ ingest.Canceller = (*prCanceller)(nil)

// newCanceller returns the canceller of a router dispatching to a cluster
// through client, or nil (no /cancel) when it writes PipelineRuns to files
// (client nil).
func newCanceller(client versioned.Interface, gate *queueGate, logger *slog.Logger) ingest.Canceller {
	if client == nil {
		return nil
	}
	return &prCanceller{gate: gate, client: client, logger: logger.With("component", "cancel")}
}

// newRunStates returns what reads the runs' own states for GET
// /v1/events/{id} through client, or nil (the queue's states only) when
// the router writes PipelineRuns to files (client nil).
func newRunStates(client versioned.Interface) ingest.RunStateReader {
	if client == nil {
		return nil
	}
	return report.NewRunStates(client)
}

// tektonClient is a Tekton client for the cluster serve dispatches to, nil
// when it writes PipelineRuns to files or has no cluster (newCreator
// reports a configuration error, or falls back to files).
func tektonClient(cfg serveConfig) versioned.Interface {
	if cfg.dispatchMode == "dir" {
		return nil
	}
	client, _ := newTektonClient(cfg.kubeconfig, float32(cfg.kubeQPS), cfg.kubeBurst)
	return client
}

// newTektonClient is a Tekton client for kubeconfig (else $KUBECONFIG,
// else the in-cluster config); nil and no error when there is none.
func newTektonClient(kubeconfig string, qps float32, burst int) (versioned.Interface, error) {
	restCfg, err := dispatch.RESTConfig(kubeconfig, qps, burst)
	if errors.Is(err, dispatch.ErrNoCluster) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return versioned.NewForConfig(restCfg)
}

// CancelPullRequest cancels the created, unfinished PipelineRuns of the
// pull request's events (of trigger only, when set).
func (c *prCanceller) CancelPullRequest(ctx context.Context, source, repo, number, trigger string) (int, error) {
	q := c.gate.q.Load()
	if q == nil {
		return 0, errQueueNotOpen
	}
	events, err := q.PullRequestEvents(ctx, source, repo, number)
	if err != nil {
		return 0, fmt.Errorf("cancel: %w: %w", queue.ErrUnavailable, err)
	}
	n := 0
	for _, ev := range events {
		for _, t := range ev.Targets {
			if t.State != policy.StateCreated || (trigger != "" && t.Trigger != trigger) {
				continue
			}
			done, err := c.cancel(ctx, t.Namespace, t.Name)
			if err != nil {
				return n, fmt.Errorf("cancel pipelinerun %s/%s: %w: %w", t.Namespace, t.Name, queue.ErrUnavailable, err)
			}
			if done {
				n++
				c.logger.Info("pipelinerun cancelled", "namespace", t.Namespace, "name", t.Name, "event_id", ev.ID, "pull_request", number)
			}
		}
	}
	return n, nil
}

// cancel sets spec.status Cancelled on a PipelineRun that has not
// finished; false when there was nothing to cancel.
func (c *prCanceller) cancel(ctx context.Context, namespace, name string) (bool, error) {
	pr, err := c.client.TektonV1().PipelineRuns(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	case pr.IsDone() || pr.IsCancelled():
		return false, nil
	}
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"status":%q}}`, pr.ResourceVersion, pipelinev1.PipelineRunSpecStatusCancelled)
	_, err = c.client.TektonV1().PipelineRuns(namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "switchyard"})
	if apierrors.IsConflict(err) {
		return c.cancel(ctx, namespace, name) // changed meanwhile: look again
	}
	return err == nil, err
}
