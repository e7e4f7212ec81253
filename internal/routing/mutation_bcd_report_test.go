package routing

// Tests for mutants of report.go that lived in the 859f522 run
// (docs/mutation-routing-bcd.md).

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func loadReportRoot(source, extra string) error {
	fsys := fstest.MapFS{"root.yaml": {Data: []byte(reportRoot(source, extra))}, "apps/web.yaml": {Data: []byte(reportApp)}}
	_, err := Load(fsys, "rules", Options{})
	return err
}

// A githubApp's appID must be positive: 0 (or left out) is no App.
func TestMutGitHubAppIDZeroRefused(t *testing.T) {
	for _, id := range []string{"0", "-3"} {
		err := loadReportRoot("    kind: github\n    githubApp: {appID: "+id+", privateKey: {file: /k.pem}}\n", "")
		var ps Problems
		if !errors.As(err, &ps) || !strings.Contains(ps.Error(), "githubApp needs appID and privateKey") {
			t.Errorf("appID %s: got %v, want the problem githubApp needs appID", id, err)
		}
	}
	if err := loadReportRoot("    kind: github\n    githubApp: {appID: 1, privateKey: {file: /k.pem}}\n", ""); err != nil {
		t.Errorf("appID 1: %v", err)
	}
}

// Every placeholder of a statusURL is checked, not only the first.
func TestMutStatusURLEveryPlaceholderChecked(t *testing.T) {
	err := loadReportRoot("    kind: github\n", "statusURL: https://d.example.com/{namespace}/{name}/{nmespace}\n")
	var ps Problems
	if !errors.As(err, &ps) || !strings.Contains(ps.Error(), "statusURL: unknown placeholder {nmespace}") {
		t.Errorf("got %v, want the third placeholder refused", err)
	}
}

// A statusURL is http or https; any other scheme is refused.
func TestMutStatusURLSchemes(t *testing.T) {
	for _, u := range []string{"https://tekton.example.com/{name}", "http://tekton.internal/{name}"} {
		if err := loadReportRoot("    kind: github\n", "statusURL: "+u+"\n"); err != nil {
			t.Errorf("statusURL %s: %v", u, err)
		}
	}
	err := loadReportRoot("    kind: github\n", "statusURL: ftp://tekton.example.com/{name}\n")
	var ps Problems
	if !errors.As(err, &ps) || !strings.Contains(ps.Error(), "must be an http(s) URL template") {
		t.Errorf("ftp statusURL: got %v, want it refused", err)
	}
}
