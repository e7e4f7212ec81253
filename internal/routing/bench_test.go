package routing

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// benchManifest is a root with n apps of 5 triggers each: a push build with
// paths and bound params, a tag release, a pull request with a CEL
// condition, a docs build with paths, and a push check with an actor deny
// list and a CEL condition. repo formats each app's repositories pattern.
func benchManifest(n int, repo string) fstest.MapFS {
	fsys := fstest.MapFS{}
	var root strings.Builder
	root.WriteString("apiVersion: switchyard.dev/v1alpha1\nkind: Root\nsources:\n  - {name: github, kind: github, secret: {env: GH}}\napps:\n")
	for i := range n {
		app := fmt.Sprintf("app-%04d", i)
		fmt.Fprintf(&root, "  - name: %s\n    manifest: apps/%s.yaml\n    namespaces: [%s-ci]\n    serviceAccounts: [%s-runner]\n    sources: [github]\n", app, app, app, app)
		r := fmt.Sprintf(repo, i)
		fsys["apps/"+app+".yaml"] = &fstest.MapFile{Data: []byte(`apiVersion: switchyard.dev/v1alpha1
kind: App
name: ` + app + `
triggers:
  - name: build
    match:
      types: [dev.switchyard.git.push]
      repositories: ["` + r + `"]
      branches: [main, "release/**"]
      paths: ["web/**", "api/**", "!**/*.md"]
    run:
      pipelineRef: build
      params:
        - {name: repo-url, value: $(body.repository.clone_url)}
        - {name: revision, value: $(extensions.revision)}
  - name: release
    match:
      types: [dev.switchyard.git.tag]
      repositories: ["` + r + `"]
      tags: ["v*"]
    run: {pipelineRef: release}
  - name: pr
    match:
      types: [com.github.pull_request]
      repositories: ["` + r + `"]
      when: "body.action == 'opened'"
    run: {pipelineRef: pr}
  - name: docs
    match:
      types: [dev.switchyard.git.push]
      repositories: ["` + r + `"]
      branches: [main]
      paths: ["docs/**"]
    run: {pipelineRef: docs}
  - name: checks
    match:
      types: [dev.switchyard.git.push]
      repositories: ["` + r + `"]
      actors: ["!dependabot[bot]"]
      when: "!body.head_commit.message.contains('[skip ci]')"
    run: {pipelineRef: checks}
`)}
	}
	fsys["root.yaml"] = &fstest.MapFile{Data: []byte(root.String())}
	return fsys
}

// benchInput is the sample GitHub push (test/testdata/github/push.json) to
// acme/app-0500 main, with its changed files.
func benchInput(b *testing.B) Input {
	body, err := os.ReadFile("../../test/testdata/github/push.json")
	if err != nil {
		b.Fatal(err)
	}
	ev := pushEvent(b, "dev.switchyard.git.push", map[string]string{
		"repository": "acme/app-0500", "branch": "main", "ref": "refs/heads/main", "actor": "octocat",
		"revision": "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d", "identity": "source:github", "provider": "github",
	}, string(body))
	return Input{
		Source: "github", Event: ev, Header: http.Header{"X-Github-Event": []string{"push"}},
		Changes: &Changes{Files: []string{"README.md", "api/cart.go", "api/legacy.go", "web/checkout.html", "web/index.html"}, Complete: true},
		// As ingest.RouteInput gives a GitHub push (normalize validated
		// the payload: TestRouteInputKnowsProvidersValidateJSON).
		DataIsJSON: true,
	}
}

func benchRoute(b *testing.B, repo string) {
	rules, err := Load(benchManifest(1000, repo), "rules", Options{})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput(b)
	got := rules.Route(in)
	if len(got) != 2 || got[0].App != "app-0500" || got[0].Trigger != "build" || got[1].Trigger != "checks" {
		b.Fatalf("Route = %+v, want app-0500 build and checks", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if len(rules.Route(in)) != 2 {
			b.Fatal("wrong targets")
		}
	}
}

// BenchmarkRoute1000Apps routes one push through 1,000 apps with 5
// triggers each (5,000 triggers), every app on its own repository: the
// repository index narrows the walk to the app's 5 triggers; 2 fire (one
// with bound params, one after a CEL condition on the body).
func BenchmarkRoute1000Apps(b *testing.B) { benchRoute(b, "acme/app-%04d") }

// BenchmarkRoute1000AppsGlobRepos is the same with glob repository
// patterns, which the index cannot narrow: all 5,000 triggers are checked.
func BenchmarkRoute1000AppsGlobRepos(b *testing.B) { benchRoute(b, "acme/app-%04d*") }

// BenchmarkRoute1000AppsDataUnchecked is BenchmarkRoute1000Apps for an
// input whose data nobody validated yet (replay, a re-run): routing scans
// the whole body once before reading the fields its bindings use.
func BenchmarkRoute1000AppsDataUnchecked(b *testing.B) {
	rules, err := Load(benchManifest(1000, "acme/app-%04d"), "rules", Options{})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput(b)
	in.DataIsJSON = false
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if len(rules.Route(in)) != 2 {
			b.Fatal("wrong targets")
		}
	}
}

// BenchmarkRoute1000AppsNoMatch routes a push to a repository no app
// watches: the cost of routing itself, without payload parsing.
func BenchmarkRoute1000AppsNoMatch(b *testing.B) {
	rules, err := Load(benchManifest(1000, "acme/app-%04d"), "rules", Options{})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput(b)
	in.Event.SetExtension("repository", "acme/unknown")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if len(rules.Route(in)) != 0 {
			b.Fatal("wrong targets")
		}
	}
}

// BenchmarkExplain1000Apps explains the same event: every trigger gets a
// reason.
func BenchmarkExplain1000Apps(b *testing.B) {
	rules, err := Load(benchManifest(1000, "acme/app-%04d"), "rules", Options{})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if d := rules.Explain(in); len(d.Unmatched) != 4998 {
			b.Fatalf("unmatched = %d", len(d.Unmatched))
		}
	}
}

// BenchmarkLoad1000Apps compiles the 1,000-app manifest (2,000 CEL
// conditions): the cost of a reload.
func BenchmarkLoad1000Apps(b *testing.B) {
	fsys := benchManifest(1000, "acme/app-%04d")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(fsys, "rules", Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
