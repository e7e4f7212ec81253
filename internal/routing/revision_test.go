package routing

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var contentRevisionRE = regexp.MustCompile(`^sha256:[0-9a-f]{12}$`)

// copyRules copies the app-of-apps testdata (root, app manifests, a binding
// and a template) to a new directory outside any git checkout.
func copyRules(t *testing.T) (dir string, files []string) {
	t.Helper()
	src := "testdata/good/app-of-apps"
	dir = t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, rel)
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir, files
}

func loadRevision(t *testing.T, dir string) string {
	t.Helper()
	r, err := LoadDir(dir, Options{SourceKinds: []string{"github"}})
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	return r.Revision()
}

func TestRevisionSameFilesSameRevision(t *testing.T) {
	a, _ := copyRules(t)
	b, _ := copyRules(t)
	ra, rb := loadRevision(t, a), loadRevision(t, b)
	if !contentRevisionRE.MatchString(ra) {
		t.Fatalf("revision %q, want sha256:<12 hex>", ra)
	}
	if ra != rb {
		t.Fatalf("same files: revisions %q and %q differ", ra, rb)
	}
}

func TestRevisionChangesWithEveryFile(t *testing.T) {
	base, files := copyRules(t)
	want := loadRevision(t, base)
	if len(files) < 4 {
		t.Fatalf("testdata has %d files, want root, apps, binding and template", len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			dir, _ := copyRules(t)
			path := filepath.Join(dir, f)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// A comment changes the file, not what it means.
			if err := os.WriteFile(path, append(data, "\n# changed\n"...), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := loadRevision(t, dir); got == want {
				t.Fatalf("changing %s kept revision %s", f, got)
			}
		})
	}
}

func TestRevisionOnTargets(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match:
      types: [dev.switchyard.git.push]
    run:
      pipelineRef: build
`
	rules := mustLoad(t, map[string]string{"root.yaml": testRoot, "apps/web.yaml": app})
	in := Input{Source: "github", Event: pushEvent(t, "dev.switchyard.git.push", nil, `{}`)}
	targets := rules.Route(in)
	if len(targets) != 1 {
		t.Fatalf("targets %+v, want one", targets)
	}
	if got := targets[0].RulesRevision; got == "" || got != rules.Revision() {
		t.Fatalf("target revision %q, want the rules' %q", got, rules.Revision())
	}
}

// withRevision returns want with every target carrying rev, the revision
// of the rules that routed it.
func withRevision(want []Target, rev string) []Target {
	out := make([]Target, len(want))
	for i, t := range want {
		t.RulesRevision = rev
		out[i] = t
	}
	if want == nil {
		return nil
	}
	return out
}

const (
	commitA = "0123456789abcdef0123456789abcdef01234567"
	commitB = "89abcdef0123456789abcdef0123456789abcdef"
)

func writeGitFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGitCommit(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, repo string) (rulesDir string)
		want  string
	}{
		{
			name: "loose branch ref",
			setup: func(t *testing.T, repo string) string {
				writeGitFile(t, filepath.Join(repo, ".git/HEAD"), "ref: refs/heads/main\n")
				writeGitFile(t, filepath.Join(repo, ".git/refs/heads/main"), commitA+"\n")
				return filepath.Join(repo, "deploy/rules")
			},
			want: commitA,
		},
		{
			name: "packed branch ref",
			setup: func(t *testing.T, repo string) string {
				writeGitFile(t, filepath.Join(repo, ".git/HEAD"), "ref: refs/heads/main\n")
				writeGitFile(t, filepath.Join(repo, ".git/packed-refs"), "# pack-refs with: peeled\n"+commitB+" refs/heads/other\n"+commitA+" refs/heads/main\n")
				return filepath.Join(repo, "rules")
			},
			want: commitA,
		},
		{
			name: "detached head",
			setup: func(t *testing.T, repo string) string {
				writeGitFile(t, filepath.Join(repo, ".git/HEAD"), commitB+"\n")
				return filepath.Join(repo, "rules")
			},
			want: commitB,
		},
		{
			name: "linked worktree",
			setup: func(t *testing.T, repo string) string {
				writeGitFile(t, filepath.Join(repo, "main/.git/refs/heads/topic"), commitB+"\n")
				writeGitFile(t, filepath.Join(repo, "main/.git/worktrees/wt/HEAD"), "ref: refs/heads/topic\n")
				writeGitFile(t, filepath.Join(repo, "main/.git/worktrees/wt/commondir"), "../..\n")
				writeGitFile(t, filepath.Join(repo, "wt/.git"), "gitdir: "+filepath.Join(repo, "main/.git/worktrees/wt")+"\n")
				return filepath.Join(repo, "wt/rules")
			},
			want: commitB,
		},
		{
			name: "git-sync worktree through its link",
			setup: func(t *testing.T, repo string) string {
				// git-sync's .git file may name a path of another container.
				writeGitFile(t, filepath.Join(repo, ".worktrees", commitA, ".git"), "gitdir: /elsewhere/.git/worktrees/x\n")
				if err := os.Symlink(filepath.Join(".worktrees", commitA), filepath.Join(repo, "link")); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Join(repo, ".worktrees", commitA, "rules"), 0o755); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(repo, "link", "rules")
			},
			want: commitA,
		},
		{
			name: "no repository",
			setup: func(t *testing.T, repo string) string {
				return filepath.Join(repo, "rules")
			},
		},
		{
			name: "ref escaping the git dir",
			setup: func(t *testing.T, repo string) string {
				writeGitFile(t, filepath.Join(repo, ".git/HEAD"), "ref: refs/../../secret\n")
				writeGitFile(t, filepath.Join(repo, "secret"), commitA+"\n")
				return filepath.Join(repo, "rules")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t, t.TempDir())
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if got := gitCommit(dir); got != tt.want {
				t.Fatalf("gitCommit = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRevisionNamesTheCommit(t *testing.T) {
	repo := t.TempDir()
	writeGitFile(t, filepath.Join(repo, ".git/HEAD"), commitA+"\n")
	src, _ := copyRules(t)
	dir := filepath.Join(repo, "rules")
	if err := os.Rename(src, dir); err != nil {
		t.Fatal(err)
	}
	got := loadRevision(t, dir)
	content, commit, ok := strings.Cut(got, ",")
	if !ok || !contentRevisionRE.MatchString(content) || commit != "git:"+commitA[:12] {
		t.Fatalf("revision %q, want sha256:<12 hex>,git:%s", got, commitA[:12])
	}
}
