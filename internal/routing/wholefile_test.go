package routing

import (
	"encoding/json"
	"strings"
	"testing"
)

// wholeFile is a Tekton Triggers installation file as teams keep it: the
// EventListener, Trigger, Pipeline, RBAC and Secret next to v1alpha1
// bindings and templates.
const wholeFile = `apiVersion: triggers.tekton.dev/v1alpha1
kind: EventListener
metadata:
  name: listener
spec:
  serviceAccountName: tekton-triggers-sa
  triggers:
    - bindings: [{ref: push}]
      template: {ref: build}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata:
  name: on-push
spec:
  bindings: [{ref: push}]
  template: {ref: build}
---
apiVersion: tekton.dev/v1beta1
kind: Pipeline
metadata:
  name: build
spec:
  tasks: []
---
apiVersion: v1
kind: Secret
metadata:
  name: github-secret
stringData: {secretToken: "1234567"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: triggers-binding
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: TriggerBinding
metadata:
  name: push
spec:
  params:
    - name: rev
      value: $(body.head_commit.id)
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterTriggerBinding
metadata:
  name: repo
spec:
  params:
    - name: url
      value: $(body.repository.url)
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: TriggerTemplate
metadata:
  name: build
spec:
  params:
    - name: rev
      description: the commit
    - name: url
  resourcetemplates:
    - apiVersion: tekton.dev/v1beta1
      kind: TaskRun
      metadata:
        generateName: build-
      spec:
        taskRef: {name: build}
        params:
          - {name: rev, value: $(tt.params.rev)}
          - {name: url, value: $(tt.params.url)}
`

// TestWholeTektonFile: a resources file may hold any kinds; the v1alpha1
// bindings and template are used (converted with Tekton Triggers' types)
// and every other object is listed as ignored, the EventListener with what
// replaces it.
func TestWholeTektonFile(t *testing.T) {
	files := map[string]string{
		"root.yaml":                      templateRoot,
		"apps/shop/tekton/triggers.yaml": wholeFile,
		"apps/shop/app.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
resources: ["tekton/*.yaml"]
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    run:
      bindings: [{ref: push}, {ref: repo, kind: ClusterTriggerBinding}]
      template: {ref: build}
`,
	}
	rules := mustLoad(t, files)
	var warnings []string
	for _, w := range rules.Warnings() {
		warnings = append(warnings, w.String())
	}
	all := strings.Join(warnings, "\n")
	for _, want := range []string{
		`triggers.yaml:1: ignored EventListener "listener" (triggers.tekton.dev/v1alpha1): the Switchyard manifest replaces EventListeners`,
		`triggers.yaml:11: ignored Trigger "on-push" (triggers.tekton.dev/v1beta1): Switchyard's triggers are declared in the app manifest`,
		`triggers.yaml:19: ignored Pipeline "build" (tekton.dev/v1beta1): Switchyard reads only TriggerBindings, ClusterTriggerBindings and TriggerTemplates`,
		`triggers.yaml:26: ignored Secret "github-secret" (v1): a webhook secret is read from the file or environment variable a root source names`,
		`triggers.yaml:32: ignored RoleBinding "triggers-binding" (rbac.authorization.k8s.io/v1)`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q; got:\n%s", want, all)
		}
	}
	if len(warnings) != 5 {
		t.Errorf("%d warnings, want 5:\n%s", len(warnings), all)
	}
	if strings.Contains(all, "1234567") {
		t.Error("a warning shows the Secret's data")
	}
	got := rules.Route(Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", nil,
		`{"head_commit":{"id":"abc"},"repository":{"url":"https://example.com/shop"}}`)})
	if len(got) != 1 || got[0].Kind != KindTaskRun {
		t.Fatalf("Route = %+v, want one TaskRun", got)
	}
	var tr struct {
		Spec struct {
			Params []Param `json:"params"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(got[0].Resource, &tr); err != nil {
		t.Fatal(err)
	}
	want := []Param{{"rev", "abc"}, {"url", "https://example.com/shop"}}
	if len(tr.Spec.Params) != 2 || tr.Spec.Params[0] != want[0] || tr.Spec.Params[1] != want[1] {
		t.Errorf("params %+v, want %+v", tr.Spec.Params, want)
	}
}
