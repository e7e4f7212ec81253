package routing

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestMatchTokenFirstListed: a token listed twice (under two names during
// a handover) is reported as its first line, whatever the order of the
// comparisons, which all run.
func TestMatchTokenFirstListed(t *testing.T) {
	hashes, err := parseTokenHashes([]byte(tokenLine("shared", "ci-old") + tokenLine("other", "x") + tokenLine("shared", "ci-new")))
	if err != nil {
		t.Fatal(err)
	}
	e := &Endpoint{Tokens: hashes}
	if name, line, ok := e.MatchToken("shared"); !ok || name != "ci-old" || line != 1 {
		t.Errorf("MatchToken = %q, %d, %v; want ci-old, 1, true", name, line, ok)
	}
}

// TestScopeAllows: an empty list allows anything (types excepted), a
// value the event does not carry always passes.
func TestScopeAllows(t *testing.T) {
	globs := func(p ...string) globList {
		g, err := compileGlobs(p)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	s := &Scope{Apps: []string{"web"}, Triggers: []string{"web/build"}, Environments: []string{"staging"},
		Branches: globs("main"), Refs: globs("refs/tags/v*")}
	apps := &Scope{Apps: []string{"web"}}
	empty := &Scope{}
	for _, tc := range []struct {
		name      string
		got, want bool
	}{
		{"target", s.AllowsTarget("web", "build"), true},
		{"other trigger", s.AllowsTarget("web", "deploy"), false},
		{"other app", s.AllowsTarget("api", "build"), false},
		{"app of apps only", apps.AllowsTarget("web", "x"), true},
		{"other app of apps only", apps.AllowsTarget("api", "x"), false},
		{"any target", empty.AllowsTarget("api", "x"), true},
		{"branch", s.AllowsBranch("main"), true},
		{"other branch", s.AllowsBranch("dev"), false},
		{"no branch", s.AllowsBranch(""), true},
		{"any branch", empty.AllowsBranch("dev"), true},
		{"ref", s.AllowsRef("refs/tags/v1"), true},
		{"other ref", s.AllowsRef("refs/heads/main"), false},
		{"no ref", s.AllowsRef(""), true},
		{"any ref", empty.AllowsRef("refs/heads/main"), true},
		{"environment", s.AllowsEnvironment("staging"), true},
		{"other environment", s.AllowsEnvironment("production"), false},
		{"no environment", s.AllowsEnvironment(""), true},
		{"any environment", empty.AllowsEnvironment("production"), true},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if c, ok := (&Endpoint{}).CallerScope("anyone"); c != nil || !ok {
		t.Errorf("no callers list: CallerScope = %v, %v; want nil, true", c, ok)
	}
}

// TestCallerScopeNarrows: a caller's scope inherits the endpoint's rate and
// may only narrow its rate and its apps.
func TestCallerScopeNarrows(t *testing.T) {
	root := func(callerScope string) string {
		return `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - {name: web, manifest: apps/web.yaml, namespaces: [ci], identities: ["endpoint:e", "endpoint:open"]}
  - {name: api, manifest: apps/api.yaml, namespaces: [ci], identities: ["endpoint:e", "endpoint:open"]}
endpoints:
  - name: e
    auth: {tokens: {env: T}}
    scope: {apps: [web], eventTypes: [x], eventsPerMinute: 10}
    callers:
      - {principal: p, scope: ` + callerScope + `}
  - name: open
    auth: {tokens: {env: T}}
    scope: {eventTypes: [x]}
    callers:
      - {principal: p, scope: {apps: [web], eventTypes: [x]}}
`
	}
	load := func(callerScope string) (*Rules, error) {
		app := func(name string) []byte {
			return []byte("apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: " + name + "\ntriggers:\n  - name: build\n    run: {pipelineRef: build}\n")
		}
		return Load(fstest.MapFS{"root.yaml": {Data: []byte(root(callerScope))}, "apps/web.yaml": {Data: app("web")}, "apps/api.yaml": {Data: app("api")}}, "rules", Options{})
	}
	for scope, want := range map[string]string{
		`{apps: [web], eventTypes: [x]}`:                      "",
		`{apps: [web], eventTypes: [x], eventsPerMinute: 10}`: "",
		`{apps: [web], eventTypes: [x], eventsPerMinute: 5}`:  "",
		`{apps: [web], eventTypes: [x], eventsPerMinute: 11}`: `rules/root.yaml:13: endpoint "e" callers[0]: eventsPerMinute 11 exceeds the endpoint's 10`,
		`{apps: [api], eventTypes: [x]}`:                      `rules/root.yaml:13: endpoint "e" callers[0]: app "api" is not in the endpoint's scope`,
	} {
		_, err := load(scope)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", scope, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: Load = %v, want %q", scope, err, want)
		}
	}
	rules, err := load(`{apps: [web], eventTypes: [x]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := rules.Endpoint("e").Callers[0].Scope.EventsPerMinute; got != 10 {
		t.Errorf("caller's eventsPerMinute %d, want the endpoint's 10", got)
	}
}
