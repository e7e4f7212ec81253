package routing

// Tests for NOT COVERED mutants of tekton_load.go in the 859f522 run, run
// by hand (docs/mutation-routing-bcd.md).

import (
	"strings"
	"testing"
)

// A trigger's template is a ref or an inline spec, never both.
func TestMutTemplateRefAndSpec(t *testing.T) {
	trigger := strings.Replace(runsTrigger, "template: {ref: ci}", "template: {ref: ci, spec: {resourcetemplates: []}}", 1)
	wantProblems(t, runsFiles(trigger), []string{`trigger "ci": template has a ref or a spec, not both`})
}
