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

// grantFunc adapts a function to Grant.
type grantFunc func(queue.Work) error

func (f grantFunc) Admit(w queue.Work) error { return f(w) }

// TestDispatcherGrantRefuses (issue 11): work the rules in force no longer
// grant (a revoked grant, a dlq retry, a forged publish) is dead-lettered at
// once with the reason, before rendering, and nothing is created.
func TestDispatcherGrantRefuses(t *testing.T) {
	revoked := errors.New(`app shop: namespace "shop-ci" not granted`)
	tests := []struct {
		name string
		work queue.Work
	}{
		{"valid work", testWork()},
		// Admit comes first: an invalid template is refused, not rendered.
		{"invalid work", testWork(func(w *queue.Work) { w.Target.PipelineRef = "" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			client := fake.NewSimpleClientset()
			var logs bytes.Buffer
			var admitted []queue.Work
			d := New(NewKubeCreatorForClient(client), slog.New(slog.NewJSONHandler(&logs, nil)),
				WithGrant(grantFunc(func(w queue.Work) error {
					admitted = append(admitted, w)
					return revoked
				})))

			err := d.Handle(ctx, tt.work)
			if !queue.IsPermanent(err) {
				t.Fatalf("Handle = %v, want a permanent error", err)
			}
			if !errors.Is(err, revoked) || !strings.HasPrefix(err.Error(), "grant: ") {
				t.Errorf("Handle = %q, want %q wrapped as grant: ...", err, revoked)
			}
			if len(admitted) != 1 || admitted[0].Target.Name != tt.work.Target.Name {
				t.Errorf("Admit called with %d work items, want the one handled", len(admitted))
			}
			if actions := client.Actions(); len(actions) != 0 {
				t.Errorf("refused work reached the API server: %v", actions)
			}
			list, lerr := client.TektonV1().PipelineRuns(tt.work.Target.Namespace).List(ctx, metav1.ListOptions{})
			if lerr != nil {
				t.Fatal(lerr)
			}
			if len(list.Items) != 0 {
				t.Errorf("refused work created %d PipelineRuns", len(list.Items))
			}
			if got, want := d.Stats(), (Stats{Refused: 1}); got != want {
				t.Errorf("Stats = %+v, want %+v", got, want)
			}

			var rec map[string]any
			if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
				t.Fatalf("want one JSON log line: %v\n%s", err, logs.String())
			}
			want := map[string]any{
				"level": "WARN", "msg": "work refused by grant", "component": "dispatch",
				"event_id": testDeliveryID, "app": "shop", "trigger": "build", "reason": revoked.Error(),
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("log: %s = %v, want %v", k, rec[k], v)
				}
			}
		})
	}
}

// TestDispatcherGrantAdmits: admitted work is dispatched as without a Grant.
func TestDispatcherGrantAdmits(t *testing.T) {
	calls := 0
	d := New(creatorFunc(func(context.Context, *pipelinev1.PipelineRun) error { return nil }), nil,
		WithGrant(grantFunc(func(queue.Work) error { calls++; return nil })))
	if err := d.Handle(context.Background(), testWork()); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("Admit called %d times, want 1", calls)
	}
	if got, want := d.Stats(), (Stats{Created: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}
