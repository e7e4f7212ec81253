package tektonimport

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// examples is the vendored tektoncd/triggers examples directory.
const examples = "../../test/testdata/tekton-triggers-examples"

func importFiles(t *testing.T, paths ...string) (*Result, string) {
	t.Helper()
	c, err := ReadFiles(paths)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Translate(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if res.Apps() > 0 {
		if err := res.Write(dir, paths); err != nil {
			t.Fatal(err)
		}
	}
	return res, dir
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The GitHub example: the interceptor's secret becomes the source's (the
// same Kubernetes Secret, mounted), its eventTypes and the CEL filter the
// trigger's condition, and the file is copied byte for byte.
func TestImportGitHubExample(t *testing.T) {
	in := filepath.Join(examples, "v1beta1/github/github-eventlistener-interceptor.yaml")
	res, dir := importFiles(t, in)
	if len(res.Notes) != 0 {
		t.Errorf("notes: %v", res.Notes)
	}
	var r root
	readYAML(t, filepath.Join(dir, "root.yaml"), &r)
	if len(r.Sources) != 1 || r.Sources[0].Kind != "github" || r.Sources[0].Secret.File != "/etc/switchyard/secrets/github-secret/secretToken" {
		t.Errorf("sources = %+v", r.Sources)
	}
	if len(r.Apps) != 1 || r.Apps[0].Name != "github-listener" || strings.Join(r.Apps[0].Sources, ",") != "github" ||
		strings.Join(r.Apps[0].Namespaces, ",") != "default" || strings.Join(r.Apps[0].ServiceAccounts, ",") != "default" {
		t.Errorf("apps = %+v", r.Apps)
	}
	var a app
	readYAML(t, filepath.Join(dir, "apps/github-listener/app.yaml"), &a)
	if len(a.Triggers) != 1 {
		t.Fatalf("triggers = %+v", a.Triggers)
	}
	tr := a.Triggers[0]
	wantWhen := `(header.match("X-GitHub-Event", "pull_request")) && (body.action in ['opened', 'synchronize', 'reopened'])`
	if tr.Match.When != wantWhen {
		t.Errorf("when = %s\nwant   %s", tr.Match.When, wantWhen)
	}
	if tr.Run.Template.Ref != "github-template" || len(tr.Run.Bindings) != 1 || tr.Run.Bindings[0].Ref != "github-pr-binding" {
		t.Errorf("run = %+v", tr.Run)
	}
	orig, _ := os.ReadFile(in)
	copied, err := os.ReadFile(filepath.Join(dir, "apps/github-listener", filepath.Base(in)))
	if err != nil || !bytes.Equal(orig, copied) || strings.Join(a.Resources, ",") != filepath.Base(in) {
		t.Errorf("resource not copied unchanged (err %v, resources %v)", err, a.Resources)
	}
}

// A v1alpha1 EventListener with the deprecated interceptor fields is
// upgraded by Tekton Triggers' own defaulting before it is translated.
func TestImportV1alpha1DeprecatedInterceptors(t *testing.T) {
	in := writeTemp(t, "el.yaml", `apiVersion: triggers.tekton.dev/v1alpha1
kind: EventListener
metadata: {name: old, namespace: ci}
spec:
  triggers:
    - name: push
      interceptors:
        - gitlab:
            secretRef: {secretName: gl, secretKey: token}
            eventTypes: ["Push Hook"]
        - cel:
            filter: "body.ref == 'refs/heads/main'"
            overlays:
              - {key: short, expression: "body.checkout_sha.truncate(7)"}
      bindings:
        - {name: revision, value: $(extensions.short)}
      template:
        spec:
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: build-}
              spec:
                pipelineRef: {name: build}
                taskRunTemplate: {serviceAccountName: builder}
`)
	res, dir := importFiles(t, in)
	if len(res.Notes) != 0 {
		t.Errorf("notes: %v", res.Notes)
	}
	var r root
	readYAML(t, filepath.Join(dir, "root.yaml"), &r)
	if len(r.Sources) != 1 || r.Sources[0].Kind != "gitlab" || r.Sources[0].Secret.File != "/etc/switchyard/secrets/gl/token" {
		t.Errorf("sources = %+v", r.Sources)
	}
	if g := r.Apps[0]; strings.Join(g.Namespaces, ",") != "ci" || strings.Join(g.ServiceAccounts, ",") != "default,builder" {
		t.Errorf("grant = %+v", g)
	}
	var a app
	readYAML(t, filepath.Join(dir, "apps/old/app.yaml"), &a)
	tr := a.Triggers[0]
	if want := `(header.match("X-Gitlab-Event", "Push Hook")) && (body.ref == 'refs/heads/main')`; tr.Match.When != want {
		t.Errorf("when = %s", tr.Match.When)
	}
	if len(tr.Overlays) != 1 || tr.Overlays[0] != (overlay{Key: "short", Expression: "body.checkout_sha.truncate(7)"}) {
		t.Errorf("overlays = %+v", tr.Overlays)
	}
	if tr.Run.Namespace != "ci" || tr.Run.Template.Spec == nil {
		t.Errorf("run = %+v", tr.Run)
	}
}

// What Switchyard cannot do faithfully is not written: a trigger fired
// without its interceptor's check would fire more often than before.
func TestImportRefusesWhatItCannotTranslate(t *testing.T) {
	for _, tc := range []struct{ name, interceptor, reason string }{
		{"webhook", `webhook: {objectRef: {kind: Service, name: x, apiVersion: v1}}`, "webhook interceptor"},
		{"custom", `ref: {name: my-interceptor, kind: ClusterInterceptor}`, `"my-interceptor" is not one of`},
		{"compareSecret", `ref: {name: cel}
          params:
            - name: filter
              value: "header.canonical('X-Token').compareSecret('token', 'secret')"`, "compareSecret"},
		{"owners", `ref: {name: github}
          params:
            - name: githubOwners
              value: {enabled: true}`, "githubOwners"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := writeTemp(t, "el.yaml", `apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: el}
spec:
  triggers:
    - name: t
      interceptors:
        - `+tc.interceptor+`
      bindings: [{name: a, value: b}]
      template: {spec: {resourcetemplates: []}}
`)
			res, _ := importFiles(t, in)
			if res.Apps() != 0 || res.Triggers != 0 {
				t.Errorf("wrote %d triggers", res.Triggers)
			}
			found := false
			for _, n := range res.Notes {
				found = found || strings.Contains(n.Reason, tc.reason)
			}
			if !found {
				t.Errorf("no note says %q: %v", tc.reason, res.Notes)
			}
		})
	}
}

// Trigger groups: the group's interceptors run before the selected
// Triggers' own, and only the Triggers whose labels match are taken.
func TestImportTriggerGroups(t *testing.T) {
	dir := filepath.Join(examples, "v1beta1/triggergroups")
	paths, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	extra := writeTemp(t, "other.yaml", `apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: unrelated, labels: {type: gitlab}}
spec:
  bindings: [{name: a, value: b}]
  template: {ref: pipeline-template}
`)
	res, out := importFiles(t, append(paths, extra)...)
	var a app
	readYAML(t, filepath.Join(out, "apps/triggergroups-listener/app.yaml"), &a)
	if len(a.Triggers) != 1 || a.Triggers[0].Name != "trigger" {
		t.Fatalf("triggers = %+v (notes %v)", a.Triggers, res.Notes)
	}
	tr := a.Triggers[0]
	if tr.Match.When != "header.match('X-GitHub-Event', 'pull_request')" || len(tr.Overlays) != 1 || tr.Overlays[0].Key != "truncated_sha" {
		t.Errorf("group interceptors not applied: %+v", tr)
	}
	// No interceptor authenticates: the generic HMAC source, with a note.
	if len(tr.Match.Sources) != 1 || tr.Match.Sources[0] != "generic" || len(res.Notes) != 1 || !strings.Contains(res.Notes[0].Reason, "unauthenticated") {
		t.Errorf("sources %v, notes %v", tr.Match.Sources, res.Notes)
	}
}

// A namespace selector picks the Triggers of those namespaces, and the
// runs go where Tekton Triggers would create them: the Trigger's
// namespace, which the grant then holds.
func TestImportNamespaceSelector(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(examples, "v1beta1/namespace-selector/*.yaml"))
	res, out := importFiles(t, paths...)
	var r root
	readYAML(t, filepath.Join(out, "root.yaml"), &r)
	if len(r.Apps) != 1 || strings.Join(r.Apps[0].Namespaces, ",") != "foo" {
		t.Fatalf("apps = %+v (notes %v)", r.Apps, res.Notes)
	}
	var a app
	readYAML(t, filepath.Join(out, "apps/namespace-selector-listener/app.yaml"), &a)
	if len(a.Triggers) != 1 || a.Triggers[0].Run.Namespace != "foo" {
		t.Errorf("triggers = %+v", a.Triggers)
	}
}

func TestImportRefusesAnExistingRulesDir(t *testing.T) {
	res, dir := importFiles(t, filepath.Join(examples, "v1beta1/github/github-eventlistener-interceptor.yaml"))
	if err := res.Write(dir, nil); err == nil || !strings.Contains(err.Error(), "already holds a root.yaml") {
		t.Errorf("second write: %v", err)
	}
}

func TestImportWithoutEventListener(t *testing.T) {
	c, err := ReadFiles([]string{filepath.Join(examples, "v1beta1/triggerbindings/triggerbinding.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Translate(c); err == nil || !strings.Contains(err.Error(), "no EventListener") {
		t.Errorf("err = %v", err)
	}
}
