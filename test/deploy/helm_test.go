package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/test/k8senv"
)

// The chart and the plain manifests, relative to the repository root.
const (
	chartDir     = "deploy/helm/switchyard"
	kustomizeDir = "deploy/kustomize"
)

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helmBin returns the cached helm binary, building it on first use. A
// missing helm is a failure: the chart would otherwise go untested.
func helmBin(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		root := repoRoot(t)
		// A cold build takes minutes on 2 cores.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "test", "k8s", "helm.sh"))
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			helmErr = fmt.Errorf("test/k8s/helm.sh: %w\n%s", err, stderr.String())
			return
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		helmPath = strings.TrimSpace(lines[len(lines)-1])
		if helmPath == "" {
			helmErr = errors.New("test/k8s/helm.sh printed no path")
		}
	})
	if helmErr != nil {
		t.Fatalf("cannot get helm: %v", helmErr)
	}
	return helmPath
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := k8senv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// helm runs the helm binary in the repository root with an isolated home,
// so no user configuration or repository cache takes part.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return helmEnv(t, nil, args...)
}

// helmEnv is helm with extra environment variables (KUBECONFIG=...).
func helmEnv(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	bin := helmBin(t)
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// renderArgs is `helm template` for release "switchyard" in namespace ns
// with the given values files (relative to test/deploy/testdata) and
// --set pairs.
func renderArgs(ns string, valuesFiles []string, sets []string) []string {
	args := []string{"template", "switchyard", chartDir, "--namespace", ns}
	for _, f := range valuesFiles {
		args = append(args, "-f", filepath.Join("test", "deploy", "testdata", f))
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

// render renders the chart and decodes every object.
func render(t *testing.T, ns string, valuesFiles []string, sets ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helm(t, renderArgs(ns, valuesFiles, sets)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("helm template rendered no objects")
	}
	return objs
}

// decodeObjects splits a multi-document YAML stream into objects, skipping
// empty documents (comments only).
func decodeObjects(stream string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for i, doc := range strings.Split("\n"+stream, "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document %d has no kind or apiVersion:\n%s", i, doc)
		}
		objs = append(objs, u)
	}
	return objs, nil
}
