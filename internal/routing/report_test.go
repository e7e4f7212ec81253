package routing

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

const reportApp = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    run: {pipelineRef: build}
`

func reportRoot(source, extra string) string {
	return `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    secret: {env: GH_SECRET}
` + source + `apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci, ci-2]
    sources: [github]
` + extra
}

func TestReportSettings(t *testing.T) {
	tests := []struct {
		name    string
		source  string
		extra   string
		wantErr string
	}{
		{name: "status", source: "    kind: github\n    report: status\n    apiToken: {env: GH_TOKEN}\n",
			extra: "statusURL: https://tekton.example.com/#/namespaces/{namespace}/pipelineruns/{name}\n"},
		{name: "checks", source: "    kind: github\n    report: checks\n    githubApp: {appID: 12, privateKey: {file: /k.pem}}\n"},
		{name: "checks without an app", source: "    kind: github\n    report: checks\n    apiToken: {env: GH_TOKEN}\n",
			wantErr: `report: checks needs githubApp with appID and privateKey`},
		// One githubApp serves check runs and recover's App hook: report: status may have one.
		{name: "app with status", source: "    kind: github\n    report: status\n    apiToken: {env: T}\n    githubApp: {appID: 12, privateKey: {file: /k.pem}}\n"},
		{name: "app off github", source: "    kind: gitlab\n    report: status\n    apiToken: {env: T}\n    githubApp: {appID: 12, privateKey: {file: /k.pem}}\n",
			wantErr: `githubApp is GitHub's`},
		{name: "app without a key", source: "    kind: github\n    githubApp: {appID: 12}\n", wantErr: `githubApp needs appID and privateKey`},
		{name: "unknown mode", source: "    kind: github\n    report: comments\n    apiToken: {env: GH_TOKEN}\n",
			wantErr: `rules/root.yaml:7: source "github": report "comments": want status or checks`},
		{name: "no token", source: "    kind: github\n    report: status\n",
			wantErr: `report needs apiToken`},
		{name: "kind without statuses", source: "    kind: harbor\n    report: status\n    apiToken: {env: T}\n",
			wantErr: `report: kind "harbor" has no commit statuses`},
		{name: "checks off github", source: "    kind: gitlab\n    report: checks\n    apiToken: {env: T}\n",
			wantErr: `checks are GitHub's only`},
		{name: "gitea needs apiURL", source: "    kind: gitea\n    report: status\n    apiToken: {env: T}\n",
			wantErr: `report needs apiURL for kind gitea`},
		{name: "unknown placeholder", source: "    kind: github\n",
			extra: "statusURL: https://d.example.com/{nmespace}\n", wantErr: `rules/root.yaml:12: statusURL: unknown placeholder {nmespace}`},
		{name: "not a URL", source: "    kind: github\n", extra: "statusURL: /runs/{name}\n", wantErr: `must be an http(s) URL template`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"root.yaml": {Data: []byte(reportRoot(tc.source, tc.extra))}, "apps/web.yaml": {Data: []byte(reportApp)}}
			rules, err := Load(fsys, "rules", Options{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := rules.Source("github").Report; got == "" {
					t.Error("report not exposed on the source")
				}
				if !rules.Reporting() {
					t.Error("Reporting() false")
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) || !strings.Contains(ps.Error(), tc.wantErr) {
				t.Fatalf("got %v, want a problem containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestExpandStatusURL(t *testing.T) {
	fsys := fstest.MapFS{"root.yaml": {Data: []byte(reportRoot("    kind: github\n",
		"statusURL: \"https://tekton.example.com/#/namespaces/{namespace}/pipelineruns/{name}?e={event}\"\n"))},
		"apps/web.yaml": {Data: []byte(reportApp)}}
	rules, err := Load(fsys, "rules", Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := ExpandStatusURL(rules.StatusURL(), map[string]string{"namespace": "ci", "name": "web-build-1", "event": "a b&c"})
	if want := "https://tekton.example.com/#/namespaces/ci/pipelineruns/web-build-1?e=a+b%26c"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := rules.RunNamespaces(); !slices.Equal(got, []string{"ci", "ci-2"}) {
		t.Errorf("RunNamespaces %v", got)
	}
	if rules.Reporting() {
		t.Error("Reporting() true without a reporting source")
	}
}
