package routing

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// TestAdmitsEmptyNamespaces: the target's own namespace is always checked,
// even empty (fail closed); a rendered run without a namespace of its own
// runs in the target's and adds nothing to check.
func TestAdmitsEmptyNamespaces(t *testing.T) {
	rules := mustLoad(t, map[string]string{"root.yaml": admitsRoot, "apps/web.yaml": admitsApp})
	build := Target{App: "web", Trigger: "build", Namespace: "ci", ServiceAccount: "runner", PipelineRef: "build"}
	noNamespace := build
	noNamespace.Namespace = ""
	if err := rules.Admits("github", "source:github", noNamespace); err == nil || err.Error() != `app "web" no longer grants namespace ""` {
		t.Errorf("target without namespace: Admits = %v, want it refused", err)
	}
	withRun := build
	withRun.Resource = resourceYAML(t, "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {name: x}\nspec: {pipelineRef: {name: build}}\n")
	if err := rules.Admits("github", "source:github", withRun); err != nil {
		t.Errorf("rendered run without namespace: Admits = %v, want nil", err)
	}
}

// TestOpensExtensions: an app's callers send their own extensions when it
// grants a cloudevents source, by name or as a source identity, or an
// endpoint's identity; a webhook source's identity does not.
func TestOpensExtensions(t *testing.T) {
	sources := map[string]*Source{"github": {Name: "github", Kind: "github"}, "ce": {Name: "ce", Kind: "cloudevents"}}
	for _, tc := range []struct {
		granted, identities []string
		want                bool
	}{
		{granted: []string{"github"}},
		{granted: []string{"github", "ce"}, want: true},
		{identities: []string{"source:github"}},
		{identities: []string{"source:github", "source:gone"}},
		{identities: []string{"source:ce"}, want: true},
		{identities: []string{"source:github", "endpoint:agent"}, want: true},
		{granted: []string{"github"}, identities: []string{"source:github"}},
	} {
		if got := opensExtensions(tc.granted, tc.identities, sources); got != tc.want {
			t.Errorf("sources %v, identities %v: %v, want %v", tc.granted, tc.identities, got, tc.want)
		}
	}
}

// TestApprovalReferencesChecked: the approvers and triggers of every gate
// (an endpoint's, each app grant's) are checked once apps and endpoints
// exist, each reported at its own gate's line.
func TestApprovalReferencesChecked(t *testing.T) {
	const root = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci]
    sources: [github]
    approval: {triggers: [deploi], approvers: ["endpoint:people"]}
  - name: api
    manifest: apps/api.yaml
    namespaces: [ci]
    sources: [github]
    approval: {triggers: [build], approvers: ["endpoint:nobody"]}
endpoints:
  - name: people
    auth: {tokens: {env: T}}
    scope: {eventTypes: [com.acme.none]}
    approval: {approvers: ["endpoint:ghost", "source:gitlab/alice", "endpoint:people"]}
`
	app := func(name string) []byte {
		return []byte("apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: " + name + "\ntriggers:\n  - name: build\n    run: {pipelineRef: build}\n")
	}
	_, err := Load(fstest.MapFS{"root.yaml": {Data: []byte(root)}, "apps/web.yaml": {Data: app("web")}, "apps/api.yaml": {Data: app("api")}}, "rules", Options{})
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load = %v, want Problems", err)
	}
	want := []string{
		`rules/root.yaml:10: apps[web].approval: no trigger "web/deploi"`,
		`rules/root.yaml:15: apps[api].approval: approver names no endpoint "nobody"`,
		`rules/root.yaml:20: endpoints[people].approval: approver names no endpoint "ghost"`,
		`rules/root.yaml:20: endpoints[people].approval: approver names no source "gitlab"`,
	}
	if len(ps) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("problems do not contain %q:\n%v", w, err)
		}
	}
}
