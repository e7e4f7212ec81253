package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/test/k8senv"
)

const (
	grantedNS    = "ci"
	notGrantedNS = "other"
)

// routerClients returns clients authenticated as the router's ServiceAccount
// with deploy/rbac.yaml applied for namespace "ci" only. "other" exists but
// is not granted.
func routerClients(ctx context.Context, t *testing.T) (tektonclient.Interface, kubernetes.Interface) {
	t.Helper()
	path, err := cluster.RouterKubeconfig(ctx, grantedNS)
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(cluster.AdminConfig())
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: notGrantedNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cfg, err := k8senv.ConfigFromKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BearerToken == "" || cfg.BearerToken == cluster.AdminConfig().BearerToken {
		t.Fatal("router kubeconfig does not carry its own token")
	}
	return tektonclient.NewForConfigOrDie(cfg), kubernetes.NewForConfigOrDie(cfg)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newPipelineRun is a minimal PipelineRun that Tekton itself would accept.
func newPipelineRun(namespace string) *pipelinev1.PipelineRun {
	return &pipelinev1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("rbac-%08x", rand.Uint32()),
			Namespace: namespace,
			Labels:    map[string]string{"switchyard.dev/test": "rbac"},
		},
		Spec: pipelinev1.PipelineRunSpec{
			PipelineSpec: &pipelinev1.PipelineSpec{
				Tasks: []pipelinev1.PipelineTask{{
					Name: "hello",
					TaskSpec: &pipelinev1.EmbeddedTask{TaskSpec: pipelinev1.TaskSpec{
						Steps: []pipelinev1.Step{{
							Name:   "echo",
							Image:  "busybox",
							Script: "echo hello",
						}},
					}},
				}},
			},
		},
	}
}

func TestRouterCreatesPipelineRunInGrantedNamespace(t *testing.T) {
	ctx := testContext(t)
	tekton, _ := routerClients(ctx, t)

	pr := newPipelineRun(grantedNS)
	created, err := tekton.TektonV1().PipelineRuns(grantedNS).Create(ctx, pr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("router create PipelineRun in %q: %v", grantedNS, err)
	}
	if created.UID == "" {
		t.Fatal("created PipelineRun has no UID")
	}

	_, err = tekton.TektonV1().PipelineRuns(grantedNS).Create(ctx, newPipelineRunNamed(pr.Name, grantedNS), metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create with the same name: got %v, want AlreadyExists", err)
	}

	// The router may also read, list and patch what it created.
	got, err := tekton.TektonV1().PipelineRuns(grantedNS).Get(ctx, pr.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("router get: %v", err)
	}
	if got.UID != created.UID {
		t.Fatalf("got UID %s, want %s", got.UID, created.UID)
	}
	if _, err := tekton.TektonV1().PipelineRuns(grantedNS).List(ctx, metav1.ListOptions{LabelSelector: "switchyard.dev/test=rbac"}); err != nil {
		t.Fatalf("router list: %v", err)
	}
	w, err := tekton.TektonV1().PipelineRuns(grantedNS).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("router watch: %v", err)
	}
	w.Stop()
	if _, err := tekton.TektonV1().PipelineRuns(grantedNS).Patch(ctx, pr.Name, "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"switchyard.dev/patched":"true"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("router patch: %v", err)
	}
	// ... but not delete or update it: the ClusterRole grants exactly
	// create, get, list, watch, patch.
	if err := tekton.TektonV1().PipelineRuns(grantedNS).Delete(ctx, pr.Name, metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("router delete: got %v, want Forbidden", err)
	}
}

func newPipelineRunNamed(name, namespace string) *pipelinev1.PipelineRun {
	pr := newPipelineRun(namespace)
	pr.Name = name
	return pr
}

func TestRouterForbiddenInNamespaceNotGranted(t *testing.T) {
	ctx := testContext(t)
	tekton, _ := routerClients(ctx, t)

	_, err := tekton.TektonV1().PipelineRuns(notGrantedNS).Create(ctx, newPipelineRun(notGrantedNS), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("router create PipelineRun in %q: got %v, want Forbidden", notGrantedNS, err)
	}
	_, err = tekton.TektonV1().PipelineRuns("").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("router list PipelineRuns in all namespaces: got %v, want Forbidden", err)
	}
}

func TestRouterCannotTouchConfigMapsOrSecrets(t *testing.T) {
	ctx := testContext(t)
	_, kube := routerClients(ctx, t)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "router-cm", Namespace: grantedNS}}
	if _, err := kube.CoreV1().ConfigMaps(grantedNS).Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("router create ConfigMap: got %v, want Forbidden", err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "router-secret", Namespace: grantedNS}}
	if _, err := kube.CoreV1().Secrets(grantedNS).Create(ctx, secret, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("router create Secret: got %v, want Forbidden", err)
	}
	if _, err := kube.CoreV1().Secrets(grantedNS).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("router list Secrets: got %v, want Forbidden", err)
	}
}
