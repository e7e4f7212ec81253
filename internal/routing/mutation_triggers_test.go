package routing

import (
	"strings"
	"testing"
)

// TestCancelInProgressOneRun: cancelInProgress is refused only for a
// template of several PipelineRuns; a template of one may declare it.
func TestCancelInProgressOneRun(t *testing.T) {
	head := runsTemplate[:strings.Index(runsTemplate, "  resourcetemplates:\n")]
	one := head + "  resourcetemplates:\n" + runsTemplate[strings.Index(runsTemplate, "    - apiVersion: tekton.dev/v1\n      kind: PipelineRun"):]
	files := runsFiles(runsTrigger + "    concurrency: {cancelInProgress: true}\n")
	files["apps/shop/tekton/tt.yaml"] = one
	if _, err := Load(mapFS(files), "rules", Options{}); err != nil {
		t.Errorf("Load = %v, want cancelInProgress accepted for a template of one PipelineRun", err)
	}
}
