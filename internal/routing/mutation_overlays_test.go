package routing

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOverlaysWithoutChangedFiles: a trigger whose bindings read overlays
// but not changed_files still gets the overlays' results.
func TestOverlaysWithoutChangedFiles(t *testing.T) {
	files := overlayFiles(t, "")
	files["apps/shop/app.yaml"] = strings.Replace(files["apps/shop/app.yaml"], "        - {name: files, value: $(extensions.changed_files)}\n", "", 1)
	rules := mustLoad(t, files)
	in := Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", map[string]string{"revision": "abc"}, overlayPush), Header: http.Header{"X-Tier": []string{"gold"}}}
	got := rules.Route(in)
	if len(got) != 1 {
		t.Fatalf("Route = %+v", rules.Explain(in))
	}
	want := []Param{{"sha", "0123456"}, {"branch", "release/v2"}, {"repo", "shop"}, {"tier", "gold"}, {"release", "true"}, {"commits", "2"}, {"revision", "abc"}}
	if diff := cmp.Diff(want, got[0].Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
}
