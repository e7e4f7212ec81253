package routing

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// TestTestdata loads every manifest under testdata/good and testdata/bad.
// A good one must load; its golden file describes what it compiled to. A
// bad one must fail; its golden file is the validation output, every
// problem as file:line: message, exactly as `router validate` prints it.
// Run with -update to rewrite the golden files.
func TestTestdata(t *testing.T) {
	cases := []struct{ dir, golden string }{{"../../rules", "testdata/shipped-rules.golden"}}
	for _, kind := range []string{"good", "bad"} {
		entries, err := os.ReadDir(filepath.Join("testdata", kind))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				dir := filepath.Join("testdata", kind, e.Name())
				cases = append(cases, struct{ dir, golden string }{dir, dir + ".golden"})
			}
		}
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			rules, err := LoadDir(tc.dir, Options{SourceKinds: []string{"github"}})
			var got string
			if strings.Contains(tc.dir, "/bad/") {
				var ps Problems
				if !errors.As(err, &ps) {
					t.Fatalf("Load error = %v, want Problems", err)
				}
				got = ps.Error() + "\n"
			} else {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				got = describe(rules)
			}
			if *update {
				if err := os.WriteFile(tc.golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(tc.golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", tc.golden, diff)
			}
		})
	}
}

// describe prints what a manifest compiled to, one fact a line.
func describe(r *Rules) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	ref := func(s secretRef) string {
		switch {
		case s.Env != "":
			return "env:" + s.Env
		case s.File != "":
			return "file:" + s.File
		}
		return "-"
	}
	for _, s := range r.Sources() {
		p("source %s kind=%s secret=%s apiToken=%s apiURL=%s", s.Name, s.Kind, ref(s.SecretRef), ref(s.APITokenRef), s.APIURL)
	}
	list := func(name string, v []string) string {
		if len(v) == 0 {
			return ""
		}
		return " " + name + "=" + strings.Join(v, ",")
	}
	globs := func(name string, g globList) string { return list(name, g.patterns()) }
	for _, a := range r.apps {
		p("app %s", a.name)
		for _, f := range a.files {
			p("  file %s", filepath.ToSlash(f))
		}
		p("  grant%s%s%s%s%s", list("namespaces", a.namespaces), list("serviceAccounts", a.serviceAccounts),
			list("sources", a.sources), list("identities", a.identities), globs("eventTypes", a.eventTypes))
		for _, t := range a.triggers {
			p("  trigger %s (%s:%d, ordinal %d)", t.name, filepath.ToSlash(t.file), t.line, t.ordinal)
			when := ""
			if t.when != nil {
				when = fmt.Sprintf(" when=%q usesBody=%v", t.when.expr, t.when.usesBody)
			}
			p("    match%s%s%s%s%s%s%s%s%s%s", globs("types", t.types), list("sources", t.sources), list("identities", t.identities),
				globs("repositories", t.repositories), globs("branches", t.branches), globs("tags", t.tags), globs("paths", t.paths),
				list("actors", t.actorsAllow), list("!actors", t.actorsDeny), when)
			run := fmt.Sprintf("    run namespace=%s serviceAccount=%s", t.namespace, t.serviceAccount)
			if t.template != nil {
				var bound []string
				for _, bp := range t.bindingParams {
					bound = append(bound, bp.Name+"="+bp.Value)
				}
				run += fmt.Sprintf(" template=%s pipelineRef=%s bindings=[%s]", t.template.Name, t.pipelineRef, strings.Join(bound, " "))
			} else {
				var params, ws []string
				for _, pp := range t.params {
					params = append(params, pp.Name+"="+pp.Value)
				}
				for _, w := range t.workspaces {
					ws = append(ws, w.Name)
				}
				run += fmt.Sprintf(" pipelineRef=%s timeouts=%s/%s/%s params=[%s] workspaces=[%s]", t.pipelineRef,
					t.timeout, t.tasksTimeout, t.finallyTimeout, strings.Join(params, " "), strings.Join(ws, " "))
			}
			p("%s", run)
		}
	}
	p("usesPaths=%v indexed repositories=%d unindexed triggers=%d", r.usesPaths, len(r.byRepo), len(r.anyRepo))
	return b.String()
}
