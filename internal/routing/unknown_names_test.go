package routing

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestEndpointScopeUnknownNames: a misspelt app or trigger in an endpoint's
// scope is answered with a suggestion and the names that exist.
func TestEndpointScopeUnknownNames(t *testing.T) {
	_, err := Load(fstest.MapFS{
		"root.yaml": {Data: []byte(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - {name: web, manifest: web.yaml, namespaces: [ci], identities: ["endpoint:bot"]}
endpoints:
  - name: bot
    auth: {tokens: {env: T}}
    scope: {apps: [webb], triggers: [web/biuld], eventTypes: ["com.acme.*"]}
`)},
		"web.yaml": {Data: []byte("apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: web\ntriggers:\n  - {name: build, run: {pipelineRef: b}}\n")},
	}, "rules", Options{})
	if err == nil {
		t.Fatal("loaded a scope naming an app and a trigger that do not exist")
	}
	for _, want := range []string{`no app "webb" (did you mean "web"?); known: web`, `no trigger "web/biuld" (did you mean "web/build"?); known: web/build`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
