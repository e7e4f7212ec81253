package routing

import (
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cloudevents/sdk-go/v2/event"
)

const testRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: GH_SECRET}
  - name: other
    kind: github
    secret: {file: /nonexistent}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci, ci-2]
    serviceAccounts: [runner]
    sources: [github]
`

func mustLoad(t testing.TB, files map[string]string) *Rules {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	r, err := Load(fsys, "rules", Options{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return r
}

func pushEvent(t testing.TB, typ string, ext map[string]string, body string) *event.Event {
	t.Helper()
	ev := event.New()
	ev.SetID("delivery-1")
	ev.SetSource("https://github.com/acme/web")
	ev.SetType(typ)
	for k, v := range ext {
		ev.SetExtension(k, v)
	}
	if body != "" {
		if err := ev.SetData(event.ApplicationJSON, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	return &ev
}

func TestRoute(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match:
      types: [dev.switchyard.git.push]
      repositories: ["acme/*"]
      branches: [main, "release/**", "!release/old"]
    run:
      pipelineRef: build
      params:
        - {name: url, value: $(body.repository.clone_url)}
        - {name: rev, value: $(extensions.revision)}
        - {name: who, value: $(header.X-Actor)}
  - name: release
    match:
      types: [dev.switchyard.git.tag]
      tags: ["v*"]
    run:
      pipelineRef: release
      namespace: ci-2
      timeout: 30m
`
	rules := mustLoad(t, map[string]string{"root.yaml": testRoot, "apps/web.yaml": app})
	body := `{"repository":{"clone_url":"https://github.com/acme/web.git"}}`
	header := http.Header{"X-Actor": []string{"octocat"}}

	tests := []struct {
		name   string
		source string
		typ    string
		ext    map[string]string
		want   []Target
		miss   []string // reasons expected (substring), in trigger order
	}{
		{
			name:   "push to main fires build",
			source: "github",
			typ:    "dev.switchyard.git.push",
			ext:    map[string]string{"repository": "acme/web", "branch": "main", "revision": "abc"},
			want: []Target{{
				App: "web", Trigger: "build", Namespace: "ci", ServiceAccount: "runner", PipelineRef: "build",
				Name:   PipelineRunName("web", "build", "github", "delivery-1"),
				Params: []Param{{"url", "https://github.com/acme/web.git"}, {"rev", "abc"}, {"who", "octocat"}},
			}},
			miss: []string{`type "dev.switchyard.git.push" does not match dev.switchyard.git.tag`},
		},
		{
			name:   "excluded branch",
			source: "github",
			typ:    "dev.switchyard.git.push",
			ext:    map[string]string{"repository": "acme/web", "branch": "release/old", "revision": "abc"},
			miss:   []string{`branch "release/old" does not match main, release/**, !release/old`, "does not match dev.switchyard.git.tag"},
		},
		{
			name:   "nested release branch",
			source: "github",
			typ:    "dev.switchyard.git.push",
			ext:    map[string]string{"repository": "acme/web", "branch": "release/2.x/hotfix", "revision": "abc"},
			want: []Target{{
				App: "web", Trigger: "build", Namespace: "ci", ServiceAccount: "runner", PipelineRef: "build",
				Name:   PipelineRunName("web", "build", "github", "delivery-1"),
				Params: []Param{{"url", "https://github.com/acme/web.git"}, {"rev", "abc"}, {"who", "octocat"}},
			}},
			miss: []string{"does not match dev.switchyard.git.tag"},
		},
		{
			name:   "other repository",
			source: "github",
			typ:    "dev.switchyard.git.push",
			ext:    map[string]string{"repository": "evil/web", "branch": "main"},
			miss:   []string{`repository "evil/web" does not match acme/*`, "does not match dev.switchyard.git.tag"},
		},
		{
			name:   "tag fires release in its namespace",
			source: "github",
			typ:    "dev.switchyard.git.tag",
			ext:    map[string]string{"repository": "acme/web", "tag": "v1.2.0"},
			want: []Target{{
				App: "web", Trigger: "release", Namespace: "ci-2", ServiceAccount: "runner", PipelineRef: "release",
				Name: PipelineRunName("web", "release", "github", "delivery-1"), Timeout: "30m",
			}},
			miss: []string{"does not match dev.switchyard.git.push"},
		},
		{
			name:   "source not granted",
			source: "other",
			typ:    "dev.switchyard.git.push",
			ext:    map[string]string{"repository": "acme/web", "branch": "main"},
			miss:   []string{`source "other" is not granted to app "web"`, `source "other" is not granted`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Source: tt.source, Event: pushEvent(t, tt.typ, tt.ext, body), Header: header}
			tt.want = withRevision(tt.want, rules.Revision())
			got := rules.Route(in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Route:\n got  %+v\n want %+v", got, tt.want)
			}
			d := rules.Explain(in)
			if !reflect.DeepEqual(d.Targets, tt.want) {
				t.Errorf("Explain targets differ from Route: %+v", d.Targets)
			}
			if len(d.Unmatched) != len(tt.miss) {
				t.Fatalf("unmatched = %+v, want %d", d.Unmatched, len(tt.miss))
			}
			for i, m := range tt.miss {
				if !strings.Contains(d.Unmatched[i].Reason, m) {
					t.Errorf("unmatched[%d].Reason = %q, want it to contain %q", i, d.Unmatched[i].Reason, m)
				}
			}
		})
	}
}

