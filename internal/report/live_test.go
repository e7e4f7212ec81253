package report

import (
	"context"
	"testing"
	"time"

	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// recordingQueue stores jobs in the real report queue and records their
// ids, so a test sees what a watcher published.
type recordingQueue struct {
	*Queue
	pub *flakyPublisher
}

func (r recordingQueue) Publish(ctx context.Context, j Job) error {
	if err := r.Queue.Publish(ctx, j); err != nil {
		return err
	}
	return r.pub.Publish(ctx, j)
}

// TestRunDeletedWhileNoWatcherRan: a run reported pending, then deleted
// while no watcher ran (a leader handover, every router down), is reported
// "deleted before it finished" by the next watcher, which no informer event
// would tell; a run still there, or one that finished, is not.
func TestRunDeletedWhileNoWatcherRan(t *testing.T) {
	q, _ := testQueue(t)
	pr := testRun("", "", false)
	kept := testRun("", "", false)
	kept.Name, kept.UID = "web-build-2", "u2"
	elsewhere := testRun("", "", false)
	elsewhere.Namespace, elsewhere.UID = "other", "u3"
	client := fake.NewSimpleClientset(pr, kept, elsewhere)
	watch := func(ctx context.Context, pub *flakyPublisher, namespaces ...string) func() {
		ctx, cancel := context.WithCancel(ctx)
		w := NewWatcher(WatcherConfig{Client: client, Publisher: recordingQueue{q, pub}, Live: q,
			Namespaces: func() []string { return namespaces }, Status: func(string) bool { return true }, Resync: 50 * time.Millisecond})
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(ctx) }()
		return func() { cancel(); <-done }
	}

	first := &flakyPublisher{}
	stop := watch(t.Context(), first, "ci", "other")
	first.waitForSet(t, "u1/status/pending", "u2/status/pending", "u3/status/pending")
	waitLive(t, q, "u1", "u2", "u3")
	stop()

	// Deleted while nobody watched; and the rules no longer grant "other",
	// whose run is not watched any more, not gone.
	if err := client.TektonV1().PipelineRuns("ci").Delete(t.Context(), pr.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	second := &flakyPublisher{}
	stop = watch(t.Context(), second, "ci")
	second.waitForSet(t, "u2/status/pending", "u1/status/error")
	waitLive(t, q, "u2", "u3")
	stop()
	second.waitForSet(t, "u2/status/pending", "u1/status/error") // and nothing of u3
	if jobs := lastJobs(t, q, "u1"); len(jobs) != 0 {
		t.Fatalf("u1 still remembered live: %+v", jobs)
	}
}

// waitLive waits until exactly the runs uids are remembered live.
func waitLive(t *testing.T, q *Queue, uids ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		live, err := q.LiveRuns(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ok := len(live) == len(uids)
		for _, uid := range uids {
			ok = ok && len(live[uid]) > 0 && live[uid][0].State == StateError
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("live runs %+v, want %v", live, uids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lastJobs(t *testing.T, q *Queue, uid string) []Job {
	t.Helper()
	live, err := q.LiveRuns(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return live[uid]
}
