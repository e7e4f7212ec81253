package routing

import (
	"fmt"
	"strings"
	"testing"
)

// TestIndexedRouteVisitsEveryCandidate routes events through triggers
// mixing literal, repeated, glob, negated and absent types and
// repositories: Route, which visits only the indexed candidates, must fire
// what Explain, which visits every trigger, fires, in the same order.
func TestIndexedRouteVisitsEveryCandidate(t *testing.T) {
	types := []string{``, `dev.switchyard.git.push`, `dev.switchyard.git.push, dev.switchyard.git.push`,
		`"dev.switchyard.git.*"`, `com.github.pull_request, dev.switchyard.git.push`, `"!dev.switchyard.git.tag"`}
	repos := []string{``, `acme/a`, `"acme/*"`, `acme/a, acme/b`, `"!acme/b"`}
	files := map[string]string{}
	var root strings.Builder
	root.WriteString("apiVersion: switchyard.dev/v1alpha1\nkind: Root\nsources:\n  - {name: github, kind: github, secret: {env: GH}}\napps:\n")
	for _, app := range []string{"app-a", "app-b"} {
		fmt.Fprintf(&root, "  - name: %s\n    manifest: apps/%s.yaml\n    namespaces: [%s-ci]\n    serviceAccounts: [%s-runner]\n    sources: [github]\n", app, app, app, app)
		var m strings.Builder
		fmt.Fprintf(&m, "apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: %s\ntriggers:\n", app)
		for i, ty := range types {
			for j, repo := range repos {
				fmt.Fprintf(&m, "  - name: t-%d-%d\n    match: {", i, j)
				var conds []string
				if ty != "" {
					conds = append(conds, "types: ["+ty+"]")
				}
				if repo != "" {
					conds = append(conds, "repositories: ["+repo+"]")
				}
				fmt.Fprintf(&m, "%s}\n    run: {pipelineRef: p}\n", strings.Join(conds, ", "))
			}
		}
		files["apps/"+app+".yaml"] = m.String()
	}
	files["root.yaml"] = root.String()
	rules := mustLoad(t, files)
	fired := 0
	for _, typ := range []string{"dev.switchyard.git.push", "dev.switchyard.git.tag", "com.github.pull_request", "dev.example.other"} {
		for _, repo := range []string{"acme/a", "acme/b", "acme/c", ""} {
			ext := map[string]string{"identity": "source:github"}
			if repo != "" {
				ext["repository"] = repo
			}
			in := Input{Source: "github", Event: pushEvent(t, typ, ext, "")}
			got := rules.Route(in)
			if diff := diffTargets(rules.Explain(in).Targets, got); diff != "" {
				t.Errorf("%s %s: Route differs from Explain (-explain +route):\n%s", typ, repo, diff)
			}
			fired += len(got)
		}
	}
	if fired == 0 {
		t.Fatal("no event fired any trigger")
	}
}