func TestRouteMissingBindingIsExplained(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    run:
      pipelineRef: build
      params: [{name: x, value: $(body.no.such.field)}]
`
	rules := mustLoad(t, map[string]string{"root.yaml": testRoot, "apps/web.yaml": app})
	in := Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", nil, `{"a":1}`)}
	if got := rules.Route(in); len(got) != 0 {
		t.Fatalf("Route = %+v, want no target when a binding cannot resolve", got)
	}
	d := rules.Explain(in)
	if len(d.Unmatched) != 1 || !strings.Contains(d.Unmatched[0].Reason, "render params") {
		t.Fatalf("Explain = %+v, want a render params reason", d.Unmatched)
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		root string
		app  string
		want []string // each problem, "file:line: message" substring
	}{
		{
			name: "unknown field",
			root: strings.Replace(testRoot, "kind: Root", "kind: Root\nsurprise: true", 1),
			want: []string{`rules/root.yaml:3: unknown field "surprise"`},
		},
		{
			name: "secret inline is refused",
			root: strings.Replace(testRoot, "secret: {env: GH_SECRET}", "secret: {value: hunter2}", 1),
			want: []string{`rules/root.yaml:6: unknown field "value"; valid here: env, file`},
		},
		{
			name: "no secret",
			root: strings.Replace(testRoot, "    secret: {env: GH_SECRET}\n", "", 1),
			want: []string{`rules/root.yaml:4: source "github": secret is required`},
		},
		{
			name: "app exceeds its grant",
			app: `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    run:
      pipelineRef: build
      namespace: kube-system
      serviceAccount: admin
`,
			want: []string{
				`rules/apps/web.yaml:8: trigger "build": namespace "kube-system" exceeds the grant of app "web" (namespaces: ci, ci-2)`,
				`rules/apps/web.yaml:9: trigger "build": service account "admin" exceeds the grant of app "web"`,
			},
		},
		{
			name: "endpoints fail closed",
			root: testRoot + `endpoints:
  - name: open-door
    scope: {eventTypes: [x]}
  - name: confused
    auth:
      oidc: {issuer: https://issuer.example, audience: a, algorithms: [HS256, none], when: "claims.repo =="}
    scope:
      apps: [web, ghost]
      triggers: [web/nope, build]
  - name: github
    auth: {tokens: {env: T}}
    scope: {eventTypes: [x], eventsPerMinute: -1}
`,
			want: []string{
				`rules/root.yaml:17: endpoint "open-door": auth needs oidc or tokens (fail closed`,
				`rules/root.yaml:21: endpoint "confused": algorithm "HS256" is not accepted`,
				`rules/root.yaml:21: endpoint "confused": algorithm "none" is not accepted`,
				`rules/root.yaml:21: endpoint "confused": when: column 15: Syntax error`,
				`rules/root.yaml:22: endpoint "confused": scope.eventTypes is required`,
				`rules/root.yaml:23: endpoint "confused": app "web" does not grant identity "endpoint:confused"`,
				`rules/root.yaml:23: endpoint "confused": no app "ghost"`,
				`rules/root.yaml:24: endpoint "confused": trigger "build" must be written app/trigger`,
				`rules/root.yaml:24: endpoint "confused": no trigger "web/nope"`,
				`rules/root.yaml:25: endpoint "github" has the name of a source`,
				`rules/root.yaml:27: endpoint "github": eventsPerMinute must not be negative`,
			},
		},
		{
			name: "concurrency without effect, negative limit, bad group",
			app: `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: a
    concurrency: {group: x}
    run: {pipelineRef: build}
  - name: b
    concurrency: {limit: -1, group: "$(nope.x)"}
    run: {pipelineRef: build}
`,
			want: []string{
				`rules/apps/web.yaml:6: trigger "a": concurrency needs cancelInProgress: true or a limit above 0`,
				`rules/apps/web.yaml:9: trigger "b": concurrency.limit -1 must not be negative`,
				`rules/apps/web.yaml:9: param "concurrency.group": "$(nope.x)" is not a binding expression`,
			},
		},
		{
			name: "every problem at once",
			app: `apiVersion: switchyard.dev/v1alpha1
kind: App
name: webb
triggers:
  - name: Build
    match:
      branches: ["[unclosed"]
    run:
      params: [{name: "bad name", value: "$(nope.x)"}]
`,
			want: []string{
				`rules/apps/web.yaml:3: app manifest names app "webb"`,
				`rules/apps/web.yaml:5: trigger name "Build" must be a DNS label`,
				`rules/apps/web.yaml:7: branches: invalid glob "[unclosed"`,
				`rules/apps/web.yaml:8: trigger "Build": run.pipelineRef is required`,
				`rules/apps/web.yaml:9: param name "bad name"`,
				`rules/apps/web.yaml:9: param "bad name": "$(nope.x)" is not a binding expression`,
			},
		},
		{
			name: "missing app file",
			root: strings.Replace(testRoot, "apps/web.yaml", "apps/missing.yaml", 1),
			want: []string{"rules/apps/missing.yaml: read: file does not exist"},
		},
		{
			name: "manifest outside the rules dir",
			root: strings.Replace(testRoot, "apps/web.yaml", "../etc/passwd", 1),
			want: []string{`rules/root.yaml:12: app "web": manifest "../etc/passwd" must be a relative path inside the rules directory`},
		},
	}
	okApp := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    run: {pipelineRef: build}
`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, app := tt.root, tt.app
			if root == "" {
				root = testRoot
			}
			if app == "" {
				app = okApp
			}
			fsys := fstest.MapFS{"root.yaml": {Data: []byte(root)}, "apps/web.yaml": {Data: []byte(app)}}
			_, err := Load(fsys, "rules", Options{})
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Load error = %v, want Problems", err)
			}
			if len(ps) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(ps), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems do not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestResolveSecretsFailsClosed(t *testing.T) {
	fsys := fstest.MapFS{
		"root.yaml":     {Data: []byte(testRoot)},
		"apps/web.yaml": {Data: []byte("apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: web\n")},
	}
	env := func(string) (string, bool) { return "", false }
	_, err := Load(fsys, "rules", Options{ResolveSecrets: true, LookupEnv: env})
	if err == nil {
		t.Fatal("Load succeeded with no secrets available")
	}
	for _, w := range []string{"secret environment variable GH_SECRET is not set", `source "other": read secret file`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	env = func(k string) (string, bool) { return "s3cret-" + k, true }
	fsys["root.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(testRoot, "secret: {file: /nonexistent}", "secret: {env: OTHER}", 1))}
	r, err := Load(fsys, "rules", Options{ResolveSecrets: true, LookupEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Source("github").Secret); got != "s3cret-GH_SECRET" {
		t.Errorf("secret = %q", got)
	}
}

func TestUnknownSourceKind(t *testing.T) {
	fsys := fstest.MapFS{
		"root.yaml":     {Data: []byte(strings.Replace(testRoot, "kind: github\n    secret: {file", "kind: gitlab\n    secret: {file", 1))},
		"apps/web.yaml": {Data: []byte("apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: web\n")},
	}
	_, err := Load(fsys, "rules", Options{SourceKinds: []string{"github"}})
	if err == nil || !strings.Contains(err.Error(), `rules/root.yaml:8: source "other": unknown kind "gitlab" (known: github)`) {
		t.Fatalf("err = %v", err)
	}
}

func TestPipelineRunName(t *testing.T) {
	a := PipelineRunName("web", "build", "github", "id-1")
	if a != PipelineRunName("web", "build", "github", "id-1") {
		t.Fatal("name is not deterministic")
	}
	if a == PipelineRunName("web", "build", "github-org", "id-1") {
		t.Fatal("the same delivery id on another source must get another name")
	}
	long := PipelineRunName(strings.Repeat("a", 63), strings.Repeat("b", 63), "s", "id")
	if len(long) > 63 || !nameRE.MatchString(long) {
		t.Fatalf("name %q is not a DNS label", long)
	}
}

func TestShippedRules(t *testing.T) {
	r, err := LoadDir("../../rules", Options{SourceKinds: []string{"github"}})
	if err != nil {
		t.Fatalf("the shipped rules/ must load: %v", err)
	}
	if r.Source("github") == nil || r.Source("github").SecretEnv() != "GITHUB_WEBHOOK_SECRET" {
		t.Fatal("rules/ must declare source github with secret env GITHUB_WEBHOOK_SECRET")
	}
	body, err := os.ReadFile("../../test/testdata/github/push.json")
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"repository": "acme/web", "branch": "main", "revision": "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d", "actor": "octocat", "identity": "source:github"}
	// The sample push to acme/web main fires web/build only, in namespace
	// ci with pipelineRef build-and-test, with or without changed files.
	for _, changes := range []*Changes{nil, {Files: []string{"web/index.html"}, Complete: true}} {
		got := r.Route(Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", ext, string(body)), Changes: changes})
		if len(got) != 1 || got[0].App != "web" || got[0].Trigger != "build" || got[0].Namespace != "ci" || got[0].PipelineRef != "build-and-test" {
			t.Fatalf("sample push fired %+v, want web/build in ci running build-and-test", got)
		}
	}
	// The same push to a payments repository runs the payments template,
	// unless it only changed documentation.
	ext["repository"] = "acme/payments-api"
	in := Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", ext, string(body)), Changes: &Changes{Files: []string{"src/pay.go"}, Complete: true}}
	got := r.Route(in)
	if len(got) != 1 || got[0].Trigger != "build" || got[0].Namespace != "payments-ci" || got[0].ServiceAccount != "payments-builder" || len(got[0].Resource) == 0 {
		t.Fatalf("payments push fired %+v, want payments/build from its template", got)
	}
	in.Changes = &Changes{Files: []string{"docs/a.md", "README.md"}, Complete: true}
	if got := r.Route(in); len(got) != 0 {
		t.Fatalf("a docs-only payments push fired %+v", got)
	}
}
