package routing

// Tests for mutants of overlays.go that lived in the 859f522 run
// (docs/mutation-routing-bcd.md).

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Overlays alone (no $(extensions.changed_files)) are computed too, next to
// the event's own extensions.
func TestMutOverlaysWithoutChangedFiles(t *testing.T) {
	rules := mustLoad(t, map[string]string{
		"root.yaml": templateRoot,
		"apps/shop/app.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    overlays:
      - {key: short_sha, expression: "body.head_commit.id.truncate(7)"}
    run:
      pipelineRef: build
      params:
        - {name: sha, value: $(extensions.short_sha)}
        - {name: revision, value: $(extensions.revision)}
`,
	})
	in := Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", map[string]string{"revision": "abc"}, overlayPush), Header: http.Header{}}
	got := rules.Route(in)
	if len(got) != 1 {
		t.Fatalf("Route = %+v", rules.Explain(in))
	}
	if diff := cmp.Diff([]Param{{"sha", "0123456"}, {"revision", "abc"}}, got[0].Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
}
