package routing

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Routing tests as Alertmanager writes them: a manifest inline as YAML, an
// input event, the expected targets, and why every other trigger missed.

// routeCase is one event and what it must fire.
type routeCase struct {
	name    string
	source  string // "github" when empty
	typ     string
	ext     map[string]string
	body    string
	header  http.Header
	changes *Changes
	want    []Target
	// misses maps "app/trigger" to a substring of its miss reason; every
	// trigger that does not fire is listed.
	misses map[string]string
}

func runRouteCases(t *testing.T, files map[string]string, cases []routeCase) {
	t.Helper()
	rules := mustLoad(t, files)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			source := tc.source
			if source == "" {
				source = "github"
			}
			in := Input{Source: source, Event: pushEvent(t, tc.typ, tc.ext, tc.body), Header: tc.header, Changes: tc.changes}
			got := rules.Route(in)
			if diff := diffTargets(withRevision(tc.want, rules.Revision()), got); diff != "" {
				t.Errorf("Route (-want +got):\n%s", diff)
			}
			d := rules.Explain(in)
			if diff := diffTargets(got, d.Targets); diff != "" {
				t.Errorf("Explain targets differ from Route (-route +explain):\n%s", diff)
			}
			misses := map[string]string{}
			for _, m := range d.Unmatched {
				misses[m.App+"/"+m.Trigger] = m.Reason
			}
			for key, want := range tc.misses {
				if got, ok := misses[key]; !ok {
					t.Errorf("%s fired or was not explained, want a miss containing %q", key, want)
				} else if !strings.Contains(got, want) {
					t.Errorf("%s miss reason = %q, want it to contain %q", key, got, want)
				}
			}
			for key, reason := range misses {
				if _, ok := tc.misses[key]; !ok {
					t.Errorf("unexpected miss %s: %s", key, reason)
				}
			}
		})
	}
}

// diffTargets compares targets, the rendered resources as PipelineRuns.
func diffTargets(want, got []Target) string {
	return cmp.Diff(want, got, cmp.Transformer("pipelinerun", func(raw json.RawMessage) *pipelinev1.PipelineRun {
		if len(raw) == 0 {
			return nil
		}
		var pr pipelinev1.PipelineRun
		if err := json.Unmarshal(raw, &pr); err != nil {
			return &pipelinev1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "undecodable: " + err.Error()}}
		}
		return &pr
	}))
}

