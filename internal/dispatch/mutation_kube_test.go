package dispatch

// Tests added for mutants that lived (docs/testing.md, "Mutation testing").

import (
	"context"
	"errors"
	"strings"
	"testing"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// A server timeout that suggests no delay (Retry-After 0) keeps the
// queue's own backoff: a zero delay would redeliver at once, in a loop.
func TestClassifyZeroRetryAfterKeepsBackoff(t *testing.T) {
	if d, ok := queue.RetryDelay(classify(apierrors.NewServerTimeout(prResource, "create", 0))); ok {
		t.Fatalf("RetryDelay = %v, true; want no delay of its own", d)
	}
}

// Resync reports a group it could not reconcile (here: the patch that
// would start a pending run is refused).
func TestResyncReportsReconcileErrors(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	kc := NewKubeCreatorForClient(client)
	one := &routing.Concurrency{Group: "deploy", Limit: 1}
	b1 := mustRender(t, groupWork("billing", "deploy", "b-1", one))
	b2 := mustRender(t, groupWork("billing", "deploy", "b-2", one))
	for _, pr := range []*pipelinev1.PipelineRun{b1, b2} {
		if err := kc.Create(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.TektonV1().PipelineRuns(b1.Namespace).Delete(ctx, b1.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	client.PrependReactor("patch", "pipelineruns", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("patch refused")
	})
	if err := kc.concurrency.Resync(ctx, []string{b1.Namespace}); err == nil || !strings.Contains(err.Error(), "patch refused") {
		t.Fatalf("Resync = %v, want the refused patch", err)
	}
}
