package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"github.com/tektoncd/pipeline/pkg/apis/config"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

const testDeliveryID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

// testWork returns a complete unit of work, changed by the given functions.
func testWork(mods ...func(*queue.Work)) queue.Work {
	ev := event.New()
	ev.SetID(testDeliveryID)
	ev.SetType("dev.switchyard.git.push")
	ev.SetSource("https://github.com/acme/shop")
	ev.SetSubject("refs/heads/main")
	ev.SetExtension("revision", "9fceb02d0ae598e95dc970b74767f19372d61af8")
	ev.SetExtension("identity", "github-acme")
	ev.SetExtension("repository", "acme/shop")
	ev.SetExtension("ref", "refs/heads/main")
	w := queue.Work{
		Source: "github-acme",
		Event:  ev,
		Target: routing.Target{
			App:            "shop",
			Trigger:        "build",
			Namespace:      "shop-ci",
			Name:           routing.PipelineRunName("shop", "build", "github-acme", testDeliveryID),
			ServiceAccount: "shop-builder",
			PipelineRef:    "build-and-push",
			Params: []routing.Param{
				{Name: "revision", Value: "9fceb02d0ae598e95dc970b74767f19372d61af8"},
				{Name: "repo-url", Value: "https://github.com/acme/shop.git"},
				{Name: "image.tag", Value: "main"},
			},
			Timeout: "45m",
		},
	}
	for _, m := range mods {
		m(&w)
	}
	return w
}

