package routing

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// TestReportSettingsEdges: an App ID of 0 is no App ID; a status URL may
// be http or https only, and every placeholder in it is checked, not only
// the first.
func TestReportSettingsEdges(t *testing.T) {
	for _, tc := range []struct{ name, source, extra, wantErr string }{
		{name: "app ID 0", source: "    kind: github\n    githubApp: {appID: 0, privateKey: {file: /k.pem}}\n", wantErr: `githubApp needs appID and privateKey`},
		{name: "http status URL", source: "    kind: github\n", extra: "statusURL: http://d.example.com/{name}\n"},
		{name: "ftp status URL", source: "    kind: github\n", extra: "statusURL: ftp://d.example.com/{name}\n", wantErr: `must be an http(s) URL template`},
		{name: "second placeholder unknown", source: "    kind: github\n", extra: "statusURL: https://d.example.com/{name}/{bogus}\n", wantErr: `unknown placeholder {bogus}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(fstest.MapFS{"root.yaml": {Data: []byte(reportRoot(tc.source, tc.extra))}, "apps/web.yaml": {Data: []byte(reportApp)}}, "rules", Options{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
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

// TestIsCommitLengths: full SHA-1 and SHA-256 object names only.
func TestIsCommitLengths(t *testing.T) {
	for s, want := range map[string]bool{
		strings.Repeat("a", 40): true, strings.Repeat("0", 64): true,
		strings.Repeat("a", 39): false, strings.Repeat("a", 41): false, strings.Repeat("a", 63): false, strings.Repeat("a", 65): false,
	} {
		if got := isCommit(s); got != want {
			t.Errorf("isCommit(%d characters) = %v, want %v", len(s), got, want)
		}
	}
}
