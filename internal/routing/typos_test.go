package routing

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// TestTypos: the mistakes a newcomer makes first are answered in the
// manifest's words, with what was probably meant.
func TestTypos(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match:
      types: [dev.switchyard.git.push]
      branchs: [main]
    run: {pipelineRef: build}
`
	tests := []struct {
		name      string
		root, app string
		want      []string
		notWant   string
	}{
		{
			name: "unknown field", root: testRoot, app: app,
			want:    []string{`rules/apps/web.yaml:8: unknown field "branchs" (did you mean "branches"?); valid here: actors, branches,`},
			notWant: "routing.",
		},
		{
			name: "unknown source in a grant", root: strings.Replace(testRoot, "sources: [github]", "sources: [githbu]", 1),
			app:  strings.Replace(app, "branchs", "branches", 1),
			want: []string{`app "web": no source "githbu" (did you mean "github"?); known: github, other`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"root.yaml": {Data: []byte(tc.root)}, "apps/web.yaml": {Data: []byte(tc.app)}}
			_, err := Load(fsys, "rules", Options{})
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("load: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(ps.Error(), w) {
					t.Errorf("problems do not contain %q:\n%s", w, ps.Error())
				}
			}
			if tc.notWant != "" && strings.Contains(ps.Error(), tc.notWant) {
				t.Errorf("problems contain %q:\n%s", tc.notWant, ps.Error())
			}
		})
	}
}

// TestWarnsOnTypesNoSourceProduces: a misspelt normalized type loads (it
// is a valid string) but is warned about, with the type meant.
func TestWarnsOnTypesNoSourceProduces(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match:
      types: [dev.switchyard.git.psuh, "dev.switchyard.image.*", com.github.issues, com.github.pull_request]
    run: {pipelineRef: build}
`
	fsys := fstest.MapFS{"root.yaml": {Data: []byte(testRoot)}, "apps/web.yaml": {Data: []byte(app)}}
	opts := Options{EventTypes: []string{"dev.switchyard.git.push", "dev.switchyard.git.tag", "dev.switchyard.image.push"}}
	r, err := Load(fsys, "rules", opts)
	if err != nil {
		t.Fatal(err)
	}
	ws := r.Warnings()
	want := []string{
		`rules/apps/web.yaml:7: trigger "build": no source produces event type "dev.switchyard.git.psuh", so nothing fires on it (did you mean "dev.switchyard.git.push"?)`,
		// A Tekton user's type: GitHub pull requests are always normalized.
		`rules/apps/web.yaml:7: trigger "build": no source produces event type "com.github.pull_request", so nothing fires on it: those deliveries become dev.switchyard.git.pullrequest`,
	}
	if len(ws) != len(want) || ws[0].String() != want[0] || ws[1].String() != want[1] {
		t.Fatalf("warnings = %v, want only\n%s", ws, strings.Join(want, "\n"))
	}
	// Without the list of types, nothing is checked.
	if r, err := Load(fsys, "rules", Options{}); err != nil || len(r.Warnings()) != 0 {
		t.Fatalf("without EventTypes: %v, %v", err, r.Warnings())
	}
}

// TestShippedRulesWarnNothing: the shipped rules load without a warning
// (their pull-request trigger once matched com.github.pull_request, which
// never fires), and a GitHub pull request fires it.
func TestShippedRulesWarnNothing(t *testing.T) {
	opts := Options{EventTypes: []string{"dev.switchyard.git.push", "dev.switchyard.git.tag", "dev.switchyard.git.pullrequest",
		"dev.switchyard.git.branch.deleted", "dev.switchyard.git.tag.deleted", "dev.switchyard.git.release", "dev.switchyard.image.push", "dev.switchyard.image.delete"}}
	r, err := LoadDir("../../rules", opts)
	if err != nil {
		t.Fatal(err)
	}
	if ws := r.Warnings(); len(ws) != 0 {
		t.Errorf("shipped rules warn: %v", ws)
	}
	ev := pushEvent(t, "dev.switchyard.git.pullrequest", map[string]string{"repository": "acme/payments-api", "action": "opened", "identity": "source:github"},
		`{"pull_request":{"draft":false,"head":{"sha":"abc"}},"repository":{"clone_url":"https://github.com/acme/payments-api.git"}}`)
	var fired []string
	for _, tg := range r.Route(Input{Source: "github", Event: ev}) {
		fired = append(fired, tg.App+"/"+tg.Trigger)
	}
	if !slices.Contains(fired, "payments/pull-request") {
		t.Errorf("a GitHub pull request fired %v, want payments/pull-request", fired)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"github", "gitlab", "gitea", "hub"}
	for _, tc := range []struct{ in, want string }{
		{"gitlba", "gitlab"}, {"githbu", "github"}, {"GitHub", "github"}, {"github", ""},
		{"bitbucket", ""}, {"hb", "hub"}, {"xyz", ""},
	} {
		if got := Suggest(tc.in, known); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