func TestRender(t *testing.T) {
	longID := strings.Repeat("x", 100)
	full := testWork()
	tests := []struct {
		name string
		work queue.Work
		want *pipelinev1.PipelineRun
	}{
		{
			name: "full",
			work: full,
			want: &pipelinev1.PipelineRun{
				TypeMeta: metav1.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "PipelineRun"},
				ObjectMeta: metav1.ObjectMeta{
					Name:      full.Target.Name,
					Namespace: "shop-ci",
					Labels: map[string]string{
						"switchyard.dev/app":           "shop",
						"switchyard.dev/trigger":       "build",
						"switchyard.dev/event-id":      testDeliveryID,
						"app.kubernetes.io/managed-by": "switchyard",
						// Tekton Triggers' own, for setups that chain on them.
						"triggers.tekton.dev/eventlistener":    "github-acme",
						"triggers.tekton.dev/trigger":          "build",
						"triggers.tekton.dev/triggers-eventid": testDeliveryID,
					},
					Annotations: map[string]string{
						"switchyard.dev/event-id":      testDeliveryID,
						"switchyard.dev/event-type":    "dev.switchyard.git.push",
						"switchyard.dev/event-source":  "https://github.com/acme/shop",
						"switchyard.dev/event-subject": "refs/heads/main",
						"switchyard.dev/repository":    "acme/shop",
						"switchyard.dev/revision":      "9fceb02d0ae598e95dc970b74767f19372d61af8",
						"switchyard.dev/identity":      "github-acme",
						"switchyard.dev/router-source": "github-acme",
					},
				},
				Spec: pipelinev1.PipelineRunSpec{
					PipelineRef: &pipelinev1.PipelineRef{Name: "build-and-push"},
					Params: pipelinev1.Params{
						{Name: "revision", Value: *pipelinev1.NewStructuredValues("9fceb02d0ae598e95dc970b74767f19372d61af8")},
						{Name: "repo-url", Value: *pipelinev1.NewStructuredValues("https://github.com/acme/shop.git")},
						{Name: "image.tag", Value: *pipelinev1.NewStructuredValues("main")},
					},
					Timeouts:        &pipelinev1.TimeoutFields{Pipeline: &metav1.Duration{Duration: 45 * time.Minute}},
					TaskRunTemplate: pipelinev1.PipelineTaskRunTemplate{ServiceAccountName: "shop-builder"},
				},
			},
		},
		{
			// Optional fields stay unset: Tekton's defaults (timeout, service
			// account) are the cluster's to apply.
			name: "minimal",
			work: queue.Work{
				Source: "agents",
				Event: func() event.Event {
					ev := event.New()
					ev.SetID("evt-1")
					ev.SetType("dev.switchyard.image.push")
					ev.SetSource("/v1/events/agents")
					return ev
				}(),
				Target: routing.Target{App: "shop", Trigger: "scan", Namespace: "shop-ci", Name: "shop-scan-0123456789", PipelineRef: "scan"},
			},
			want: &pipelinev1.PipelineRun{
				TypeMeta: metav1.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "PipelineRun"},
				ObjectMeta: metav1.ObjectMeta{
					Name:      "shop-scan-0123456789",
					Namespace: "shop-ci",
					Labels: map[string]string{
						"switchyard.dev/app":                   "shop",
						"switchyard.dev/trigger":               "scan",
						"switchyard.dev/event-id":              "evt-1",
						"app.kubernetes.io/managed-by":         "switchyard",
						"triggers.tekton.dev/eventlistener":    "agents",
						"triggers.tekton.dev/trigger":          "scan",
						"triggers.tekton.dev/triggers-eventid": "evt-1",
					},
					Annotations: map[string]string{
						"switchyard.dev/event-id":      "evt-1",
						"switchyard.dev/event-type":    "dev.switchyard.image.push",
						"switchyard.dev/event-source":  "/v1/events/agents",
						"switchyard.dev/router-source": "agents",
					},
				},
				Spec: pipelinev1.PipelineRunSpec{PipelineRef: &pipelinev1.PipelineRef{Name: "scan"}},
			},
		},
		{
			name: "no timeout",
			work: testWork(func(w *queue.Work) { w.Target.Timeout = "0" }),
			want: func() *pipelinev1.PipelineRun {
				pr := mustRender(t, full)
				pr.Spec.Timeouts.Pipeline.Duration = 0
				return pr
			}(),
		},
		{
			name: "long event id is hashed",
			work: testWork(func(w *queue.Work) { w.Event.SetID(longID) }),
			want: func() *pipelinev1.PipelineRun {
				pr := mustRender(t, full)
				pr.Labels[LabelEventID] = "sha256-" + "09ecb6ebc8bcefc733f6f2ec44f791abeed6a99edf0cc31519637898aebd52d8"[:56]
				pr.Labels[LabelTektonEventID] = pr.Labels[LabelEventID]
				pr.Annotations[AnnotationEventID] = longID
				return pr
			}(),
		},
		{
			name: "event id with invalid label characters is hashed",
			work: testWork(func(w *queue.Work) { w.Event.SetID("gitlab:push/42 #1") }),
			want: func() *pipelinev1.PipelineRun {
				pr := mustRender(t, full)
				pr.Labels[LabelEventID] = EventIDLabelValue("gitlab:push/42 #1")
				pr.Labels[LabelTektonEventID] = pr.Labels[LabelEventID]
				pr.Annotations[AnnotationEventID] = "gitlab:push/42 #1"
				return pr
			}(),
		},
		{
			name: "non-string extensions are formatted",
			work: testWork(func(w *queue.Work) { w.Event.SetExtension("identity", 42) }),
			want: func() *pipelinev1.PipelineRun {
				pr := mustRender(t, full)
				pr.Annotations[AnnotationIdentity] = "42"
				return pr
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(context.Background(), tt.work)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Render mismatch (-want +got):\n%s", diff)
			}
			for k, v := range got.Labels {
				if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
					t.Errorf("label %s=%q invalid: %v", k, v, msgs)
				}
			}
			// What the webhook will do on create must pass too.
			cp := got.DeepCopy()
			cp.SetDefaults(context.Background())
			if ferr := cp.Validate(context.Background()); ferr != nil {
				t.Errorf("rendered PipelineRun fails Tekton validation: %v", ferr)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name    string
		work    queue.Work
		wantErr string
	}{
		// Rejected by Tekton's validation: these prove it ran.
		{"empty pipelineRef", testWork(func(w *queue.Work) { w.Target.PipelineRef = "" }), "missing field(s): spec.pipelineRef.name"},
		{"invalid pipelineRef", testWork(func(w *queue.Work) { w.Target.PipelineRef = "build and push!" }), "spec.pipelineRef.name"},
		{"negative timeout", testWork(func(w *queue.Work) { w.Target.Timeout = "-5m" }), "-5m0s should be >= 0: spec.timeouts.pipeline"},
		{"duplicate param", testWork(func(w *queue.Work) {
			w.Target.Params = append(w.Target.Params, routing.Param{Name: "Revision", Value: "x"})
		}), "expected exactly one, got both: spec.params[Revision].name"},
		{"uppercase name", testWork(func(w *queue.Work) { w.Target.Name = "Shop-build-abc" }), `invalid resource name "Shop-build-abc"`},
		{"name too long", testWork(func(w *queue.Work) { w.Target.Name = strings.Repeat("a", 64) }), "length must be no more than 63 characters"},
		{"empty name", testWork(func(w *queue.Work) { w.Target.Name = "" }), `invalid resource name ""`},
		// Rejected by Render's own checks.
		{"invalid param name", testWork(func(w *queue.Work) {
			w.Target.Params = []routing.Param{{Name: "1st param", Value: "x"}}
		}), "variable names is invalid: [1st param]"},
		{"bad timeout", testWork(func(w *queue.Work) { w.Target.Timeout = "soon" }), `timeout: time: invalid duration "soon"`},
		{"empty namespace", testWork(func(w *queue.Work) { w.Target.Namespace = "" }), `invalid namespace ""`},
		{"invalid namespace", testWork(func(w *queue.Work) { w.Target.Namespace = "../etc" }), `invalid namespace "../etc"`},
		{"invalid app label", testWork(func(w *queue.Work) { w.Target.App = "shop/web" }), `label switchyard.dev/app: invalid value "shop/web"`},
		{"empty trigger", testWork(func(w *queue.Work) { w.Target.Trigger = "" }), "label switchyard.dev/trigger: empty value"},
		{"no event id", testWork(func(w *queue.Work) {
			w.Event = event.New() // SetID("") is refused, an unset id is not
			w.Event.SetType("dev.switchyard.git.push")
		}), "event has no id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := Render(context.Background(), tt.work)
			if err == nil {
				t.Fatalf("Render succeeded, want error %q:\n%+v", tt.wantErr, pr)
			}
			if pr != nil {
				t.Errorf("Render returned a PipelineRun with an error")
			}
			if !queue.IsPermanent(err) {
				t.Errorf("error not permanent: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "render pipelinerun: ") {
				t.Errorf("error %q lacks the render prefix", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestRenderTektonConfigFromContext shows Render honours the Tekton config in
// its context: with a default resolver configured, as a cluster may, a
// PipelineRun without a pipeline name is valid.
func TestRenderTektonConfigFromContext(t *testing.T) {
	w := testWork(func(w *queue.Work) { w.Target.PipelineRef = "" })
	if _, err := Render(context.Background(), w); err == nil {
		t.Fatal("Render without a pipeline name succeeded with Tekton's built-in defaults")
	}
	cfg := config.FromContextOrDefaults(context.Background())
	cfg.Defaults.DefaultResolverType = "git"
	pr, err := Render(config.ToContext(context.Background(), cfg), w)
	if err != nil {
		t.Fatalf("Render with a default resolver: %v", err)
	}
	if pr.Spec.PipelineRef.Resolver != "" {
		t.Errorf("defaults leaked into the rendered PipelineRun: resolver %q", pr.Spec.PipelineRef.Resolver)
	}
}

func TestRenderYAMLGolden(t *testing.T) {
	got, err := RenderYAML(context.Background(), testWork())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "pipelinerun.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("RenderYAML mismatch (-want +got):\n%s", diff)
	}
}

func TestRenderYAMLError(t *testing.T) {
	_, err := RenderYAML(context.Background(), testWork(func(w *queue.Work) { w.Target.Timeout = "soon" }))
	if !queue.IsPermanent(err) {
		t.Errorf("RenderYAML error = %v, want a permanent error", err)
	}
}

func TestEventIDLabelValue(t *testing.T) {
	tests := []struct {
		name, id, want string
	}{
		{"uuid kept", testDeliveryID, testDeliveryID},
		{"63 characters kept", strings.Repeat("a", 63), strings.Repeat("a", 63)},
		{"64 characters hashed", strings.Repeat("a", 64), "sha256-" + "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"[:56]},
		// sha256("-abc"), computed outside the code under test.
		{"leading dash hashed", "-abc", "sha256-649d85fcc5d7e13d1217fc85fc746817f31c16fcf850002545dda492"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EventIDLabelValue(tt.id)
			if got != tt.want {
				t.Errorf("EventIDLabelValue(%q) = %q, want %q", tt.id, got, tt.want)
			}
			if got != tt.id && !strings.HasPrefix(got, "sha256-") {
				t.Errorf("hashed value %q lacks the sha256- prefix", got)
			}
			if msgs := validation.IsValidLabelValue(got); len(msgs) > 0 {
				t.Errorf("EventIDLabelValue(%q) = %q, not a label value: %v", tt.id, got, msgs)
			}
		})
	}
}

func FuzzEventIDLabelValue(f *testing.F) {
	for _, s := range []string{"", testDeliveryID, strings.Repeat("z", 64), "a b", "ü", "-x-", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		got := EventIDLabelValue(id)
		if msgs := validation.IsValidLabelValue(got); len(msgs) > 0 {
			t.Fatalf("EventIDLabelValue(%q) = %q, not a label value: %v", id, got, msgs)
		}
		if got != EventIDLabelValue(id) {
			t.Fatalf("EventIDLabelValue(%q) not deterministic", id)
		}
		if len(validation.IsValidLabelValue(id)) == 0 && got != id {
			t.Fatalf("valid label value %q changed to %q", id, got)
		}
	})
}

func mustRender(t testing.TB, w queue.Work) *pipelinev1.PipelineRun {
	t.Helper()
	pr, err := Render(context.Background(), w)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return pr
}

func BenchmarkRender(b *testing.B) {
	ctx := context.Background()
	w := testWork()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(ctx, w); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRenderTimeoutsAndWorkspaces(t *testing.T) {
	w := testWork(func(w *queue.Work) {
		w.Target.Timeout = "2h"
		w.Target.TasksTimeout = "90m"
		w.Target.FinallyTimeout = "20m"
		w.Target.Workspaces = []pipelinev1.WorkspaceBinding{
			{Name: "source", EmptyDir: &corev1.EmptyDirVolumeSource{}},
			{Name: "config", ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shop-config"}}},
		}
	})
	pr := mustRender(t, w)
	want := &pipelinev1.TimeoutFields{
		Pipeline: &metav1.Duration{Duration: 2 * time.Hour},
		Tasks:    &metav1.Duration{Duration: 90 * time.Minute},
		Finally:  &metav1.Duration{Duration: 20 * time.Minute},
	}
	if diff := cmp.Diff(want, pr.Spec.Timeouts); diff != "" {
		t.Errorf("timeouts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(w.Target.Workspaces, pr.Spec.Workspaces); diff != "" {
		t.Errorf("workspaces (-want +got):\n%s", diff)
	}

	// Tekton's own validation runs on them: tasks + finally must fit.
	w.Target.FinallyTimeout = "45m"
	if _, err := Render(context.Background(), w); err == nil || !strings.Contains(err.Error(), "should be <= pipeline duration") {
		t.Errorf("Render with tasks+finally > pipeline: err = %v", err)
	}
	w = testWork(func(w *queue.Work) {
		w.Target.Workspaces = []pipelinev1.WorkspaceBinding{{Name: "source"}}
	})
	if _, err := Render(context.Background(), w); err == nil || !strings.Contains(err.Error(), "spec.workspaces[0]") {
		t.Errorf("Render with a workspace without a volume: err = %v", err)
	}
}

// templateWork is a unit of work whose target carries a PipelineRun rendered
// from a Tekton Triggers template.
func templateWork(resource string) queue.Work {
	return testWork(func(w *queue.Work) {
		w.Target.PipelineRef = ""
		w.Target.Params = nil
		w.Target.Timeout = ""
		w.Target.Resource = json.RawMessage(resource)
	})
}

func TestRenderResource(t *testing.T) {
	w := templateWork(`{"apiVersion":"tekton.dev/v1","kind":"PipelineRun",
		"metadata":{"generateName":"build-","namespace":"elsewhere","uid":"x","resourceVersion":"7",
			"labels":{"team":"shop"},"annotations":{"note":"kept"}},
		"spec":{"pipelineRef":{"name":"build"},"params":[{"name":"rev","value":"abc"}],
			"taskRunTemplate":{"serviceAccountName":"someone"},"timeouts":{"pipeline":"1h"}},
		"status":{"conditions":[{"type":"Succeeded","status":"True"}]}}`)
	pr := mustRender(t, w)
	if pr.Name != w.Target.Name || pr.GenerateName != "" || pr.Namespace != "shop-ci" {
		t.Errorf("name/namespace = %q %q %q, want the target's", pr.Name, pr.GenerateName, pr.Namespace)
	}
	if pr.UID != "" || pr.ResourceVersion != "" || len(pr.Status.Conditions) != 0 {
		t.Errorf("server-side state leaked: uid %q rv %q status %+v", pr.UID, pr.ResourceVersion, pr.Status)
	}
	if got := pr.Spec.TaskRunTemplate.ServiceAccountName; got != "shop-builder" {
		t.Errorf("service account = %q, want the target's shop-builder", got)
	}
	if pr.Labels["team"] != "shop" || pr.Labels[LabelApp] != "shop" || pr.Annotations["note"] != "kept" {
		t.Errorf("labels %v annotations %v: want the template's kept and Switchyard's winning", pr.Labels, pr.Annotations)
	}
	if pr.Spec.PipelineRef.Name != "build" || pr.Spec.Params[0].Value.StringVal != "abc" || pr.Spec.Timeouts.Pipeline.Duration != time.Hour {
		t.Errorf("spec not taken from the resource: %+v", pr.Spec)
	}
}

func TestRenderResourceErrors(t *testing.T) {
	tests := []struct{ name, resource, wantErr string }{
		{"not json", `{"apiVersion":`, "decode rendered pipelinerun"},
		{"unknown field", `{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","spec":{"pipelineRef":{"name":"b"},"surprise":1}}`, `unknown field "surprise"`},
		{"not a v1 pipelinerun", `{"apiVersion":"tekton.dev/v1","kind":"TaskRun","spec":{}}`, "rendered resource is tekton.dev/v1 TaskRun"},
		{"tekton validation", `{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","spec":{}}`, "expected exactly one, got neither"},
		{"bad label", `{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","metadata":{"labels":{"x":"not ok!"}},"spec":{"pipelineRef":{"name":"b"}}}`, `label x="not ok!"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(context.Background(), templateWork(tt.resource))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !queue.IsPermanent(err) {
				t.Errorf("Render error = %v, want a permanent error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRenderConcurrency(t *testing.T) {
	w := testWork(func(w *queue.Work) {
		w.Target.Concurrency = &routing.Concurrency{Group: "acme/web-main", Limit: 2, CancelInProgress: true}
	})
	pr, err := Render(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Spec.Status != pipelinev1.PipelineRunSpecStatusPending {
		t.Errorf("spec.status %q: a limited group's run is created pending", pr.Spec.Status)
	}
	if got, want := pr.Labels[LabelConcurrencyGroup], GroupLabelValue(w.Target.App, "acme/web-main"); got != want || len(got) > 63 {
		t.Errorf("group label %q, want %q", got, want)
	}
	if pr.Annotations[AnnotationConcurrencyGroup] != "acme/web-main" || pr.Annotations[AnnotationConcurrencyLimit] != "2" ||
		pr.Annotations[AnnotationCancelInProgress] != "true" {
		t.Errorf("annotations %v", pr.Annotations)
	}
	if GroupLabelValue("web", "g") == GroupLabelValue("api", "g") {
		t.Error("two apps' groups of one name must not share runs")
	}
	w.Target.Concurrency = &routing.Concurrency{Group: "g", CancelInProgress: true}
	if pr, err = Render(context.Background(), w); err != nil || pr.Spec.Status != "" {
		t.Errorf("cancelInProgress alone: spec.status %q, err %v; want a run that starts", pr.Spec.Status, err)
	}
}

// TestRenderRefusesReservedKeys: a template may not set the labels and
// annotations Switchyard acts on (issue 11): with them, one app's template
// could join, cancel or start another app's runs.
func TestRenderRefusesReservedKeys(t *testing.T) {
	tests := []struct{ name, metadata, key string }{
		{"group label", `"labels":{"switchyard.dev/concurrency-group":"0123456789abcdef"}`, "switchyard.dev/concurrency-group"},
		{"cancel annotation", `"annotations":{"switchyard.dev/cancel-in-progress":"true"}`, "switchyard.dev/cancel-in-progress"},
		{"limit annotation", `"annotations":{"switchyard.dev/concurrency-limit":"9"}`, "switchyard.dev/concurrency-limit"},
		{"dispatched-at annotation", `"annotations":{"switchyard.dev/dispatched-at":"2000-01-01T00:00:00Z"}`, "switchyard.dev/dispatched-at"},
		{"app label", `"labels":{"switchyard.dev/app":"forged"}`, "switchyard.dev/app"},
		{"any switchyard.dev key", `"labels":{"switchyard.dev/future":"x"}`, "switchyard.dev/future"},
		{"managed-by label", `"labels":{"app.kubernetes.io/managed-by":"someone"}`, "app.kubernetes.io/managed-by"},
		{"managed-by annotation", `"annotations":{"app.kubernetes.io/managed-by":"switchyard"}`, "app.kubernetes.io/managed-by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := templateWork(`{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","metadata":{` + tt.metadata + `},
				"spec":{"pipelineRef":{"name":"build"}}}`)
			pr, err := Render(context.Background(), w)
			if err == nil {
				t.Fatalf("Render kept %s: labels %v annotations %v", tt.key, pr.Labels, pr.Annotations)
			}
			if !queue.IsPermanent(err) || !errors.Is(err, ErrReservedKey) || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("Render error = %v, want a permanent ErrReservedKey naming %s", err, tt.key)
			}
		})
	}
}

// TestRenderManagedByAlways: every PipelineRun carries the managed-by label
// the run watcher and the concurrency controller select on.
func TestRenderManagedByAlways(t *testing.T) {
	for name, w := range map[string]queue.Work{
		"pipelineRef": testWork(),
		"template": templateWork(`{"apiVersion":"tekton.dev/v1","kind":"PipelineRun",
			"metadata":{"labels":{"app.kubernetes.io/name":"shop"}},"spec":{"pipelineRef":{"name":"build"}}}`),
	} {
		if got := mustRender(t, w).Labels[LabelManagedBy]; got != ManagedBy {
			t.Errorf("%s: %s = %q, want %q", name, LabelManagedBy, got, ManagedBy)
		}
	}
}

// TestMarshalYAMLTypeMeta: a run without apiVersion and kind gets
// tekton.dev/v1 PipelineRun in the YAML (the caller's object unchanged);
// one that has them keeps its own.
func TestMarshalYAMLTypeMeta(t *testing.T) {
	bare := &pipelinev1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "bare"}}
	out, err := MarshalYAML(bare)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "apiVersion: tekton.dev/v1\n") || !strings.Contains(string(out), "kind: PipelineRun\n") {
		t.Errorf("YAML of a run without TypeMeta:\n%s", out)
	}
	if bare.APIVersion != "" || bare.Kind != "" {
		t.Errorf("MarshalYAML changed the caller's run: %+v", bare.TypeMeta)
	}
	typed := &pipelinev1.PipelineRun{TypeMeta: metav1.TypeMeta{APIVersion: "tekton.dev/v1beta1", Kind: "PipelineRun"}}
	if out, err = MarshalYAML(typed); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "apiVersion: tekton.dev/v1beta1\n") {
		t.Errorf("YAML of a v1beta1 run lost its apiVersion:\n%s", out)
	}
}

// TestAnnotationsUseCanonicalExtensionForm: an extension that is not a
// string (here binary) is annotated in CloudEvents' canonical string form
// (base64), not Go's default formatting ("[222 173 190 239]").
func TestAnnotationsUseCanonicalExtensionForm(t *testing.T) {
	pr, err := Render(context.Background(), testWork(func(w *queue.Work) {
		w.Event.SetExtension("revision", []byte{0xde, 0xad, 0xbe, 0xef})
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pr.Annotations[AnnotationRevision], "3q2+7w=="; got != want {
		t.Errorf("revision annotation = %q, want %q", got, want)
	}
}

// TestRenderRulesRevision: the revision of the rules that routed the event
// is on the run, whether rendered from a pipelineRef or a template; a work
// item without one (routed before revisions existed) gets no annotation.
func TestRenderRulesRevision(t *testing.T) {
	const rev = "sha256:ab12cd34ef56,git:0123456789ab"
	for name, w := range map[string]queue.Work{
		"pipelineRef": testWork(),
		"template": templateWork(`{"apiVersion":"tekton.dev/v1","kind":"PipelineRun",
			"metadata":{"annotations":{"team":"shop"}},"spec":{"pipelineRef":{"name":"build"}}}`),
	} {
		w.Target.RulesRevision = rev
		if got := mustRender(t, w).Annotations[AnnotationRulesRevision]; got != rev {
			t.Errorf("%s: %s = %q, want %q", name, AnnotationRulesRevision, got, rev)
		}
	}
	if got, ok := mustRender(t, testWork()).Annotations[AnnotationRulesRevision]; ok {
		t.Errorf("no revision: %s = %q, want unset", AnnotationRulesRevision, got)
	}
	if !IsReservedKey(AnnotationRulesRevision) {
		t.Errorf("%s is not reserved: a template could forge it", AnnotationRulesRevision)
	}
}
