package routing

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestResolveAllSecrets reads secret files and variables listing one or
// several secrets: a single line is taken whole, as before rotation
// existed; several lines are the secrets in order, without blank lines and
// # comments.
func TestResolveAllSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, file, env string
		want            []string
		wantErr         string
	}{
		{name: "one line", file: "s3cret\n", want: []string{"s3cret"}},
		{name: "one line CRLF", file: "s3cret\r\n", want: []string{"s3cret"}},
		{name: "one line without newline", file: "s3cret", want: []string{"s3cret"}},
		{name: "one line starting with #", file: "#s3cret\n", want: []string{"#s3cret"}},
		{name: "one line with spaces kept", file: " s3cret \n", want: []string{" s3cret "}},
		{name: "new then old", file: "new\nold\n", want: []string{"new", "old"}},
		{name: "comments and blanks", file: "# rotating, 2026-11-29\nnew\r\n\n  \n# old one, remove after\nold\r\n", want: []string{"new", "old"}},
		{name: "only comments", file: "# a\n\n# b\n", wantErr: "lists no secret"},
		{name: "empty", file: "\n", wantErr: "is empty"},
		{name: "env one", env: "s3cret", want: []string{"s3cret"}},
		{name: "env several", env: "new\nold", want: []string{"new", "old"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ref secretRef
			lookup := func(string) (string, bool) { return tc.env, tc.env != "" }
			if tc.env != "" {
				ref.Env = "ROTATED"
			} else {
				ref.File = filepath.Join(t.TempDir(), "secret")
				if err := os.WriteFile(ref.File, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ref.resolveAll(lookup)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "# a") {
					t.Errorf("error quotes the file's content: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, b := range got {
				s = append(s, string(b))
			}
			if !slices.Equal(s, tc.want) {
				t.Fatalf("secrets = %q, want %q", s, tc.want)
			}
		})
	}
}

// rotationRoot is a root whose source reads its secret from file.
func rotationRoot(file string) string {
	return strings.Replace(strings.Replace(testRoot, "{env: GH_SECRET}", "{file: "+file+"}", 1), "{file: /nonexistent}", "{file: "+file+"}", 1)
}

func secretsOf(r *Rules, source string) []string {
	var s []string
	for _, b := range r.Source(source).Secrets {
		s = append(s, string(b))
	}
	return s
}

// TestLoadSecretsFirstIsSecret loads a source listing two secrets: Secret
// is the first, the one `router send` signs with, and Secrets holds both.
func TestLoadSecretsFirstIsSecret(t *testing.T) {
	dir, secrets := t.TempDir(), t.TempDir()
	file := filepath.Join(secrets, "github")
	writeFile(t, file, "new\nold\n")
	writeFile(t, filepath.Join(dir, "root.yaml"), rotationRoot(file))
	writeFile(t, filepath.Join(dir, "apps", "web.yaml"), appWithTriggers("build"))
	rules, err := LoadDir(dir, Options{ResolveSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	src := rules.Source("github")
	if string(src.Secret) != "new" || !slices.Equal(secretsOf(rules, "github"), []string{"new", "old"}) {
		t.Fatalf("Secret = %q, Secrets = %q", src.Secret, secretsOf(rules, "github"))
	}
	if got, err := src.ResolveSecret(); err != nil || string(got) != "new" {
		t.Fatalf("ResolveSecret = %q, %v; want the first secret", got, err)
	}
	if got := rules.SecretFiles(); !slices.Equal(got, []string{file}) {
		t.Fatalf("SecretFiles = %q", got)
	}
}

// TestReloaderWatchesSecretFiles rotates a secret kept outside the rules
// directory under a running reloader: the new secret is added, then the
// old one removed, and the rules in force follow without a restart.
func TestReloaderWatchesSecretFiles(t *testing.T) {
	dir, secrets := t.TempDir(), t.TempDir()
	file := filepath.Join(secrets, "github")
	writeFile(t, file, "old\n")
	writeFile(t, filepath.Join(dir, "root.yaml"), rotationRoot(file))
	writeFile(t, filepath.Join(dir, "apps", "web.yaml"), appWithTriggers("build"))
	load := func(d string) (*Rules, error) { return LoadDir(d, Options{ResolveSecrets: true}) }
	rules, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	holder := NewHolder(rules)
	logs := &lockedBuffer{}
	r := NewReloader(ReloaderConfig{
		Dir: dir, Load: load, Holder: holder,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Debounce: 20 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, "the watcher to start", func() bool { return strings.Contains(logs.String(), "watching rules") })

	writeFile(t, file, "new\nold\n")
	waitFor(t, "the new secret", func() bool { return slices.Equal(secretsOf(holder.Rules(), "github"), []string{"new", "old"}) })
	if string(holder.Rules().Source("github").Secret) != "new" {
		t.Fatalf("Secret = %q, want the first line", holder.Rules().Source("github").Secret)
	}
	writeFile(t, file, "new\n")
	waitFor(t, "the old secret removed", func() bool { return slices.Equal(secretsOf(holder.Rules(), "github"), []string{"new"}) })

}

// TestSecretEvent checks which events in a watched secret directory count.
func TestSecretEvent(t *testing.T) {
	secrets := map[string][]string{"/run/secrets": {"github"}}
	for name, want := range map[string]bool{
		"/run/secrets/github":     true,
		"/run/secrets/github.tmp": false,
		"/run/secrets/..data":     true, // a Kubernetes secret volume's swap
		"/run/secrets/..data_tmp": true,
		"/run/secrets/other":      false,
		"/rules/root.yaml":        true,
		"/rules/apps/web/a.yaml":  true,
	} {
		if got := secretEvent(secrets, name); got != want {
			t.Errorf("secretEvent(%s) = %v, want %v", name, got, want)
		}
	}
	if !inTree("/rules", "/rules/secrets") || inTree("/rules", "/rules2") || inTree("/rules", "/") {
		t.Error("inTree is wrong")
	}
}
