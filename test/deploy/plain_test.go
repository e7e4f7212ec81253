package deploy

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite deploy/kustomize/switchyard.yaml from the chart")

// plainHeader starts the generated plain manifests.
const plainHeader = `# Generated from the Helm chart deploy/helm/switchyard with its default values:
#   helm template switchyard deploy/helm/switchyard --namespace switchyard
# Do not edit: change the chart (or its default values), then run
#   go test ./test/deploy/ -run TestPlainManifestsUpToDate -update
# To change settings without Helm, add patches to kustomization.yaml.
`

// TestPlainManifestsUpToDate: the committed plain manifests equal a fresh
// render of the chart's defaults, so the two cannot drift apart.
func TestPlainManifestsUpToDate(t *testing.T) {
	out, err := helm(t, renderArgs("switchyard", nil, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	want := plainHeader + out
	path := filepath.Join(repoRoot(t), kustomizeDir, "switchyard.yaml")
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(want, "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("%s is not the chart's default render; run go test ./test/deploy/ -run TestPlainManifestsUpToDate -update (-render +file):\n%s", kustomizeDir+"/switchyard.yaml", diff)
	}
	var listed bool
	for _, r := range kustomizationResources(t) {
		listed = listed || r == path
	}
	if !listed {
		t.Errorf("kustomization.yaml does not list switchyard.yaml")
	}
}