// resourceYAML turns a PipelineRun written as YAML into a Target.Resource.
func resourceYAML(t *testing.T, y string) json.RawMessage {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func name(app, trigger string) string {
	return PipelineRunName(app, trigger, "github", "delivery-1")
}

const delegationRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
  - {name: gitea, kind: github, secret: {env: GITEA}}
  - {name: agents, kind: github, secret: {env: AGENTS}}
apps:
  - name: web
    manifest: apps/web/*.yaml
    namespaces: [web-ci]
    sources: [github, gitea]
    identities: ["agent:release-bot"]
  - name: api
    manifest: apps/api.yaml
    namespaces: [api-ci]
    serviceAccounts: [api-runner]
    identities: ["source:github"]
    eventTypes: ["dev.switchyard.git.*"]
`

// TestRouteDelegation: who may trigger an app (its grant's sources and
// identities), narrowed per trigger; event types bounded by the grant;
// fan-out across apps in name order and across an app's files in path
// order.
func TestRouteDelegation(t *testing.T) {
	files := map[string]string{
		"root.yaml": delegationRoot,
		"apps/web/a.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    run: {pipelineRef: build}
  - name: from-gitea
    match: {types: [dev.switchyard.git.push], sources: [gitea]}
    run: {pipelineRef: mirror}
`,
		"apps/web/b.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: release
    match: {identities: ["agent:release-bot"]}
    run: {pipelineRef: release}
`,
		"apps/api.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: api
triggers:
  - name: build
    match:
      types: [dev.switchyard.git.push]
      repositories: [acme/api, acme/api]
    run: {pipelineRef: build}
`,
	}
	push := "dev.switchyard.git.push"
	cases := []routeCase{
		{
			name: "webhook source github fires both apps, apps by name",
			typ:  push, ext: map[string]string{"repository": "acme/api", "identity": "source:github"},
			want: []Target{
				{App: "api", Trigger: "build", Namespace: "api-ci", Name: name("api", "build"), ServiceAccount: "api-runner", PipelineRef: "build"},
				{App: "web", Trigger: "build", Namespace: "web-ci", Name: name("web", "build"), PipelineRef: "build"},
			},
			misses: map[string]string{
				"web/from-gitea": `source "github" / identity "source:github" is not among the trigger's sources (gitea)`,
				"web/release":    `is not among the trigger's sources () or identities (agent:release-bot)`,
			},
		},
		{
			name: "gitea is granted to web only", source: "gitea",
			typ: push, ext: map[string]string{"repository": "acme/api", "identity": "source:gitea"},
			want: []Target{
				{App: "web", Trigger: "build", Namespace: "web-ci", Name: PipelineRunName("web", "build", "gitea", "delivery-1"), PipelineRef: "build"},
				{App: "web", Trigger: "from-gitea", Namespace: "web-ci", Name: PipelineRunName("web", "from-gitea", "gitea", "delivery-1"), PipelineRef: "mirror"},
			},
			misses: map[string]string{
				"api/build":   `source "gitea" is not granted to app "api", nor identity "source:gitea" (sources: none; identities: source:github)`,
				"web/release": "is not among the trigger's sources",
			},
		},
		{
			name: "an agent identity reaches only what names it", source: "agents",
			typ: "dev.switchyard.release.requested", ext: map[string]string{"identity": "agent:release-bot"},
			want: []Target{
				{App: "web", Trigger: "release", Namespace: "web-ci", Name: PipelineRunName("web", "release", "agents", "delivery-1"), PipelineRef: "release"},
			},
			misses: map[string]string{
				"api/build":      `source "agents" is not granted to app "api", nor identity "agent:release-bot"`,
				"web/build":      `type "dev.switchyard.release.requested" does not match dev.switchyard.git.push`,
				"web/from-gitea": "does not match dev.switchyard.git.push",
			},
		},
		{
			name: "an unknown identity on a granted source is still the source's", source: "github",
			typ: push, ext: map[string]string{"repository": "acme/web", "identity": "agent:intruder"},
			want: []Target{
				{App: "web", Trigger: "build", Namespace: "web-ci", Name: name("web", "build"), PipelineRef: "build"},
			},
			misses: map[string]string{
				"api/build":      `source "github" is not granted to app "api", nor identity "agent:intruder"`,
				"web/from-gitea": "is not among the trigger's sources",
				"web/release":    "is not among the trigger's sources",
			},
		},
		{
			name: "event type outside the grant", typ: "com.github.issues",
			ext: map[string]string{"repository": "acme/api", "identity": "source:github"},
			misses: map[string]string{
				"api/build":      `event type "com.github.issues" is not granted to app "api"`,
				"web/build":      "does not match",
				"web/from-gitea": "does not match",
				"web/release":    "is not among the trigger's sources",
			},
		},
	}
	runRouteCases(t, files, cases)
}

const conditionsRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci]
    sources: [github]
`

// TestRouteConditions: changed paths, actors and CEL conditions.
func TestRouteConditions(t *testing.T) {
	files := map[string]string{
		"root.yaml": conditionsRoot,
		"apps/web.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: code
    match:
      paths: ["src/**", "go.mod", "!src/**/*_test.go"]
    run: {pipelineRef: build}
  - name: humans
    match:
      actors: ["!dependabot[bot]", "!renovate[bot]"]
    run: {pipelineRef: build}
  - name: maintainers
    match:
      actors: [alice, bob]
    run: {pipelineRef: build}
  - name: opened
    match:
      when: >-
        body.action == 'opened' && header.match('X-GitHub-Event', 'pull_request') &&
        extensions.repository.split('/')[0] == 'acme' && event.type.startsWith('com.github.') &&
        body.pull_request.head.sha.truncate(7) == 'abcdef0' &&
        body.pull_request.url.parseURL().host == 'api.github.com' &&
        body.payload.parseJSON().ok == true && requestURL == '/v1/hooks/github'
    run: {pipelineRef: review}
  - name: no-body
    match:
      when: "event.subject == 'refs/heads/main'"
    run: {pipelineRef: build}
`,
	}
	all := func(except ...string) map[string]string {
		m := map[string]string{}
		for _, k := range []string{"web/code", "web/humans", "web/maintainers", "web/opened", "web/no-body"} {
			if !slices.Contains(except, k) {
				m[k] = ""
			}
		}
		return m
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[0+i]] = kv[i+1]
		}
		return m
	}
	tgt := func(trigger, ref string, notes ...string) Target {
		return Target{App: "web", Trigger: trigger, Namespace: "ci", Name: name("web", trigger), PipelineRef: ref, Notes: notes}
	}
	prBody := `{"action":"opened","payload":"{\"ok\":true}","pull_request":{"head":{"sha":"abcdef0123"},"url":"https://api.github.com/repos/acme/web/pulls/1"}}`
	prHeader := http.Header{"X-Github-Event": []string{"pull_request"}}
	cases := []routeCase{
		{
			name: "a source change fires code", typ: "dev.switchyard.git.push",
			ext:     map[string]string{"actor": "dependabot[bot]"},
			changes: &Changes{Files: []string{"README.md", "src/pkg/a.go"}, Complete: true},
			want:    []Target{tgt("code", "build")},
			misses: with(all("web/code"),
				"web/humans", `actor "dependabot[bot]" is denied`,
				"web/maintainers", `actor "dependabot[bot]" is not among alice, bob`,
				"web/opened", "is false",
				"web/no-body", `when "event.subject == 'refs/heads/main'" is false`),
		},
		{
			name: "only excluded and unlisted files", typ: "dev.switchyard.git.push",
			ext:     map[string]string{"actor": "alice"},
			changes: &Changes{Files: []string{"docs/a.md", "src/x/a_test.go"}, Complete: true},
			want:    []Target{tgt("humans", "build"), tgt("maintainers", "build")},
			misses: with(all("web/humans", "web/maintainers"),
				"web/code", `no changed file matches paths src/**, go.mod, !src/**/*_test.go (2 files changed)`,
				"web/opened", "is false",
				"web/no-body", "is false"),
		},
		{
			name: "truncated push: paths match, with a note", typ: "dev.switchyard.git.push",
			ext:     map[string]string{"actor": "renovate[bot]"},
			changes: &Changes{Files: []string{"docs/a.md"}, Reason: "the push payload lists 20 commits"},
			want:    []Target{tgt("code", "build", "paths not checked: the push payload lists 20 commits; treated as matched")},
			misses: with(all("web/code"),
				"web/humans", "is denied",
				"web/maintainers", "is not among",
				"web/opened", "is false",
				"web/no-body", "is false"),
		},
		{
			name: "deferred check: the target carries it for dispatch", typ: "dev.switchyard.git.push",
			ext: map[string]string{"actor": "renovate[bot]"},
			changes: &Changes{Files: []string{"docs/a.md"}, Reason: "the push payload lists 20 commits",
				Deferred: &ChangesQuery{Repository: "acme/web", Before: "b1", After: "a2"}},
			want: []Target{func() Target {
				t := tgt("code", "build", "paths checked at dispatch: the push payload lists 20 commits")
				t.PathsCheck = &PathsCheck{Source: "github", ChangesQuery: ChangesQuery{Repository: "acme/web", Before: "b1", After: "a2"},
					Paths: []string{"src/**", "go.mod", "!src/**/*_test.go"}, Reason: "the push payload lists 20 commits"}
				return t
			}()},
			misses: with(all("web/code"),
				"web/humans", "is denied",
				"web/maintainers", "is not among",
				"web/opened", "is false",
				"web/no-body", "is false"),
		},
		{
			name: "no changed-file list at all: paths match, with a note", typ: "dev.switchyard.git.tag",
			want: []Target{
				tgt("code", "build", "paths not checked: the event lists no changed files; treated as matched"),
				tgt("humans", "build"),
			},
			misses: with(all("web/code", "web/humans"),
				"web/maintainers", "event has no actor",
				"web/opened", "is false",
				"web/no-body", "is false"),
		},
		{
			name: "CEL with Tekton Triggers' functions", typ: "com.github.pull_request",
			ext: map[string]string{"repository": "acme/web", "actor": "bob"}, body: prBody, header: prHeader,
			changes: &Changes{Files: []string{}, Complete: true},
			want:    []Target{tgt("humans", "build"), tgt("maintainers", "build"), tgt("opened", "review")},
			misses: with(all("web/humans", "web/maintainers", "web/opened"),
				"web/code", "(0 files changed)",
				"web/no-body", "is false"),
		},
		{
			name: "CEL on a body that is not JSON", typ: "com.github.pull_request",
			ext: map[string]string{"actor": "bob"}, body: `[1, 2]`, header: prHeader,
			changes: &Changes{Files: []string{"src/a.go"}, Complete: true},
			want:    []Target{tgt("code", "build"), tgt("humans", "build"), tgt("maintainers", "build")},
			misses: with(all("web/code", "web/humans", "web/maintainers"),
				"web/opened", "when: body is not a JSON object",
				"web/no-body", "is false"),
		},
	}
	runRouteCases(t, files, cases)

	// The subject condition needs no body: it fires on a body that is not
	// even JSON.
	rules := mustLoad(t, files)
	ev := pushEvent(t, "x", nil, "")
	ev.SetSubject("refs/heads/main")
	_ = ev.SetData("text/plain", []byte("not json"))
	got := rules.Route(Input{Source: "github", Event: ev, Changes: &Changes{Complete: true}})
	if len(got) != 2 || got[1].Trigger != "no-body" {
		t.Errorf("Route = %+v, want humans and no-body", got)
	}
}

// TestRoutePipelineRun: workspaces, timeouts, service account and params of
// a pipelineRef run reach the target.
func TestRoutePipelineRun(t *testing.T) {
	files := map[string]string{
		"root.yaml": testRoot,
		"apps/web.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: release
    match: {tags: ["v*"]}
    run:
      pipelineRef: release
      namespace: ci-2
      timeouts: {pipeline: 2h, tasks: 90m, finally: 15m}
      params:
        - {name: version, value: "v=$(extensions.tag)"}
        - {name: static, value: "fixed"}
      workspaces:
        - name: source
          volumeClaimTemplate:
            spec:
              accessModes: [ReadWriteOnce]
              resources: {requests: {storage: 1Gi}}
        - {name: cache, persistentVolumeClaim: {claimName: go-cache}, subPath: mod}
        - {name: creds, secret: {secretName: registry}}
        - {name: scratch, emptyDir: {}}
`,
	}
	runRouteCases(t, files, []routeCase{{
		name: "tag", typ: "dev.switchyard.git.tag", ext: map[string]string{"tag": "v1.2.0"},
		want: []Target{{
			App: "web", Trigger: "release", Namespace: "ci-2", Name: name("web", "release"), ServiceAccount: "runner", PipelineRef: "release",
			Timeout: "2h", TasksTimeout: "90m", FinallyTimeout: "15m",
			Params: []Param{{"version", "v=v1.2.0"}, {"static", "fixed"}},
			Workspaces: []pipelinev1.WorkspaceBinding{
				{Name: "source", VolumeClaimTemplate: &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				}}},
				{Name: "cache", SubPath: "mod", PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "go-cache"}},
				{Name: "creds", Secret: &corev1.SecretVolumeSource{SecretName: "registry"}},
				{Name: "scratch", EmptyDir: &corev1.EmptyDirVolumeSource{}},
			},
		}},
	}})
}

