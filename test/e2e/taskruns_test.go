package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestTemplateRendersTaskRunsAndPipelineRun: a Tekton Triggers template
// rendering two TaskRuns (v1 and v1beta1) and a PipelineRun creates all
// three through the router's own RBAC, each once, under its deterministic
// name, across a redelivery of the webhook; what the API server stored
// passes Tekton's validation.
func TestTemplateRendersTaskRunsAndPipelineRun(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-taskruns"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	rules := rulesFor(t, ns, "")
	web := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match: {branches: [main]}
    run:
      bindings:
        - {name: revision, value: $(body.after)}
      template:
        spec:
          params: [{name: revision}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: TaskRun
              metadata: {generateName: lint-}
              spec:
                taskRef: {name: lint}
                params: [{name: revision, value: $(tt.params.revision)}]
            - apiVersion: tekton.dev/v1beta1
              kind: TaskRun
              metadata: {generateName: unit-}
              spec:
                taskRef: {name: unit-test}
                params: [{name: revision, value: $(tt.params.revision)}]
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: build-}
              spec:
                pipelineRef: {name: build}
                params: [{name: revision, value: $(tt.params.revision)}]
`
	if err := os.WriteFile(filepath.Join(rules, "apps", "web.yaml"), []byte(web), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := newSecret(t)
	r := startRouter(t, routerConfig{rulesDir: rules, dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: secret})
	tekton := adminTekton(t)
	for range 2 { // the second is the sender's redelivery
		if code := sendPush(t, r.url, secret, "taskruns-1", samplePush(t)); code != http.StatusAccepted {
			t.Fatalf("status %d, want 202", code)
		}
	}
	taskRunNames := func() []string {
		list, err := tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: "switchyard.dev/app=web"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tr := range list.Items {
			names = append(names, tr.Name)
		}
		slices.Sort(names)
		return names
	}
	waitUntil(t, "two TaskRuns", time.Minute, func() bool { return len(taskRunNames()) >= 2 })
	prs := waitForRunsSettled(t, tekton, ns, 1, time.Minute, r.embeddedNATS(t))

	if want := routing.RunName("web", "build", "github", "taskruns-1", 2); prs[0].Name != want {
		t.Errorf("PipelineRun %q, want %q", prs[0].Name, want)
	}
	want := []string{routing.RunName("web", "build", "github", "taskruns-1", 0), routing.RunName("web", "build", "github", "taskruns-1", 1)}
	slices.Sort(want)
	if got := taskRunNames(); !slices.Equal(got, want) {
		t.Fatalf("TaskRuns %v once all work was acknowledged, want %v", got, want)
	}
	for _, name := range want {
		tr, err := tekton.TektonV1().TaskRuns(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Spec.TaskRef == nil || len(tr.Spec.Params) != 1 || tr.Spec.Params[0].Value.StringVal != "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d" {
			t.Errorf("TaskRun %s spec %+v, want its taskRef and the bound revision", name, tr.Spec)
		}
		if l := tr.Labels; l["triggers.tekton.dev/trigger"] != "build" || l["triggers.tekton.dev/eventlistener"] != "github" || l["triggers.tekton.dev/triggers-eventid"] != "taskruns-1" {
			t.Errorf("TaskRun %s labels %v, want Tekton Triggers' own", name, l)
		}
		if tr.Spec.ServiceAccountName != "pipeline-runner" {
			t.Errorf("TaskRun %s service account %q, want the app's pipeline-runner", name, tr.Spec.ServiceAccountName)
		}
		stored := tr.DeepCopy()
		stored.SetDefaults(ctx)
		if err := stored.Validate(ctx); err != nil {
			t.Errorf("stored TaskRun %s fails Tekton validation: %v", name, err)
		}
	}
	r.stop()
}
