package report

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// flakyPublisher fails its first fails calls, then records jobs.
type flakyPublisher struct {
	mu    sync.Mutex
	fails int
	calls int
	ids   []string
}

func (p *flakyPublisher) Publish(_ context.Context, j Job) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fails > 0 {
		p.fails--
		return errors.New("jetstream unavailable")
	}
	p.ids = append(p.ids, j.MsgID())
	return nil
}

func (p *flakyPublisher) waitFor(t *testing.T, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		got := slices.Clone(p.ids)
		p.mu.Unlock()
		if len(got) >= len(ids) {
			if !slices.Equal(got, ids) {
				t.Fatalf("published %v, want %v", got, ids)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("published %v, want %v", p.ids, ids)
}

// TestWatcherPublishesTransitionsOnce: the watcher retries a publish that
// failed, publishes each transition once however often it sees the run,
// ignores runs Switchyard did not create, and forgets a deleted run.
func TestWatcherPublishesTransitionsOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr := testRun("", "", false)
	other := testRun("", "", false)
	other.Name, other.UID, other.Labels = "not-ours", "u2", map[string]string{}
	client := fake.NewSimpleClientset(pr, other)
	pub := &flakyPublisher{fails: 1}
	w := NewWatcher(WatcherConfig{Client: client, Publisher: pub, Namespaces: func() []string { return []string{"ci"} },
		Status: func(source string) bool { return source == "github" }, Resync: time.Hour})
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()

	pub.waitFor(t, "u1/status/pending")
	// Seen again (a resync, an unrelated update): nothing new.
	runs := client.TektonV1().PipelineRuns("ci")
	cur, err := runs.Get(ctx, pr.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Labels["touched"] = "yes"
	if cur, err = runs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cur.Status.Conditions = duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"}}
	if _, err := runs.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pub.waitFor(t, "u1/status/pending", "u1/status/success")
	if err := runs.Delete(ctx, pr.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		w.mu.Lock()
		_, remembered := w.published["u1"]
		w.mu.Unlock()
		if !remembered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deleted run still remembered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pub.waitFor(t, "u1/status/pending", "u1/status/success")
	cancel()
	<-done
	if pub.calls != 3 {
		t.Errorf("%d publish calls, want 3 (one failed, then pending and success)", pub.calls)
	}
}

// waitForSet waits until the publisher recorded exactly ids, in any order.
func (p *flakyPublisher) waitForSet(t *testing.T, ids ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(ids))
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		got := slices.Sorted(slices.Values(p.ids))
		p.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) || len(got) > len(want) {
			t.Fatalf("published %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
