package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestRulesConfigMapLoads serves the repository's own rules/ through the
// chart's rules ConfigMap (rules.source configMap), lays the volume out as
// the kubelet does (files behind a ..data symlink, app folders as links into
// it) and loads it as the router does: nested app folders keep their layout
// and the router's os.Root loader accepts the links.
func TestRulesConfigMapLoads(t *testing.T) {
	root := repoRoot(t)
	want := map[string]string{}
	sets := []string{"rules.source=configMap"}
	err := filepath.WalkDir(filepath.Join(root, "rules"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(root, "rules"), path)
		data, err := os.ReadFile(path)
		want[filepath.ToSlash(rel)] = string(data)
		sets = append(sets, "rules.files."+strings.ReplaceAll(filepath.ToSlash(rel), ".", `\.`)+"="+path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	args := renderArgs("switchyard", nil, nil)
	for _, s := range sets[1:] {
		args = append(args, "--set-file", s)
	}
	args = append(args, "--set", sets[0])
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	fromUnstructured(t, one(t, objs, "Deployment", "switchyard"), &d)
	router := container(t, d.Spec.Template.Spec.Containers, "router")
	vol := mountedVolume(t, router, d.Spec.Template.Spec, flagValue(t, router.Args, "--rules"))
	if vol.ConfigMap == nil {
		t.Fatalf("rules volume is not a ConfigMap: %+v", vol.VolumeSource)
	}
	var cm corev1.ConfigMap
	fromUnstructured(t, one(t, objs, "ConfigMap", vol.ConfigMap.Name), &cm)

	dir := kubeletConfigMapVolume(t, cm, vol.ConfigMap.Items)
	for path, content := range want {
		got, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil || string(got) != content {
			t.Errorf("%s in the volume differs from rules/%s (err %v)", path, path, err)
		}
	}
	if _, err := routing.LoadDir(dir, ingest.LoadOptions()); err != nil {
		t.Fatalf("the router cannot load rules served by the chart's ConfigMap: %v", err)
	}
}

// kubeletConfigMapVolume writes a ConfigMap volume with items as the
// kubelet's atomic writer lays it out and returns its directory.
func kubeletConfigMapVolume(t *testing.T, cm corev1.ConfigMap, items []corev1.KeyToPath) string {
	t.Helper()
	dir := t.TempDir()
	const ts = "..2026_11_29_00_00_00.000000001"
	top := map[string]bool{}
	for _, item := range items {
		data, ok := cm.Data[item.Key]
		if !ok {
			t.Fatalf("item key %s not in the ConfigMap", item.Key)
		}
		path := filepath.Join(dir, ts, filepath.FromSlash(item.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		top[strings.SplitN(item.Path, "/", 2)[0]] = true
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range top {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
