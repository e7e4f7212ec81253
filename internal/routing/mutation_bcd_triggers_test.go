package routing

// Tests for mutants of triggers.go and render.go that lived in the 859f522
// run (docs/mutation-routing-bcd.md).

import (
	"net/http"
	"strings"
	"testing"
)

// oneRunTemplate renders a single PipelineRun; params is its params list.
func oneRunTemplate(params string) string {
	return `apiVersion: triggers.tekton.dev/v1beta1
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
      kind: PipelineRun
      metadata:
        generateName: build-
      spec:
        pipelineRef: {name: build}
        params: ` + params + `
`
}

// cancelInProgress is refused only for a template of several runs: one
// PipelineRun per event may cancel the one before.
func TestMutCancelInProgressOneRun(t *testing.T) {
	files := runsFiles(runsTrigger + "    concurrency: {cancelInProgress: true}\n")
	files["apps/shop/tekton/tt.yaml"] = oneRunTemplate("[{name: rev, value: $(tt.params.rev)}]")
	if _, err := Load(mapFS(files), "rules", Options{}); err != nil {
		t.Errorf("Load = %v, want cancelInProgress accepted for a template of one run", err)
	}
}

// A rendered run that cannot be encoded (a param without a value, which
// Tekton's types refuse to marshal) is a miss, never a target without a
// resource.
func TestMutRunThatCannotBeEncoded(t *testing.T) {
	files := runsFiles(runsTrigger)
	files["apps/shop/tekton/tt.yaml"] = oneRunTemplate("[{name: rev}]")
	rules := mustLoad(t, files)
	in := Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", map[string]string{"revision": "abc"}, "{}"), Header: http.Header{}}
	if got := rules.Route(in); len(got) != 0 {
		t.Fatalf("Route = %d targets (resource %q), want none", len(got), got[0].Resource)
	}
	d := rules.Explain(in)
	if len(d.Unmatched) != 1 || !strings.Contains(d.Unmatched[0].Reason, "ParamValues") {
		t.Errorf("Explain = %+v, want one miss saying the param cannot be encoded", d)
	}
}
