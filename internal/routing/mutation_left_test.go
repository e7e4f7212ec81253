package routing

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/cel-go/common/types"
)

// TestIgnoredTriggersKindsSayWhy: each Tekton Triggers kind Switchyard
// ignores is named with what replaces it; an Interceptor of another API
// group is only "not read".
func TestIgnoredTriggersKindsSayWhy(t *testing.T) {
	file := `apiVersion: triggers.tekton.dev/v1alpha1
kind: TriggerGroup
metadata: {name: group}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: Interceptor
metadata: {name: icpt}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: cicpt}
---
apiVersion: example.com/v1
kind: Interceptor
metadata: {name: foreign}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: push}
spec:
  params:
    - {name: rev, value: $(body.after)}
`
	rules := mustLoad(t, map[string]string{
		"root.yaml":                   templateRoot,
		"apps/shop/tekton/kinds.yaml": file,
		"apps/shop/app.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
resources: ["tekton/*.yaml"]
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    run: {pipelineRef: build}
`,
	})
	var got []string
	for _, w := range rules.Warnings() {
		got = append(got, w.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`kinds.yaml:1: ignored TriggerGroup "group" (triggers.tekton.dev/v1alpha1): Switchyard's triggers are declared in the app manifest`,
		`kinds.yaml:5: ignored Interceptor "icpt" (triggers.tekton.dev/v1alpha1): sources verify webhooks`,
		`kinds.yaml:9: ignored ClusterInterceptor "cicpt" (triggers.tekton.dev/v1alpha1): sources verify webhooks`,
		`kinds.yaml:13: ignored Interceptor "foreign" (example.com/v1): Switchyard reads only TriggerBindings`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q; got:\n%s", want, all)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d warnings, want 4:\n%s", len(got), all)
	}
}

// TestTypeErrorPointsAtItsField: a field of the wrong JSON type is
// reported at its own line, found by its name (the last part of the path
// the decoder gives).
func TestTypeErrorPointsAtItsField(t *testing.T) {
	files := map[string]string{
		"root.yaml": templateRoot,
		"apps/shop/tekton/binding.yaml": `apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata:
  name: push
spec:
  params: "not a list"
`,
		"apps/shop/app.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
resources: ["tekton/*.yaml"]
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    run: {pipelineRef: build}
`,
	}
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	_, err := Load(fsys, "rules", Options{})
	if err == nil || !strings.Contains(err.Error(), "binding.yaml:6:") || !strings.Contains(err.Error(), "spec.params: cannot be a JSON string") {
		t.Fatalf("load error %v, want spec.params refused at binding.yaml:6", err)
	}
}

// TestOverlayOfAnUnsupportedTypeIsAnError: an overlay whose value Tekton
// Triggers' CEL interceptor cannot encode (an unsigned integer) fails with
// an error, as Triggers' does, rather than yielding nothing.
func TestOverlayOfAnUnsupportedTypeIsAnError(t *testing.T) {
	b, err := overlayJSON(types.Uint(7))
	if err == nil {
		t.Fatalf("overlayJSON(7u) = %q, want an error", b)
	}
}

// TestReloadDebounceIsTheDocumentedOne: docs/manifest.md promises a reload
// 300 ms after changes settle.
func TestReloadDebounceIsTheDocumentedOne(t *testing.T) {
	if DefaultReloadDebounce != 300*time.Millisecond {
		t.Fatalf("DefaultReloadDebounce = %s; docs/manifest.md says 300 ms", DefaultReloadDebounce)
	}
}
