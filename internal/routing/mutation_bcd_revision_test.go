package routing

// Tests for mutants of revision.go that lived in the 859f522 run
// (docs/mutation-routing-bcd.md).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Only a full SHA-1 or SHA-256 object name is a commit: an abbreviated
// one in HEAD names none.
func TestMutGitCommitOnlyFullHashes(t *testing.T) {
	sha256Name := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct{ head, want string }{
		{commitA, commitA},
		{sha256Name, sha256Name},
		{"0123456789ab", ""},
		{"0123456", ""},
		{commitA + "0", ""},
	} {
		repo := t.TempDir()
		writeGitFile(t, filepath.Join(repo, ".git/HEAD"), tc.head+"\n")
		dir := filepath.Join(repo, "rules")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if got := gitCommit(dir); got != tc.want {
			t.Errorf("HEAD %s: gitCommit = %q, want %q", tc.head, got, tc.want)
		}
	}
}
