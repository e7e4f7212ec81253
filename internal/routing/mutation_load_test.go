package routing

// Tests added for mutants that lived (docs/testing.md, "Mutation testing"):
// each pins one loading rule or default no other test did.

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func loadFiles(files map[string]string, opts Options) (*Rules, error) {
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return Load(fsys, "rules", opts)
}

// Endpoint settings left out take their defaults; set ones are kept. A
// scope may name triggers without listing apps.
func TestEndpointDefaultsAndSettings(t *testing.T) {
	root := testRoot + `    identities: ["endpoint:plain", "endpoint:tuned"]
endpoints:
  - name: plain
    auth:
      oidc: {issuer: https://issuer.example, audience: switchyard, when: "claims.repository == 'acme/bot'"}
    scope: {eventTypes: [com.acme.deploy]}
  - name: tuned
    auth:
      oidc: {issuer: https://issuer.example, audience: switchyard, subjectClaim: repository, when: "claims.repository == 'acme/bot'"}
    scope:
      eventTypes: [com.acme.deploy]
      triggers: [web/build]
      eventsPerMinute: 7
      maxBodyBytes: 2048
`
	r := mustLoad(t, map[string]string{"root.yaml": root, "apps/web.yaml": okWebApp})
	plain, tuned := r.Endpoint("plain"), r.Endpoint("tuned")
	if plain.SubjectClaim != "sub" || tuned.SubjectClaim != "repository" {
		t.Errorf("subject claims %q, %q; want sub (default), repository", plain.SubjectClaim, tuned.SubjectClaim)
	}
	if plain.Scope.EventsPerMinute != DefaultEventsPerMinute || tuned.Scope.EventsPerMinute != 7 {
		t.Errorf("eventsPerMinute %d, %d; want %d (default), 7", plain.Scope.EventsPerMinute, tuned.Scope.EventsPerMinute, DefaultEventsPerMinute)
	}
	if plain.Scope.MaxBodyBytes != DefaultEndpointBody || tuned.Scope.MaxBodyBytes != 2048 {
		t.Errorf("maxBodyBytes %d, %d; want %d (default), 2048", plain.Scope.MaxBodyBytes, tuned.Scope.MaxBodyBytes, DefaultEndpointBody)
	}
}

// apiURL may be plain http (a GitHub Enterprise Server inside the network).
func TestSourceAPIURLSchemes(t *testing.T) {
	root := func(u string) string {
		return `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: GH_SECRET}
    apiURL: ` + u + `
    apiToken: {env: GH_TOKEN}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci]
    sources: [github]
`
	}
	for _, u := range []string{"https://ghe.example/api/v3", "http://ghe.internal/api/v3"} {
		if _, err := loadFiles(map[string]string{"root.yaml": root(u), "apps/web.yaml": okWebApp}, Options{}); err != nil {
			t.Errorf("apiURL %s: %v", u, err)
		}
	}
	wantProblems(t, map[string]string{"root.yaml": root("ftp://ghe.example/api"), "apps/web.yaml": okWebApp},
		[]string{`source "github": apiURL "ftp://ghe.example/api" must be an http(s) URL`})
}

// The kinds' own checks (Options.CheckSource) run on every source.
func TestCheckSourceRuns(t *testing.T) {
	var checked []string
	opts := Options{CheckSource: func(s *Source) error {
		checked = append(checked, s.Name)
		if s.Name == "other" {
			return errors.New("refused by the kind")
		}
		return nil
	}}
	_, err := loadFiles(map[string]string{"root.yaml": testRoot, "apps/web.yaml": okWebApp}, opts)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Msg != `source "other": refused by the kind` {
		t.Fatalf("load: %v; want the one problem the kind check reports", err)
	}
	if len(checked) != 2 {
		t.Errorf("checked %v, want both sources", checked)
	}
}

// A zero timeout is Tekton's "no timeout", not an error.
func TestZeroTimeoutAccepted(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    run: {pipelineRef: build, timeout: 0s}
`
	mustLoad(t, map[string]string{"root.yaml": testRoot, "apps/web.yaml": app})
}

// Every expression in a param value is checked, not only the first.
func TestEveryParamExpressionChecked(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    run:
      pipelineRef: build
      params:
        - {name: both, value: "$(body.ref)-$(bogus.x)"}
`
	wantProblems(t, map[string]string{"root.yaml": testRoot, "apps/web.yaml": app},
		[]string{`param "both": "$(bogus.x)" is not a binding expression`})
}

