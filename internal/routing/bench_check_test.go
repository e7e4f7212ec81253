package routing

import (
	"net/http"
	"os"
	"testing"
)

// TestBenchmarkRoutesAreRight runs the routing benchmarks' correctness
// checks as a plain test: a benchmark's checks run only with -bench, so a
// repository index that narrowed to the wrong triggers would otherwise
// show up as a faster benchmark, not a failure.
func TestBenchmarkRoutesAreRight(t *testing.T) {
	body, err := os.ReadFile("../../test/testdata/github/push.json")
	if err != nil {
		t.Fatal(err)
	}
	ev := pushEvent(t, "dev.switchyard.git.push", map[string]string{
		"repository": "acme/app-0500", "branch": "main", "ref": "refs/heads/main", "actor": "octocat",
		"revision": "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d", "identity": "source:github", "provider": "github",
	}, string(body))
	in := Input{
		Source: "github", Event: ev, Header: http.Header{"X-Github-Event": []string{"push"}},
		Changes: &Changes{Files: []string{"README.md", "api/cart.go", "api/legacy.go", "web/checkout.html", "web/index.html"}, Complete: true},
	}
	for _, tc := range []struct{ name, repo string }{
		{"indexed repositories", "acme/app-%04d"},
		{"glob repositories", "acme/app-%04d*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := Load(benchManifest(1000, tc.repo), "rules", Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := rules.Route(in)
			if len(got) != 2 || got[0].App != "app-0500" || got[0].Trigger != "build" || got[1].App != "app-0500" || got[1].Trigger != "checks" {
				t.Fatalf("Route = %+v, want app-0500 build and checks", got)
			}
			if d := rules.Explain(in); len(d.Unmatched) != 4998 {
				t.Errorf("Explain: %d unmatched, want 4998", len(d.Unmatched))
			}
			// BenchmarkRoute1000AppsNoMatch: a repository no app watches.
			unknown := in
			ev := in.Event.Clone()
			ev.SetExtension("repository", "acme/unknown")
			unknown.Event = &ev
			if got := rules.Route(unknown); len(got) != 0 {
				t.Errorf("Route of acme/unknown = %+v, want no target", got)
			}
		})
	}
}
