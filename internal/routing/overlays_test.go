package routing

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	triggerscel "github.com/tektoncd/triggers/pkg/interceptors/cel"
)

const overlayPush = `{"ref":"refs/heads/release/v2","head_commit":{"id":"0123456789abcdef"},
"repository":{"full_name":"acme/shop"},
"commits":[{"added":["a.go"],"modified":["b.go","docs/x.md"],"removed":[]},{"added":[],"modified":["a.go"],"removed":["old.txt"]}]}`

// overlays are CEL overlays as teams write them in Tekton's CEL
// interceptor: a truncated sha, a nested key, a split, a map, a bool, a
// number, a list.
var overlays = []overlaySpec{
	{"short_sha", "body.head_commit.id.truncate(7)"},
	{"git.branch", "body.ref.split('/').slice(2, 4).join('/')"},
	{"git.repo", "body.repository.full_name.split('/')[1]"},
	{"labels", "{'team': 'shop', 'tier': header.canonical('X-Tier')}"},
	{"is_release", "body.ref.startsWith('refs/heads/release/')"},
	{"commits", "size(body.commits)"},
	{"files", "body.commits.map(c, c.modified).flatten()"},
}

func overlayFiles(t testing.TB, extra string) map[string]string {
	t.Helper()
	var b strings.Builder
	for _, o := range overlays {
		b.WriteString("      - {key: " + o.Key + ", expression: " + strings.ReplaceAll(mustJSON(t, o.Expression), "\\u0026", "&") + "}\n")
	}
	return map[string]string{
		"root.yaml": templateRoot,
		"apps/shop/app.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    overlays:
` + b.String() + `    run:
      pipelineRef: build
      params:
        - {name: sha, value: $(extensions.short_sha)}
        - {name: branch, value: $(extensions.git.branch)}
        - {name: repo, value: $(extensions.git.repo)}
        - {name: tier, value: $(extensions.labels.tier)}
        - {name: release, value: $(extensions.is_release)}
        - {name: commits, value: $(extensions.commits)}
        - {name: files, value: $(extensions.changed_files)}
        - {name: revision, value: $(extensions.revision)}
` + extra,
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOverlays: bindings read CEL overlays' results as $(extensions.<key>)
// (nested keys too), computed exactly as Tekton Triggers' CEL interceptor
// computes them, and changed_files as its GitHub interceptor does for a
// push.
func TestOverlays(t *testing.T) {
	rules := mustLoad(t, overlayFiles(t, ""))
	header := http.Header{"X-Tier": []string{"gold"}}
	in := Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", map[string]string{"revision": "abc"}, overlayPush), Header: header}
	got := rules.Route(in)
	if len(got) != 1 {
		t.Fatalf("Route = %+v", rules.Explain(in))
	}
	want := []Param{
		{"sha", "0123456"}, {"branch", "release/v2"}, {"repo", "shop"}, {"tier", "gold"}, {"release", "true"}, {"commits", "2"},
		{"files", "a.go,b.go,docs/x.md,a.go,old.txt"}, {"revision", "abc"},
	}
	if diff := cmp.Diff(want, got[0].Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}

	// The same overlays through Tekton Triggers' own interceptor.
	params := map[string]any{"overlays": overlays}
	var ip map[string]any
	_ = json.Unmarshal([]byte(mustJSON(t, params)), &ip)
	resp := triggerscel.NewInterceptor(nil).Process(context.Background(), &triggersv1.InterceptorRequest{
		Body: overlayPush, Header: header, InterceptorParams: ip,
		Context: &triggersv1.TriggerContext{EventURL: "http://el", EventID: "x", TriggerID: "namespaces/ci/triggers/build"},
	})
	if !resp.Continue {
		t.Fatalf("tekton's interceptor: %v", resp.Status)
	}
	st := &routeState{in: &in, ext: in.Event.Extensions(), rules: rules}
	ours, err := rules.apps[0].triggers[0].extensions(st)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range resp.Extensions {
		if diff := cmp.Diff(v, ours[k]); diff != "" {
			t.Errorf("extension %s differs from Tekton's (-tekton +switchyard):\n%s", k, diff)
		}
	}
}

// TestOverlayErrors: an overlay that fails for an event does not fire the
// trigger (explained); a binding that reads an extension nobody provides is
// refused at load, or only warned of where callers send their own.
func TestOverlayErrors(t *testing.T) {
	rules := mustLoad(t, overlayFiles(t, ""))
	in := Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", nil, `{"ref":"refs/heads/main"}`)}
	d := rules.Explain(in)
	if len(d.Targets) != 0 || len(d.Unmatched) != 1 || !strings.Contains(d.Unmatched[0].Reason, `overlay "short_sha"`) {
		t.Errorf("Explain = %+v, want a miss naming the overlay", d)
	}

	files := overlayFiles(t, "")
	files["apps/shop/app.yaml"] = strings.Replace(files["apps/shop/app.yaml"], "$(extensions.short_sha)", "$(extensions.shortsha)", 1)
	_, err := Load(mapFS(files), "rules", Options{})
	if err == nil || !strings.Contains(err.Error(), `"$(extensions.shortsha)" reads extension "shortsha", which no overlay of the trigger and no Switchyard event provides`) {
		t.Errorf("Load = %v, want the unknown extension refused", err)
	}

	files["root.yaml"] = strings.Replace(templateRoot, "  - {name: github, kind: github, secret: {env: GH}}", "  - {name: github, kind: cloudevents, secret: {env: GH}}", 1)
	r, err := Load(mapFS(files), "rules", Options{})
	if err != nil {
		t.Fatalf("Load with a cloudevents source = %v, want a warning only", err)
	}
	if w := r.Warnings(); len(w) != 1 || !strings.Contains(w[0].Msg, "kept, as the app's callers may send their own extensions") {
		t.Errorf("warnings = %v", w)
	}

	files = overlayFiles(t, "")
	files["apps/shop/app.yaml"] = strings.Replace(files["apps/shop/app.yaml"], "body.head_commit.id.truncate(7)", "body.head_commit.id.truncate(", 1)
	if _, err := Load(mapFS(files), "rules", Options{}); err == nil || !strings.Contains(err.Error(), `overlay "short_sha"`) {
		t.Errorf("Load = %v, want the overlay's syntax error", err)
	}
	files = overlayFiles(t, "")
	files["apps/shop/app.yaml"] = strings.Replace(files["apps/shop/app.yaml"], "header.canonical('X-Tier')", "header.canonical('Authorization')", 1)
	if _, err := Load(mapFS(files), "rules", Options{}); err == nil || !strings.Contains(err.Error(), "reads credential header") {
		t.Errorf("Load = %v, want an overlay reading a credential refused", err)
	}
}

// TestBitbucketOncePerDelivery: the one-line `when` that
// docs/migrate-from-tekton-triggers.md gives to fire once per Bitbucket
// delivery, as Tekton does, keeps only the first change's event.
func TestBitbucketOncePerDelivery(t *testing.T) {
	rules := mustLoad(t, map[string]string{
		"root.yaml": templateRoot,
		"apps/shop/app.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: shop
triggers:
  - name: build
    match: {when: "!event.id.matches('/[1-9][0-9]*$')"}
    run: {pipelineRef: build}
`,
	})
	for id, fires := range map[string]bool{"a1b2/0": true, "a1b2/1": false, "a1b2/12": false, "c3d4": true} {
		ev := pushEvent(t, "dev.switchyard.git.push", nil, "{}")
		ev.SetID(id)
		if got := len(rules.Route(Input{Source: "github", Event: ev})) == 1; got != fires {
			t.Errorf("event %s fired = %v, want %v", id, got, fires)
		}
	}
}

// BenchmarkRouteOverlays: routing a push through a trigger with seven
// overlays and changed_files.
func BenchmarkRouteOverlays(b *testing.B) {
	rules := mustLoad(b, overlayFiles(b, ""))
	in := Input{Source: "github", Event: pushEvent(b, "dev.switchyard.git.push", map[string]string{"revision": "abc"}, overlayPush),
		Header: http.Header{"X-Tier": []string{"gold"}}}
	b.ReportAllocs()
	for b.Loop() {
		if len(rules.Route(in)) != 1 {
			b.Fatal("no target")
		}
	}
}
