package routing

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

const runsTemplate = `apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata:
  name: ci
spec:
  params:
    - name: rev
    - name: sa
      default: shop-builder
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: TaskRun
      metadata:
        generateName: lint-
        labels: {run-id: $(uid)}
      spec:
        serviceAccountName: $(tt.params.sa)
        taskRef: {name: lint}
        params: [{name: rev, value: $(tt.params.rev)}]
    - apiVersion: tekton.dev/v1beta1
      kind: TaskRun
      metadata:
        generateName: test-
        namespace: shop-release
        labels: {run-id: $(uid)}
      spec:
        taskRef: {name: test}
        params: [{name: rev, value: $(tt.params.rev)}]
        podTemplate: {nodeSelector: {pool: ci}}
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata:
        generateName: build-
      spec:
        pipelineRef: {name: build}
        params: [{name: rev, value: $(tt.params.rev)}]
`

func runsFiles(trigger string) map[string]string {
	return map[string]string{
		"root.yaml":                templateRoot,
		"apps/shop/tekton/tt.yaml": runsTemplate,
		"apps/shop/app.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
resources: ["tekton/*.yaml"]
triggers:
` + trigger,
	}
}

const runsTrigger = `  - name: ci
    match: {types: [dev.switchyard.git.push]}
    run:
      bindings:
        - {name: rev, value: $(extensions.revision)}
        - {name: sa, value: $(header.X-Sa)}
      template: {ref: ci}
`

// TestRouteTemplateRuns: a template renders any number of TaskRuns and
// PipelineRuns (v1beta1 converted to v1), one target each, named per
// (event, app, trigger, index), each held to the grant.
func TestRouteTemplateRuns(t *testing.T) {
	rules := mustLoad(t, runsFiles(runsTrigger))
	in := func(sa string) Input {
		h := http.Header{}
		if sa != "" {
			h.Set("X-Sa", sa)
		}
		return Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", map[string]string{"revision": "abc"}, "{}"), Header: h}
	}
	got := rules.Route(in("shop-signer"))
	want := []struct {
		kind, ns, sa, ref string
	}{
		{KindTaskRun, "shop-ci", "shop-signer", "lint"},
		{KindTaskRun, "shop-release", "shop-builder", "test"},
		{"", "shop-ci", "shop-builder", "build"},
	}
	if len(got) != len(want) {
		t.Fatalf("Route = %d targets, want %d: %+v", len(got), len(want), got)
	}
	names := map[string]bool{}
	var uid string
	for i, w := range want {
		g := got[i]
		if g.Kind != w.kind || g.Index != i || g.Namespace != w.ns || g.ServiceAccount != w.sa || g.PipelineRef != w.ref {
			t.Errorf("target %d = kind %q index %d ns %q sa %q ref %q, want %+v", i, g.Kind, g.Index, g.Namespace, g.ServiceAccount, g.PipelineRef, w)
		}
		if wantName := RunName("shop", "ci", "github", "delivery-1", i); g.Name != wantName {
			t.Errorf("target %d name = %q, want %q", i, g.Name, wantName)
		}
		names[g.Name] = true
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name, Namespace, GenerateName string
				Labels                        map[string]string
			} `json:"metadata"`
		}
		if err := json.Unmarshal(g.Resource, &obj); err != nil {
			t.Fatal(err)
		}
		if obj.APIVersion != "tekton.dev/v1" || obj.Kind != g.RunKind() || obj.Metadata.Name != g.Name || obj.Metadata.Namespace != w.ns || obj.Metadata.GenerateName != "" {
			t.Errorf("resource %d = %s %s %s/%s (generateName %q), want tekton.dev/v1 %s %s/%s", i, obj.APIVersion, obj.Kind, obj.Metadata.Namespace, obj.Metadata.Name, obj.Metadata.GenerateName, g.RunKind(), w.ns, g.Name)
		}
		if id := obj.Metadata.Labels["run-id"]; i < 2 && (uid != "" && id != uid || len(id) != 36) {
			t.Errorf("resource %d run-id %q: one $(uid) per event, got another", i, id)
		} else if i < 2 {
			uid = id
		}
		if err := rules.Admits("github", "", g); err != nil {
			t.Errorf("Admits(target %d) = %v", i, err)
		}
	}
	if names[PipelineRunName("shop", "ci", "github", "delivery-1")] != true || len(names) != 3 {
		t.Errorf("names %v: want 3 distinct, the first PipelineRunName's", names)
	}
	var tr pipelinev1.TaskRun
	if err := json.Unmarshal(got[1].Resource, &tr); err != nil || tr.Spec.PodTemplate == nil || tr.Spec.PodTemplate.NodeSelector["pool"] != "ci" || tr.Spec.Params[0].Value.StringVal != "abc" {
		t.Errorf("v1beta1 TaskRun converted to %+v (err %v), want its podTemplate and params kept", tr.Spec, err)
	}

	d := rules.Explain(in("cluster-admin"))
	if len(d.Targets) != 0 || len(d.Unmatched) != 1 || !strings.Contains(d.Unmatched[0].Reason, `resource 0: service account "cluster-admin" exceeds the grant`) {
		t.Errorf("a TaskRun service account outside the grant: Explain = %+v, want one miss naming it", d)
	}

	// Work routed earlier is held to today's grant by kind.
	mislabelled := got[0]
	mislabelled.Kind = ""
	if err := rules.Admits("github", "", mislabelled); err == nil {
		t.Error("Admits accepted a TaskRun resource on a PipelineRun target")
	}
	var obj map[string]any
	_ = json.Unmarshal(got[0].Resource, &obj)
	obj["spec"].(map[string]any)["serviceAccountName"] = "cluster-admin"
	forged := got[0]
	forged.Resource, _ = json.Marshal(obj)
	if err := rules.Admits("github", "", forged); err == nil || !strings.Contains(err.Error(), "cluster-admin") {
		t.Errorf("Admits(TaskRun as cluster-admin) = %v, want refused", err)
	}
}

// TestTemplateRunsConcurrency: concurrency groups hold PipelineRuns only, so
// a trigger whose template renders a TaskRun may not declare one.
func TestTemplateRunsConcurrency(t *testing.T) {
	_, err := Load(mapFS(runsFiles(runsTrigger+"    concurrency: {cancelInProgress: true}\n")), "rules", Options{})
	if err == nil || !strings.Contains(err.Error(), "concurrency groups hold PipelineRuns") {
		t.Errorf("Load = %v, want concurrency refused for a TaskRun template", err)
	}
	two := strings.Replace(runsTemplate, "kind: TaskRun", "kind: PipelineRun", -1)
	two = strings.Replace(two, "taskRef: {name: lint}", "pipelineRef: {name: lint}", 1)
	two = strings.Replace(two, "taskRef: {name: test}", "pipelineRef: {name: test}", 1)
	two = strings.Replace(two, "        serviceAccountName: $(tt.params.sa)\n", "", 1)
	two = strings.Replace(two, "        podTemplate: {nodeSelector: {pool: ci}}\n", "", 1)
	files := runsFiles(runsTrigger + "    concurrency: {cancelInProgress: true}\n")
	files["apps/shop/tekton/tt.yaml"] = two
	_, err = Load(mapFS(files), "rules", Options{})
	if err == nil || !strings.Contains(err.Error(), "cancelInProgress would cancel each with the next") {
		t.Errorf("Load = %v, want cancelInProgress refused for a template of several runs", err)
	}
	files = runsFiles(runsTrigger + "    concurrency: {limit: 1}\n")
	files["apps/shop/tekton/tt.yaml"] = two
	if _, err := Load(mapFS(files), "rules", Options{}); err != nil {
		t.Errorf("Load with a limit = %v, want it accepted", err)
	}
}

func TestRunName(t *testing.T) {
	if RunName("a", "b", "s", "e", 0) != PipelineRunName("a", "b", "s", "e") {
		t.Error("RunName index 0 differs from PipelineRunName")
	}
	seen := map[string]bool{}
	for _, n := range []string{RunName("a", "b", "s", "e", 0), RunName("a", "b", "s", "e", 1), RunName("a", "b", "s", "e", 2),
		RunName("a", "b", "s", "e\x001", 0), RunName("a", "b", "s2", "e", 1)} {
		if seen[n] {
			t.Errorf("RunName %q repeats", n)
		}
		seen[n] = true
	}
}

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}
