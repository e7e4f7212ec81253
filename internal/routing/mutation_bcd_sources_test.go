package routing

// Tests for mutants of sources.go that lived in the 859f522 run
// (docs/mutation-routing-bcd.md).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The line of each accepted secret, as the audit trail names it, counts
// the comments and blank lines before it.
func TestMutSecretLines(t *testing.T) {
	root := strings.Replace(testRoot, "  - name: other\n    kind: github\n    secret: {file: /nonexistent}\n", "", 1)
	env := map[string]string{"GH_SECRET": "# rotating\nnew\n\n  \nold"}
	r, err := loadFiles(map[string]string{"root.yaml": root, "apps/web.yaml": okWebApp}, Options{
		ResolveSecrets: true,
		LookupEnv:      func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	src := r.Source("github")
	if got := secretsOf(r, "github"); len(got) != 2 || got[0] != "new" || got[1] != "old" {
		t.Fatalf("secrets %q, want new, old", got)
	}
	if l1, l2 := src.SecretLine(1), src.SecretLine(2); l1 != 2 || l2 != 5 {
		t.Errorf("SecretLine(1), SecretLine(2) = %d, %d; want 2, 5", l1, l2)
	}
}

// A secret listing nothing is named by its file or its variable.
func TestMutNoSecretNamesWhere(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("# a\n\n# b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := secretRef{File: file}.resolveAll(nil)
	if err == nil || !strings.Contains(err.Error(), "secret file "+file+" lists no secret") {
		t.Errorf("file: err = %v, want it to name the file", err)
	}
	_, err = secretRef{Env: "ROTATED"}.resolveAll(func(string) (string, bool) { return "# a\n# b", true })
	if err == nil || !strings.Contains(err.Error(), "secret environment variable ROTATED lists no secret") {
		t.Errorf("env: err = %v, want it to name the variable", err)
	}
}
