package routing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadDirRefusesEscapingSymlinks: a rules file that is a symlink out of
// the rules directory is not read (an app team's folder could otherwise
// pull in any file the router can read); a symlink within it is, as a
// mounted ConfigMap's ..data links are.
func TestLoadDirRefusesEscapingSymlinks(t *testing.T) {
	outside := t.TempDir()
	dir := filepath.Join(t.TempDir(), "rules")
	secret := filepath.Join(outside, "web.yaml")
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	write(secret, okWebApp)
	root := testRoot + `  - name: api
    manifest: apps/api/*.yaml
    namespaces: [ci]
    sources: [github]
  - name: ok
    manifest: apps/ok.yaml
    namespaces: [ci]
    sources: [github]
`
	write(filepath.Join(dir, "..data", "root.yaml"), root)
	link(filepath.Join("..data", "root.yaml"), filepath.Join(dir, "root.yaml"))
	link(secret, filepath.Join(dir, "apps", "web.yaml"))
	link(filepath.Join("..", "..", filepath.Base(outside)), filepath.Join(dir, "apps", "api"))
	write(filepath.Join(dir, "..data", "ok.yaml"), strings.Replace(okWebApp, "name: web", "name: ok", 1))
	link(filepath.Join("..", "..data", "ok.yaml"), filepath.Join(dir, "apps", "ok.yaml"))

	_, err := LoadDir(dir, Options{})
	if err == nil {
		t.Fatal("LoadDir read a manifest through a symlink out of the rules directory")
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "apps", "web.yaml")+": read: ") {
		t.Errorf("error does not report apps/web.yaml:\n%v", err)
	}
	if strings.Contains(err.Error(), "ok.yaml") {
		t.Errorf("a symlink within the rules directory was refused:\n%v", err)
	}
}
