package dispatch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// TestGrantRefusalDeadLettersAtOnce (issue 11): work put back on the work
// subjects (as dlq retry does) after its grant was revoked is dead-lettered
// on its first delivery, reason permanent, with the grant's refusal as the
// error, and creates nothing. A real embedded NATS server carries it.
func TestGrantRefusalDeadLettersAtOnce(t *testing.T) {
	ctx := context.Background()
	e, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := queue.Open(ctx, nc, queue.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := testWork()
	if err := q.Requeue(ctx, w, "retry-1"); err != nil {
		t.Fatal(err)
	}

	client := fake.NewSimpleClientset()
	d := New(NewKubeCreatorForClient(client), nil, WithGrant(grantFunc(func(queue.Work) error {
		return errors.New("app shop is no longer granted namespace shop-ci")
	})))
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	// A retry would wait an hour: only an immediate dead letter is seen.
	go func() {
		done <- q.Consume(cctx, queue.ConsumerConfig{BackoffBase: time.Hour, BackoffMax: time.Hour}, d.Handle)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	})

	var dls []queue.DeadLetter
	for deadline := time.Now().Add(20 * time.Second); len(dls) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the dead letter")
		}
		if dls, err = q.DeadLetters(ctx); err != nil {
			t.Fatal(err)
		}
	}
	dl := dls[0]
	if len(dls) != 1 || dl.Reason != "permanent" || dl.Attempts != 1 || dl.Work.Target.Name != w.Target.Name ||
		!strings.HasPrefix(dl.LastError, "grant: app shop is no longer granted namespace shop-ci") {
		t.Errorf("dead letters %+v, want one, permanent after 1 attempt, with the grant's reason", dls)
	}
	list, err := client.TektonV1().PipelineRuns(w.Target.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("refused work created %d PipelineRuns", len(list.Items))
	}
}
