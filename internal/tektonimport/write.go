package tektonimport

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Write writes the rules directory: root.yaml, and apps/<app>/app.yaml
// next to copies of the Tekton Triggers files its triggers reference. It
// refuses a directory that already holds a root.yaml.
func (r *Result) Write(dir string, from []string) error {
	if _, err := os.Stat(filepath.Join(dir, "root.yaml")); err == nil {
		return fmt.Errorf("import: %s already holds a root.yaml: choose an empty directory", dir)
	}
	head := "# Written by `router import` from " + strings.Join(baseNames(from), ", ") + ".\n" +
		"# Review the grants, then run `router validate " + dir + "`. See docs/migrate-from-tekton-triggers.md.\n"
	if err := writeYAML(filepath.Join(dir, "root.yaml"), head, r.root); err != nil {
		return err
	}
	for _, a := range r.apps {
		appDir := filepath.Join(dir, "apps", a.manifest.Name)
		taken := map[string]bool{"app.yaml": true}
		for _, f := range a.files {
			name := uniqueName(filepath.Base(f.Path), taken)
			// Unchanged, byte for byte: the team keeps its kubectl-ready files.
			if err := writeFile(filepath.Join(appDir, name), f.Data); err != nil {
				return err
			}
			a.manifest.Resources = append(a.manifest.Resources, name)
		}
		if err := writeYAML(filepath.Join(appDir, "app.yaml"), head, a.manifest); err != nil {
			return err
		}
	}
	return nil
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

func writeYAML(path, head string, v any) error {
	var buf bytes.Buffer
	buf.WriteString(head)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("import: %s: %w", path, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("import: %s: %w", path, err)
	}
	return writeFile(path, buf.Bytes())
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}