func TestReloaderDefaults(t *testing.T) {
	r := NewReloader(ReloaderConfig{Dir: t.TempDir()})
	if r.cfg.Debounce != DefaultReloadDebounce || r.cfg.ResolveEvery != DefaultResolveEvery {
		t.Errorf("zero config: debounce %v, resolve every %v; want the defaults", r.cfg.Debounce, r.cfg.ResolveEvery)
	}
	r = NewReloader(ReloaderConfig{Dir: t.TempDir(), Debounce: 7 * time.Millisecond, ResolveEvery: time.Minute})
	if r.cfg.Debounce != 7*time.Millisecond || r.cfg.ResolveEvery != time.Minute {
		t.Errorf("set config: debounce %v, resolve every %v; want 7ms, 1m", r.cfg.Debounce, r.cfg.ResolveEvery)
	}
}

// A tasks or finally timeout alone is checked against Tekton's default
// pipeline timeout, as Tekton would check it at create.
func TestLoneTimeoutsValidated(t *testing.T) {
	for _, field := range []string{"tasks", "finally"} {
		app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    run: {pipelineRef: build, timeouts: {` + field + `: 2h}}
`
		wantProblems(t, map[string]string{"root.yaml": testRoot, "apps/web.yaml": app},
			[]string{`trigger "build": tekton rejects this PipelineRun: invalid value: 2h0m0s should be <= default timeout duration: timeouts.` + field})
	}
}

// An app granted no namespace is refused with that reason, and its
// triggers are still checked (loading goes on to report every problem).
func TestAppWithoutNamespaces(t *testing.T) {
	root := `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH_SECRET}}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: []
    sources: [github]
`
	wantProblems(t, map[string]string{"root.yaml": root, "apps/web.yaml": okWebApp},
		[]string{`app "web": grant at least one namespace`})
}

// An endpoint's when condition is compiled and holds for the claims it
// names only.
func TestEndpointClaimsCondition(t *testing.T) {
	root := testRoot + `    identities: ["endpoint:agent"]
endpoints:
  - name: agent
    auth:
      oidc: {issuer: https://issuer.example, audience: switchyard, when: "claims.repository == 'acme/bot'"}
    scope: {eventTypes: [com.acme.deploy]}
`
	c := mustLoad(t, map[string]string{"root.yaml": root, "apps/web.yaml": okWebApp}).Endpoint("agent").ClaimsWhen
	if c == nil {
		t.Fatal("no claims condition compiled")
	}
	for repo, want := range map[string]bool{"acme/bot": true, "acme/other": false} {
		if ok, err := c.Eval(map[string]any{"repository": repo}); ok != want {
			t.Errorf("repository %s: %v, %v; want %v", repo, ok, err, want)
		}
	}
}

// A glob that matches only Tekton resources delegates no App manifest: the
// load says so.
func TestGlobOfOnlyTektonResources(t *testing.T) {
	root := strings.Replace(testRoot, "manifest: apps/web.yaml", `manifest: "apps/web/*.yaml"`, 1)
	pipeline := `apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: build}
spec:
  tasks:
    - name: t
      taskRef: {name: noop}
`
	wantProblems(t, map[string]string{"root.yaml": root, "apps/web/pipeline.yaml": pipeline},
		[]string{`app "web": its manifest glob matches only Tekton resources, no App manifest`})
}

// A workspace that Kubernetes' decoding refuses with no field to point at
// (a quantity that is not one) is reported at the workspace's line.
func TestWorkspaceDecodeErrorLine(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    run:
      pipelineRef: build
      workspaces:
        - name: source
          volumeClaimTemplate:
            spec: {resources: {requests: {storage: lots}}}
`
	wantProblems(t, map[string]string{"root.yaml": testRoot, "apps/web.yaml": app},
		[]string{`rules/apps/web.yaml:9: trigger "build": workspace: `})
}
