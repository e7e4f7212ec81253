package routing

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
)

// wantProblems loads files and checks the load fails with exactly the
// problems listed, each a "file:line: message" substring.
func wantProblems(t *testing.T, files map[string]string, want []string) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	_, err := Load(fsys, "rules", Options{})
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load error = %v, want Problems", err)
	}
	if len(ps) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("problems do not contain %q:\n%v", w, err)
		}
	}
}

func TestIsCredentialHeader(t *testing.T) {
	for _, h := range []string{
		"Authorization", "authorization", "Proxy-Authorization", "Cookie",
		"X-Hub-Signature", "X-Hub-Signature-256", "x-gitlab-token", "X-Gitea-Signature", "X-Gogs-Signature",
		"X-Forgejo-Signature", "X-Nexus-Webhook-Signature", "X-JFrog-Event-Auth", "X-Signature",
		"X-Switchyard-Signature", "X-Auth-Token", "X-Api-Key", "X-Client-Secret", "X-Password", "X-Amz-Security-Token",
	} {
		if !IsCredentialHeader(h) {
			t.Errorf("IsCredentialHeader(%q) = false, want true", h)
		}
	}
	for _, h := range []string{"X-GitHub-Event", "X-GitHub-Delivery", "X-Gitlab-Event", "X-Event-Key", "Idempotency-Key", "Content-Type", "X-Request-Id", "X-Author"} {
		if IsCredentialHeader(h) {
			t.Errorf("IsCredentialHeader(%q) = true, want false", h)
		}
	}
}

// credRoot has a source whose token comes in a custom header.
const credRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: GH_SECRET}
  - name: registry
    kind: harbor
    header: x-registry-key
    secret: {env: REG_SECRET}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci]
    sources: [github, registry]
`

func TestStripCredentials(t *testing.T) {
	r := mustLoad(t, map[string]string{"root.yaml": credRoot, "apps/web.yaml": "apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: web\n"})
	h := http.Header{
		"Authorization":  {"Bearer x"},
		"X-Gitlab-Token": {"t"},
		"X-Registry-Key": {"k"},
		"X-Github-Event": {"push"},
	}
	got := r.StripCredentials(h)
	if len(got) != 1 || got.Get("X-GitHub-Event") != "push" {
		t.Fatalf("StripCredentials = %v, want only X-Github-Event", got)
	}
	got["X-Github-Event"][0] = "changed"
	if h.Get("X-GitHub-Event") != "push" || len(h) != 4 {
		t.Fatal("StripCredentials changed its argument")
	}
	if r.StripCredentials(nil) != nil {
		t.Fatal("StripCredentials(nil) != nil")
	}
}

// TestLoadRefusesCredentialHeaders: no binding, template, concurrency group
// or condition may read a header that carries a credential.
func TestLoadRefusesCredentialHeaders(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
resources: [tekton.yaml]
triggers:
  - name: params
    concurrency: {group: "$(header.X-Registry-Key)", cancelInProgress: true}
    run:
      pipelineRef: build
      params:
        - {name: a, value: $(header.X-Gitlab-Token)}
        - {name: b, value: "$(header['authorization'])"}
        - {name: c, value: $(body.x($(header.Authorization)))}
        - {name: d, value: $(header)}
        - {name: ok, value: $(header.X-GitHub-Event)}
  - name: template
    run:
      bindings:
        - ref: sig
        - {name: rev, value: $(header.x-hub-signature-256)}
      template:
        spec:
          params: [{name: rev}, {name: sig}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata:
                generateName: x-
                annotations: {cookie: $(header.Cookie)}
              spec: {pipelineRef: {name: build}}
  - name: when-index
    match: {when: "header['x-gitlab-token'][0] == 'a'"}
    run: {pipelineRef: build}
  - name: when-select
    match: {when: "has(header.authorization)"}
    run: {pipelineRef: build}
  - name: when-functions
    match: {when: "header.canonical('X-Hub-Signature-256') != '' || header.match('X-Gitea-Signature', 'x') || 'X-Registry-Key' in header"}
    run: {pipelineRef: build}
  - name: when-fine
    match: {when: "header.match('X-GitHub-Event', 'token') && header['X-Github-Event'][0] != 'secret'"}
    run: {pipelineRef: build}
`
	tekton := `apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: sig}
spec:
  params:
    - {name: sig, value: "$(header.X-Nexus-Webhook-Signature)"}
`
	wantProblems(t, map[string]string{"root.yaml": credRoot, "apps/web.yaml": app, "apps/tekton.yaml": tekton}, []string{
		`rules/apps/tekton.yaml:6: param "sig": "$(header.X-Nexus-Webhook-Signature)" reads credential header X-Nexus-Webhook-Signature`,
		`rules/apps/web.yaml:7: param "concurrency.group": "$(header.X-Registry-Key)" reads credential header X-Registry-Key`,
		`rules/apps/web.yaml:11: param "a": "$(header.X-Gitlab-Token)" reads credential header X-Gitlab-Token`,
		`rules/apps/web.yaml:12: param "b": "$(header['authorization'])" reads credential header Authorization`,
		`rules/apps/web.yaml:13: param "c": "$(header.Authorization)" reads credential header Authorization`,
		`rules/apps/web.yaml:14: param "d": "$(header)" must name one header`,
		`rules/apps/web.yaml:20: param "rev": "$(header.x-hub-signature-256)" reads credential header X-Hub-Signature-256`,
		`rules/apps/web.yaml:25: trigger "template": template.spec: "$(header.Cookie)" reads credential header Cookie`,
		`rules/apps/web.yaml:32: trigger "when-index": when reads credential header "x-gitlab-token"`,
		`rules/apps/web.yaml:35: trigger "when-select": when reads credential header "authorization"`,
		`rules/apps/web.yaml:38: trigger "when-functions": when reads credential header "X-Hub-Signature-256"`,
		`rules/apps/web.yaml:38: trigger "when-functions": when reads credential header "X-Gitea-Signature"`,
		`rules/apps/web.yaml:38: trigger "when-functions": when reads credential header "X-Registry-Key"`,
	})
}

// TestRouteStripsCredentials: a condition or binding that reaches headers
// without naming them sees no credential.
func TestRouteStripsCredentials(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match: {when: "size(header) == 1 && header.exists(k, k == 'X-Github-Event')"}
    run:
      pipelineRef: build
      params: [{name: event, value: $(header.X-GitHub-Event)}]
`
	r := mustLoad(t, map[string]string{"root.yaml": credRoot, "apps/web.yaml": app})
	h := http.Header{"Authorization": {"Bearer x"}, "X-Registry-Key": {"k"}, "X-Hub-Signature-256": {"sha256=00"}, "X-Github-Event": {"push"}}
	got := r.Route(Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", nil, ""), Header: h})
	if len(got) != 1 || got[0].Params[0].Value != "push" {
		t.Fatalf("Route = %+v, want web/build with event=push: the condition saw credential headers", got)
	}
}
