package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestTransientCreateErrorsAreRetried: the API server answers the first
// creates with 503 (a proxy injects them, without the Retry-After that
// would make client-go retry on its own). Dispatch must keep the
// work and retry it, never ack it as done or dead-letter it: the run is
// created once the API server answers again.
func TestTransientCreateErrorsAreRetried(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-transient"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	proxy, kubeconfig := viaProxy(t, kubeconfig)
	proxy.FailCreates(2, http.StatusServiceUnavailable)
	secret := newSecret(t)
	r := startRouterArgs(t, routerConfig{rulesDir: rulesFor(t, ns, ""), dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: secret},
		"--retry-base", "100ms", "--retry-max", "2s")
	if code := sendPush(t, r.url, secret, "transient-1", samplePush(t)); code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", code)
	}
	waitForRunsSettled(t, adminTekton(t), ns, 1, time.Minute, r.embeddedNATS(t))
	c := proxy.Counts()
	if c.Failed != 2 {
		t.Errorf("the proxy failed %d creates, want 2 (%s)", c.Failed, c)
	}
	if want := routing.PipelineRunName("web", "build", "github", "transient-1"); !slices.Equal(c.Created, []string{want}) {
		t.Errorf("created %v after the failures, want [%s]", c.Created, want)
	}
	r.stop()
}

// TestTemplateRunIsStoredValid: a Tekton Triggers-style template (with the
// generateName such templates carry) is dispatched under the router's
// deterministic name, with its bound params, and the object the API server
// stored passes Tekton's own defaulting and validation.
func TestTemplateRunIsStoredValid(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-template"
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
        - {name: repo, value: $(body.repository.name)}
      template:
        spec:
          params: [{name: revision}, {name: repo}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: web-build-}
              spec:
                pipelineRef: {name: build-$(tt.params.repo)}
                params:
                  - {name: revision, value: $(tt.params.revision)}
`
	if err := os.WriteFile(filepath.Join(rules, "apps", "web.yaml"), []byte(web), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := newSecret(t)
	r := startRouter(t, routerConfig{rulesDir: rules, dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: secret})
	if code := sendPush(t, r.url, secret, "template-1", samplePush(t)); code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", code)
	}
	pr := waitForRunsSettled(t, adminTekton(t), ns, 1, 30*time.Second, r.embeddedNATS(t))[0]
	if want := routing.PipelineRunName("web", "build", "github", "template-1"); pr.Name != want {
		t.Errorf("name %q, want the deterministic %q (generateName would duplicate on redelivery)", pr.Name, want)
	}
	if pr.Spec.PipelineRef == nil || pr.Spec.PipelineRef.Name != "build-web" {
		t.Errorf("pipelineRef %+v, want build-web", pr.Spec.PipelineRef)
	}
	if len(pr.Spec.Params) != 1 || pr.Spec.Params[0].Value.StringVal != "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d" {
		t.Errorf("params %+v, want revision bound from the body", pr.Spec.Params)
	}
	stored := pr.DeepCopy()
	stored.SetDefaults(ctx)
	if err := stored.Validate(ctx); err != nil {
		t.Errorf("stored PipelineRun fails Tekton validation: %v", err)
	}
	r.stop()
}
