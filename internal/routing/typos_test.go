package routing

import (
	"errors"
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
      types: [dev.switchyard.git.psuh, "dev.switchyard.image.*", com.github.issues]
    run: {pipelineRef: build}
`
	fsys := fstest.MapFS{"root.yaml": {Data: []byte(testRoot)}, "apps/web.yaml": {Data: []byte(app)}}
	opts := Options{EventTypes: []string{"dev.switchyard.git.push", "dev.switchyard.git.tag", "dev.switchyard.image.push"}}
	r, err := Load(fsys, "rules", opts)
	if err != nil {
		t.Fatal(err)
	}
	ws := r.Warnings()
	want := `rules/apps/web.yaml:7: trigger "build": no source produces event type "dev.switchyard.git.psuh", so nothing fires on it (did you mean "dev.switchyard.git.push"?)`
	if len(ws) != 1 || ws[0].String() != want {
		t.Fatalf("warnings = %v, want only\n%s", ws, want)
	}
	// Without the list of types, nothing is checked.
	if r, err := Load(fsys, "rules", Options{}); err != nil || len(r.Warnings()) != 0 {
		t.Fatalf("without EventTypes: %v, %v", err, r.Warnings())
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
