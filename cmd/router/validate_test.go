package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestValidateFlagsAndStrict: validate takes --rules like every other
// command, says what it did not check, and with --strict refuses what
// serve refuses.
func TestValidateFlagsAndStrict(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "")
	for _, args := range [][]string{{"validate", "../../rules"}, {"validate", "--rules", "../../rules"}} {
		code, out, stderr := runCmd(t, "", args...)
		if code != 0 || !strings.HasPrefix(out, "../../rules: ok\n") ||
			!strings.Contains(out, `source "github": secret: environment variable GITHUB_WEBHOOK_SECRET`) || !strings.Contains(out, "--strict") {
			t.Fatalf("%v: exit %d, %q %q", args, code, out, stderr)
		}
	}
	code, out, _ := runCmd(t, "", "validate", "--strict", "--rules", "../../rules")
	if code != 1 || !strings.Contains(out, "GITHUB_WEBHOOK_SECRET is not set") {
		t.Fatalf("strict without the variable: exit %d, %q", code, out)
	}
	t.Setenv("GITHUB_WEBHOOK_SECRET", "set")
	code, out, _ = runCmd(t, "", "validate", "--strict", "../../rules")
	if code != 0 || !regexp.MustCompile(`^\.\./\.\./rules: ok\nrules revision: sha256:[0-9a-f]{12}(,git:[0-9a-f]{12})?\n$`).MatchString(out) {
		t.Fatalf("strict with the variable: exit %d, %q", code, out)
	}
}

// TestValidateStrictFiles: a missing secret file is named, and a malformed
// tokens file is refused, as serve would.
func TestValidateStrictFiles(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "no-such-secret")
	tokensFile := filepath.Join(dir, "agent.tokens")
	if err := os.WriteFile(tokensFile, []byte("not-a-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: hub
    kind: dockerhub
    secret: {file: ` + secretFile + `}
endpoints:
  - name: agent
    auth:
      tokens: {file: ` + tokensFile + `}
    scope:
      eventTypes: [com.acme.deploy.requested]
`
	if err := os.WriteFile(filepath.Join(dir, "root.yaml"), []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(t, "", "validate", "--rules", dir)
	if code != 0 || !strings.Contains(out, "file "+secretFile) || !strings.Contains(out, "file "+tokensFile) {
		t.Fatalf("validate: exit %d, %q", code, out)
	}
	code, out, _ = runCmd(t, "", "validate", "--strict", "--rules", dir)
	if code != 1 || !strings.Contains(out, "read secret file "+secretFile+": no such file") || !strings.Contains(out, `endpoint "agent": tokens: line 1`) {
		t.Fatalf("validate --strict: exit %d, %q", code, out)
	}
}

// TestMissingRulesDir: a wrong path is reported as such, not as invalid
// rules, by validate and by serve.
func TestMissingRulesDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "rulez")
	code, out, _ := runCmd(t, "", "validate", "--rules", missing)
	if code != 1 || !strings.Contains(out, missing+" does not exist") || strings.Contains(out, "invalid") {
		t.Fatalf("validate: exit %d, %q", code, out)
	}
	code, _, stderr := runCmd(t, "", "serve", "--rules", missing, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, missing+" does not exist: give the directory holding root.yaml with --rules DIR") {
		t.Fatalf("serve: exit %d, %q", code, stderr)
	}
	empty := t.TempDir()
	code, out, _ = runCmd(t, "", "validate", empty)
	if code != 1 || !strings.Contains(out, "root.yaml: not found") {
		t.Fatalf("validate empty dir: exit %d, %q", code, out)
	}
}

// TestValidateWarnsOnTypeTypo: a trigger on a misspelt type is valid YAML
// that never fires; validate says so and what was meant.
func TestValidateWarnsOnTypeTypo(t *testing.T) {
	dir := copyTree(t, "../../rules")
	// The payments app has no type grant, so its triggers may name any type.
	app := filepath.Join(dir, "apps", "payments", "app.yaml")
	data, err := os.ReadFile(app)
	if err != nil {
		t.Fatal(err)
	}
	typo := strings.Replace(string(data), "dev.switchyard.git.push", "dev.switchyard.git.psuh", 1)
	if err := os.WriteFile(app, []byte(typo), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(t, "", "validate", dir)
	if code != 0 || !strings.Contains(out, "warning: "+app) || !strings.Contains(out, `(did you mean "dev.switchyard.git.push"?)`) {
		t.Fatalf("validate: exit %d, %q", code, out)
	}
}