func TestRouteConcurrency(t *testing.T) {
	files := map[string]string{
		"root.yaml": testRoot,
		"apps/web.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: deploy
    match: {branches: [main]}
    concurrency:
      group: $(extensions.repository)-$(extensions.branch)
      cancelInProgress: true
    run: {pipelineRef: deploy}
  - name: build
    match: {branches: [main]}
    concurrency: {limit: 2}
    run: {pipelineRef: build}
`,
	}
	runRouteCases(t, files, []routeCase{{
		name: "group resolved per event, default group app/trigger", typ: "dev.switchyard.git.push",
		ext: map[string]string{"branch": "main", "repository": "acme/web"},
		want: []Target{
			{App: "web", Trigger: "deploy", Namespace: "ci", Name: name("web", "deploy"), ServiceAccount: "runner", PipelineRef: "deploy",
				Concurrency: &Concurrency{Group: "acme/web-main", CancelInProgress: true}},
			{App: "web", Trigger: "build", Namespace: "ci", Name: name("web", "build"), ServiceAccount: "runner", PipelineRef: "build",
				Concurrency: &Concurrency{Group: "web/build", Limit: 2}},
		},
	}})
}

const templateRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: shop
    manifest: apps/shop/*.yaml
    namespaces: [shop-ci, shop-release]
    serviceAccounts: [shop-builder, shop-signer]
    sources: [github]
`

const shopBinding = `apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata:
  name: push
spec:
  params:
    - name: url
      value: $(body.repository.clone_url)
    - name: rev
      value: $(extensions.revision)
---
apiVersion: triggers.tekton.dev/v1beta1
kind: ClusterTriggerBinding
metadata:
  name: who
spec:
  params:
    - name: who
      value: $(header.X-Actor)
`

const shopTemplate = `apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata:
  name: build
spec:
  params:
    - name: url
    - name: rev
    - name: who
      default: nobody
    - name: ns
      default: shop-ci
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata:
        generateName: build-
        namespace: $(tt.params.ns)
        labels: {run-id: $(uid)}
      spec:
        pipelineRef: {name: build}
        params:
          - {name: url, value: $(tt.params.url)}
          - {name: rev, value: $(tt.params.rev)}
          - {name: who, value: $(tt.params.who)}
        taskRunSpecs:
          - {pipelineTaskName: sign, serviceAccountName: shop-signer}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata:
  name: legacy
spec:
  params:
    - name: rev
  resourcetemplates:
    - apiVersion: tekton.dev/v1beta1
      kind: PipelineRun
      metadata:
        name: ignored
      spec:
        serviceAccountName: shop-signer
        pipelineRef: {name: legacy}
        params:
          - {name: rev, value: $(tt.params.rev)}
        timeout: 1h
`

// TestRouteTemplate: Tekton Triggers bindings and templates, from resource
// files unchanged or inline; the PipelineRun is named by Switchyard, held to
// the grant, v1beta1 converted to v1.
func TestRouteTemplate(t *testing.T) {
	files := map[string]string{
		"root.yaml":                   templateRoot,
		"apps/shop/tekton/tb.yaml":    shopBinding,
		"apps/shop/tekton/tt.yaml":    shopTemplate,
		"apps/shop/triggers.yaml":     "",
		"apps/shop/zz-not-an-app.txt": "",
	}
	files["apps/shop/triggers.yaml"] = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
resources: ["tekton/*.yaml"]
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    run:
      bindings:
        - ref: push
        - {ref: who, kind: ClusterTriggerBinding}
        - {name: ns, value: $(header.X-Namespace)}
      template: {ref: build}
  - name: legacy
    match: {types: [dev.switchyard.git.push]}
    run:
      bindings: [{name: rev, value: $(extensions.revision)}]
      template: {ref: legacy}
  - name: inline
    match: {types: [dev.switchyard.git.tag]}
    run:
      namespace: shop-release
      bindings: [{name: tag, value: $(extensions.tag)}]
      template:
        spec:
          params: [{name: tag}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              spec:
                pipelineRef: {name: release}
                params: [{name: tag, value: $(tt.params.tag)}]
`
	body := `{"repository":{"clone_url":"https://example.com/shop.git"}}`
	buildRun := func(ns string) string {
		return `apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  name: ` + name("shop", "build") + `
  namespace: ` + ns + `
  labels: {run-id: RUNID}
spec:
  pipelineRef: {name: build}
  params:
    - {name: url, value: https://example.com/shop.git}
    - {name: rev, value: abc}
    - {name: who, value: octocat}
  taskRunTemplate: {serviceAccountName: shop-builder}
  taskRunSpecs:
    - {pipelineTaskName: sign, serviceAccountName: shop-signer}
`
	}
	legacyRun := `apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  name: ` + name("shop", "legacy") + `
  namespace: shop-ci
spec:
  pipelineRef: {name: legacy}
  params: [{name: rev, value: abc}]
  taskRunTemplate: {serviceAccountName: shop-signer}
  timeouts: {pipeline: 1h}
`
	rules := mustLoad(t, files)
	withRunID := func(y string, in Input) string {
		// $(uid) is derived from the PipelineRun name, so it is the same
		// on every delivery of one event.
		got := rules.Route(in)
		if len(got) == 0 {
			return y
		}
		var pr pipelinev1.PipelineRun
		_ = json.Unmarshal(got[0].Resource, &pr)
		id := pr.Labels["run-id"]
		if len(id) != 36 || strings.Contains(id, "$(") {
			t.Errorf("run-id label %q is not a rendered $(uid)", id)
		}
		if again := rules.Route(in); string(again[0].Resource) != string(got[0].Resource) {
			t.Error("rendering one event twice differs")
		}
		return strings.Replace(y, "RUNID", id, 1)
	}
	push := func(ns string) Input {
		h := http.Header{"X-Actor": []string{"octocat"}}
		if ns != "" {
			h.Set("X-Namespace", ns)
		}
		return Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", map[string]string{"revision": "abc"}, body), Header: h}
	}
	cases := []routeCase{
		{
			name: "push renders both templates", typ: "dev.switchyard.git.push",
			ext: map[string]string{"revision": "abc"}, body: body,
			header: http.Header{"X-Actor": []string{"octocat"}, "X-Namespace": []string{"shop-ci"}},
			want: []Target{
				{App: "shop", Trigger: "build", Namespace: "shop-ci", Name: name("shop", "build"), ServiceAccount: "shop-builder", PipelineRef: "build",
					Resource: resourceYAML(t, withRunID(buildRun("shop-ci"), push("shop-ci")))},
				{App: "shop", Trigger: "legacy", Namespace: "shop-ci", Name: name("shop", "legacy"), ServiceAccount: "shop-signer", PipelineRef: "legacy",
					Resource: resourceYAML(t, legacyRun)},
			},
			misses: map[string]string{"shop/inline": "does not match dev.switchyard.git.tag"},
		},
		{
			name: "a templated namespace outside the grant is refused", typ: "dev.switchyard.git.push",
			ext: map[string]string{"revision": "abc"}, body: body,
			header: http.Header{"X-Actor": []string{"octocat"}, "X-Namespace": []string{"kube-system"}},
			want: []Target{
				{App: "shop", Trigger: "legacy", Namespace: "shop-ci", Name: name("shop", "legacy"), ServiceAccount: "shop-signer", PipelineRef: "legacy",
					Resource: resourceYAML(t, legacyRun)},
			},
			misses: map[string]string{
				"shop/build":  `template "build": namespace "kube-system" exceeds the grant of app "shop" (namespaces: shop-ci, shop-release)`,
				"shop/inline": "does not match",
			},
		},
		{
			name: "a missing header falls back to the template's default", typ: "dev.switchyard.git.push",
			ext: map[string]string{"revision": "abc"}, body: body,
			header: http.Header{"X-Actor": []string{"octocat"}},
			want: []Target{
				{App: "shop", Trigger: "build", Namespace: "shop-ci", Name: name("shop", "build"), ServiceAccount: "shop-builder", PipelineRef: "build",
					Resource: resourceYAML(t, withRunID(buildRun("shop-ci"), push("")))},
				{App: "shop", Trigger: "legacy", Namespace: "shop-ci", Name: name("shop", "legacy"), ServiceAccount: "shop-signer", PipelineRef: "legacy",
					Resource: resourceYAML(t, legacyRun)},
			},
			misses: map[string]string{"shop/inline": "does not match"},
		},
		{
			name: "inline template in the trigger's namespace", typ: "dev.switchyard.git.tag",
			ext: map[string]string{"tag": "v2"},
			want: []Target{{
				App: "shop", Trigger: "inline", Namespace: "shop-release", Name: name("shop", "inline"), ServiceAccount: "shop-builder", PipelineRef: "release",
				Resource: resourceYAML(t, `apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: `+name("shop", "inline")+`, namespace: shop-release}
spec:
  pipelineRef: {name: release}
  params: [{name: tag, value: v2}]
  taskRunTemplate: {serviceAccountName: shop-builder}
`),
			}},
			misses: map[string]string{"shop/build": "does not match", "shop/legacy": "does not match"},
		},
	}
	runRouteCases(t, files, cases)
}

// TestRouteTemplateParamValueBreaksJSON: a value that breaks the rendered
// JSON is a miss with its reason, never a half-rendered run.
func TestRouteTemplateParamValueBreaksJSON(t *testing.T) {
	files := map[string]string{
		"root.yaml":                templateRoot,
		"apps/shop/tekton/tt.yaml": shopTemplate,
		"apps/shop/app.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
resources: [tekton/tt.yaml]
triggers:
  - name: legacy
    run:
      bindings: [{name: rev, value: $(header.X-Rev)}]
      template: {ref: legacy}
`,
	}
	rules := mustLoad(t, files)
	in := Input{Source: "github", Event: pushEvent(t, "x", nil, `{}`), Header: http.Header{"X-Rev": []string{`a", "evil": "b`}}}
	d := rules.Explain(in)
	if len(d.Targets) == 1 {
		var pr map[string]any
		if err := json.Unmarshal(d.Targets[0].Resource, &pr); err != nil {
			t.Fatalf("resource is not JSON: %v", err)
		}
		if strings.Contains(string(d.Targets[0].Resource), `"evil":"b"`) {
			t.Fatalf("a header value injected a field: %s", d.Targets[0].Resource)
		}
		return
	}
	if len(d.Unmatched) != 1 || !strings.Contains(d.Unmatched[0].Reason, `template "legacy"`) {
		t.Fatalf("Explain = %+v", d)
	}
}

// TestRouteWhenErrorIsExplained: an expression that fails on the event (a
// missing key) is a miss whose reason is CEL's error.
func TestRouteWhenErrorIsExplained(t *testing.T) {
	files := map[string]string{
		"root.yaml": conditionsRoot,
		"apps/web.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: draft
    match: {when: "body.pull_request.draft == false"}
    run: {pipelineRef: build}
  - name: dyn
    match: {when: "body.count"}
    run: {pipelineRef: build}
`,
	}
	runRouteCases(t, files, []routeCase{
		{name: "missing key", typ: "x", body: `{"action":"opened"}`,
			misses: map[string]string{"web/draft": "no such key: pull_request", "web/dyn": "no such key: count"}},
		{name: "dyn is checked at run time", typ: "x", body: `{"pull_request":{"draft":false},"count":3}`,
			want:   []Target{{App: "web", Trigger: "draft", Namespace: "ci", Name: name("web", "draft"), PipelineRef: "build"}},
			misses: map[string]string{"web/dyn": "evaluated to 3 (double), not a bool"}},
	})
}
