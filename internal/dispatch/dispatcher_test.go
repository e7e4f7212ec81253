package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// The queue's handler signature.
var _ func(context.Context, queue.Work) error = (*Dispatcher)(nil).Handle

// creatorFunc adapts a function to Creator.
type creatorFunc func(context.Context, *pipelinev1.PipelineRun) error

func (f creatorFunc) Create(ctx context.Context, pr *pipelinev1.PipelineRun) error { return f(ctx, pr) }

func TestDispatcherHandle(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	var logs bytes.Buffer
	d := New(NewKubeCreatorForClient(client), slog.New(slog.NewJSONHandler(&logs, nil)))
	w := testWork()

	for i := range 2 {
		if err := d.Handle(ctx, w); err != nil {
			t.Fatalf("Handle #%d: %v", i+1, err)
		}
	}
	list, err := client.TektonV1().PipelineRuns(w.Target.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Errorf("%d PipelineRuns, want 1", len(list.Items))
	}
	if got, want := d.Stats(), (Stats{Created: 1, Existed: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), logs.String())
	}
	for i, wantMsg := range []string{"pipelinerun created", "pipelinerun already exists"} {
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"msg": wantMsg, "component": "dispatch", "event_id": testDeliveryID, "app": "shop",
			"trigger": "build", "namespace": "shop-ci", "name": w.Target.Name,
		}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("log %d: %s = %v, want %v", i, k, rec[k], v)
			}
		}
	}
	// Parameter values may be sensitive; they never reach the logs.
	if strings.Contains(logs.String(), "https://github.com/acme/shop.git") {
		t.Errorf("parameter value logged:\n%s", logs.String())
	}
}

func TestDispatcherHandleFailures(t *testing.T) {
	transientErr := errors.New("connection refused")
	tests := []struct {
		name      string
		work      queue.Work
		create    error
		permanent bool
		want      Stats
	}{
		{"invalid template", testWork(func(w *queue.Work) { w.Target.PipelineRef = "" }), nil, true, Stats{Permanent: 1}},
		{"forbidden", testWork(), queue.Permanent(errors.New("forbidden")), true, Stats{Permanent: 1}},
		{"transient", testWork(), transientErr, false, Stats{Transient: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			d := New(creatorFunc(func(context.Context, *pipelinev1.PipelineRun) error {
				calls++
				return tt.create
			}), nil)
			err := d.Handle(context.Background(), tt.work)
			if err == nil || queue.IsPermanent(err) != tt.permanent {
				t.Errorf("Handle = %v, want an error with permanent=%v", err, tt.permanent)
			}
			if tt.create != nil && !errors.Is(err, tt.create) {
				t.Errorf("Handle = %v, does not wrap %v", err, tt.create)
			}
			if tt.name == "invalid template" && calls != 0 {
				t.Errorf("creator called for an invalid template")
			}
			if got := d.Stats(); got != tt.want {
				t.Errorf("Stats = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDispatcherDirCreator(t *testing.T) {
	d := New(DirCreator{Dir: t.TempDir()}, nil)
	for range 2 {
		if err := d.Handle(context.Background(), testWork()); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := d.Stats(), (Stats{Created: 1, Existed: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}
