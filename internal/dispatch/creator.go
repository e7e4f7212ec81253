package dispatch

import (
	"context"
	"errors"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// ErrAlreadyExists reports that a PipelineRun of that namespace and name
// already exists. Names are deterministic, so this means the work was done
// before (a redelivery, or a crash before the ack): callers treat it as
// success. Test for it with errors.Is.
var ErrAlreadyExists = errors.New("pipelinerun already exists")

// Creator creates PipelineRuns. It is all the dispatcher needs from
// Kubernetes.
//
// Create returns nil when it created pr, an error wrapping ErrAlreadyExists
// when a PipelineRun with pr's namespace and name already exists (success,
// reported apart so it can be counted), an error marked queue.Permanent when
// retrying cannot help, and any other error when it may.
type Creator interface {
	Create(ctx context.Context, pr *pipelinev1.PipelineRun) error
}
