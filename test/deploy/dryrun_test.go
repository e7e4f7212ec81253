package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// serviceMonitorCRD is the smallest CustomResourceDefinition that serves
// monitoring.coreos.com/v1 ServiceMonitor, so the chart's ServiceMonitor is
// dry-run created like everything else (the Prometheus Operator's own CRD
// validates its fields; this one checks group, version, kind and scope).
const serviceMonitorCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`

// TestDryRunApply creates every object the chart renders, in every
// configuration, on the real API server with server-side dry run: the API
// server's validation, defaulting and admission all run, nothing is stored.
func TestDryRunApply(t *testing.T) {
	a := newApplier(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			ns := "sy-" + vs.name
			objs := render(t, ns, vs.files)
			a.dryRunAll(t, objs)
		})
	}
}

// TestHelmInstallDryRun runs `helm install --dry-run=server` itself against
// the API server, as an operator would before installing: helm's own
// install path and the NOTES a user sees.
func TestHelmInstallDryRun(t *testing.T) {
	newApplier(t) // the ServiceMonitor CRD
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			args := []string{"install", "switchyard", chartDir, "--namespace", "sy-install-" + vs.name,
				"--create-namespace", "--dry-run=server"}
			for _, f := range vs.files {
				args = append(args, "-f", filepath.Join("test", "deploy", "testdata", f))
			}
			out, err := helmEnv(t, []string{"KUBECONFIG=" + cluster.AdminKubeconfig}, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "NOTES:\nSwitchyard ") {
				t.Errorf("no NOTES in the install output:\n%s", out)
			}
		})
	}
}

// TestPlainManifestsDryRunApply applies the files the kustomization lists
// (what `kubectl apply -k deploy/kustomize` sends) with server-side dry run.
func TestPlainManifestsDryRunApply(t *testing.T) {
	a := newApplier(t)
	for _, path := range kustomizationResources(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeObjects(string(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		a.dryRunAll(t, objs)
	}
}

type applier struct {
	cs     kubernetes.Interface
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	cfg := cluster.AdminConfig()
	cs := kubernetes.NewForConfigOrDie(cfg)
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	a := &applier{
		cs:     cs,
		dyn:    dynamic.NewForConfigOrDie(cfg),
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
	}
	a.installServiceMonitorCRD(t)
	return a
}

// installServiceMonitorCRD creates the CRD (once per cluster) and waits
// until discovery serves the kind.
func (a *applier) installServiceMonitorCRD(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var crd unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(serviceMonitorCRD), &crd.Object); err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := a.dyn.Resource(gvr).Create(ctx, &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceMonitor CRD: %v", err)
	}
	gk := schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		a.mapper.Reset()
		_, err := a.mapper.RESTMapping(gk, "v1")
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("ServiceMonitor CRD not served: %v", err)
	}
}

// dryRunAll creates the namespaces the objects live in (for real: a dry run
// into a missing namespace is refused), then dry-run creates every object
// with strict field validation, so a misspelt field fails.
func (a *applier) dryRunAll(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" {
			a.ensureNamespace(ctx, t, ns)
		}
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s %s: no such kind on the API server: %v", gvk, o.GetName(), err)
			continue
		}
		var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() == "" {
				t.Errorf("%s %s is namespaced but has no namespace", gvk.Kind, o.GetName())
				continue
			}
			ri = a.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		} else if o.GetNamespace() != "" {
			t.Errorf("%s %s is cluster-scoped but has namespace %s", gvk.Kind, o.GetName(), o.GetNamespace())
		}
		_, err = ri.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
		if err != nil {
			t.Errorf("dry-run create %s %s/%s: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
			continue
		}
		t.Logf("dry-run created %s %s/%s", gvk.Kind, o.GetNamespace(), o.GetName())
	}
}

func (a *applier) ensureNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := a.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// kustomizationResources lists the files deploy/kustomize/kustomization.yaml
// names, checking each exists.
func kustomizationResources(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), kustomizeDir)
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.Kind != "Kustomization" || len(k.Resources) == 0 {
		t.Fatalf("kustomization.yaml: kind %q, resources %v", k.Kind, k.Resources)
	}
	paths := make([]string, 0, len(k.Resources))
	for _, r := range k.Resources {
		if strings.Contains(r, "://") || filepath.IsAbs(r) {
			t.Fatalf("kustomization.yaml: resource %q is not a local file", r)
		}
		paths = append(paths, filepath.Join(dir, r))
	}
	return paths
}
