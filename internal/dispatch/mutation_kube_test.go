package dispatch

// Tests added for mutants that lived (docs/testing.md, "Mutation testing").

import (
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// A server timeout that suggests no delay (Retry-After 0) keeps the
// queue's own backoff: a zero delay would redeliver at once, in a loop.
func TestClassifyZeroRetryAfterKeepsBackoff(t *testing.T) {
	if d, ok := queue.RetryDelay(classify(apierrors.NewServerTimeout(prResource, "create", 0))); ok {
		t.Fatalf("RetryDelay = %v, true; want no delay of its own", d)
	}
}
