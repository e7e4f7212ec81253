package routing

import (
	"errors"
	"strings"
	"testing"
)

const admitsRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
  - {name: gitlab, kind: gitlab, secret: {env: GL}}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci, prod]
    serviceAccounts: [runner, deployer]
    sources: [github]
    identities: ["endpoint:agent"]
`

const admitsApp = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    run: {pipelineRef: build}
  - name: deploy
    match: {identities: ["endpoint:agent"]}
    run: {pipelineRef: deploy, namespace: prod, serviceAccount: deployer}
`

// TestAdmits: dispatch re-checks a routed target against the rules in
// force; a grant withdrawn after routing refuses it, naming what went.
func TestAdmits(t *testing.T) {
	before := mustLoad(t, map[string]string{"root.yaml": admitsRoot, "apps/web.yaml": admitsApp})
	// The platform team withdraws prod and deployer from web.
	after := mustLoad(t, map[string]string{
		"root.yaml":     strings.NewReplacer("[ci, prod]", "[ci]", "[runner, deployer]", "[runner]").Replace(admitsRoot),
		"apps/web.yaml": strings.Replace(admitsApp, "namespace: prod, serviceAccount: deployer", "namespace: ci", 1),
	})
	build := Target{App: "web", Trigger: "build", Namespace: "ci", ServiceAccount: "runner", PipelineRef: "build"}
	deploy := Target{App: "web", Trigger: "deploy", Namespace: "prod", ServiceAccount: "deployer", PipelineRef: "deploy"}
	with := func(tg Target, f func(*Target)) Target { f(&tg); return tg }
	resource := func(ns, sa, taskSA string) func(*Target) {
		return func(tg *Target) {
			tg.Resource = resourceYAML(t, `apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: x, namespace: `+ns+`}
spec:
  pipelineRef: {name: build}
  taskRunTemplate: {serviceAccountName: `+sa+`}
  taskRunSpecs: [{pipelineTaskName: push, serviceAccountName: `+taskSA+`}]
`)
		}
	}
	for _, tc := range []struct {
		name             string
		rules            *Rules
		source, identity string
		target           Target
		want             string // "" admits
	}{
		{name: "pipelineRef target", rules: before, source: "github", identity: "source:github", target: build},
		{name: "by identity", rules: before, source: "agent", identity: "endpoint:agent", target: deploy},
		{name: "template resource", rules: before, source: "github", target: with(build, resource("ci", "runner", "deployer"))},
		{name: "no such app", rules: before, source: "github", target: with(build, func(tg *Target) { tg.App = "api" }),
			want: `app "api" no longer exists`},
		{name: "no such trigger", rules: before, source: "github", target: with(build, func(tg *Target) { tg.Trigger = "lint" }),
			want: `app "web" no longer has trigger "lint"`},
		{name: "source not granted", rules: before, source: "gitlab", identity: "source:gitlab", target: build,
			want: `app "web" no longer grants source "gitlab" or identity "source:gitlab"`},
		{name: "trigger's own identities", rules: before, source: "github", identity: "source:github", target: deploy,
			want: `trigger "deploy" of app "web" no longer admits source "github" or identity "source:github"`},
		{name: "namespace withdrawn", rules: after, source: "agent", identity: "endpoint:agent", target: deploy,
			want: `app "web" no longer grants namespace "prod"`},
		{name: "service account withdrawn", rules: after, source: "agent", identity: "endpoint:agent", target: with(deploy, func(tg *Target) { tg.Namespace = "ci" }),
			want: `app "web" no longer grants service account "deployer"`},
		{name: "resource namespace withdrawn", rules: after, source: "github", target: with(build, resource("prod", "runner", "runner")),
			want: `app "web" no longer grants namespace "prod"`},
		{name: "resource task service account withdrawn", rules: after, source: "github", target: with(build, resource("ci", "runner", "deployer")),
			want: `app "web" no longer grants service account "deployer"`},
		{name: "resource a TaskRun on a PipelineRun target", rules: before, source: "github", target: with(build, func(tg *Target) {
			tg.Resource = resourceYAML(t, "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: x}\n")
		}), want: `app "web": resource is a TaskRun, the target says PipelineRun`},
		{name: "resource not a run", rules: before, source: "github", target: with(build, func(tg *Target) {
			tg.Resource = resourceYAML(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")
		}), want: `app "web": resource: renders v1 Pod: templates render only tekton.dev PipelineRuns and TaskRuns (tekton.dev/v1 or v1beta1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rules.Admits(tc.source, tc.identity, tc.target)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Admits = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Admits = %v, want %q", err, tc.want)
			}
			if !errors.Is(err, ErrNotGranted) {
				t.Errorf("Admits error %v does not match ErrNotGranted", err)
			}
		})
	}
}

// TestAdmitsAgreesWithRoute: what Route returns, Admits admits under the
// same rules.
func TestAdmitsAgreesWithRoute(t *testing.T) {
	r := mustLoad(t, map[string]string{"root.yaml": admitsRoot, "apps/web.yaml": admitsApp + `  - name: template
    run:
      template:
        spec:
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: x-, namespace: prod}
              spec:
                pipelineRef: {name: build}
                taskRunSpecs: [{pipelineTaskName: push, serviceAccountName: deployer}]
`})
	ev := pushEvent(t, "dev.switchyard.git.push", map[string]string{"identity": "endpoint:agent"}, "")
	got := r.Route(Input{Source: "agent", Event: ev})
	if len(got) != 3 || len(got[2].Resource) == 0 {
		t.Fatalf("Route = %+v, want build, deploy and template", got)
	}
	for _, tg := range got {
		if err := r.Admits("agent", "endpoint:agent", tg); err != nil {
			t.Errorf("Admits(%s/%s) = %v", tg.App, tg.Trigger, err)
		}
	}
}
