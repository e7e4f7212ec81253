package dispatch

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktesting "k8s.io/client-go/testing"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

var prResource = schema.GroupResource{Group: "tekton.dev", Resource: "pipelineruns"}

type outcome int

const (
	success outcome = iota
	existed
	permanent
	transient
)

func (o outcome) String() string {
	return [...]string{"success", "existed", "permanent", "transient"}[o]
}

func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return success
	case errors.Is(err, ErrAlreadyExists):
		return existed
	case queue.IsPermanent(err):
		return permanent
	default:
		return transient
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want outcome
	}{
		{"nil", nil, success},
		{"already exists", apierrors.NewAlreadyExists(prResource, "x"), existed},
		{"forbidden", apierrors.NewForbidden(prResource, "x", errors.New("rbac")), permanent},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Group: "tekton.dev", Kind: "PipelineRun"}, "x", nil), permanent},
		{"bad request", apierrors.NewBadRequest("admission webhook denied the request"), permanent},
		{"namespace not found", apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "shop-ci"), permanent},
		{"method not supported", apierrors.NewMethodNotSupported(prResource, "create"), permanent},
		{"too large", apierrors.NewRequestEntityTooLargeError("limit is 3145728"), permanent},
		{"server timeout", apierrors.NewServerTimeout(prResource, "create", 1), transient},
		{"timeout", apierrors.NewTimeoutError("request timed out", 1), transient},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), transient},
		{"internal error", apierrors.NewInternalError(errors.New("failed calling webhook")), transient},
		{"service unavailable", apierrors.NewServiceUnavailable("etcd"), transient},
		{"conflict", apierrors.NewConflict(prResource, "x", errors.New("modified")), transient},
		{"unauthorized", apierrors.NewUnauthorized("token expired"), transient},
		{"connection refused", &url.Error{Op: "Post", URL: "https://k8s:6443", Err: syscall.ECONNREFUSED}, transient},
		{"deadline", context.DeadlineExceeded, transient},
		{"wrapped forbidden", errors.Join(errors.New("ctx"), apierrors.NewForbidden(prResource, "x", errors.New("rbac"))), permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if o := outcomeOf(got); o != tt.want {
				t.Errorf("classify(%v) = %v (%v), want %v", tt.err, got, o, tt.want)
			}
			if tt.err != nil && !errors.Is(got, tt.err) {
				t.Errorf("classify(%v) = %v, does not wrap the original", tt.err, got)
			}
		})
	}
}

// TestClassifyRetryAfter: a 429's Retry-After reaches the consumer, which
// waits at least that long.
func TestClassifyRetryAfter(t *testing.T) {
	got := classify(apierrors.NewTooManyRequests("slow down", 7))
	if d, ok := queue.RetryDelay(got); !ok || d != 7*time.Second {
		t.Fatalf("RetryDelay = %v, %v; want 7s", d, ok)
	}
	if queue.IsPermanent(got) {
		t.Fatal("429 must be retried")
	}
	if _, ok := queue.RetryDelay(classify(apierrors.NewConflict(prResource, "x", errors.New("modified")))); ok {
		t.Fatal("a conflict carries no delay hint")
	}
}

func TestKubeCreator(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	c := NewKubeCreatorForClient(client)
	pr := mustRender(t, testWork())

	if err := c.Create(ctx, pr); err != nil {
		t.Fatalf("first Create: %v", err)
	}
	got, err := client.TektonV1().PipelineRuns(pr.Namespace).Get(ctx, pr.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get created PipelineRun: %v", err)
	}
	if got.Labels[LabelEventID] != testDeliveryID || got.Spec.PipelineRef.Name != "build-and-push" {
		t.Errorf("created PipelineRun differs: %+v", got)
	}

	err = c.Create(ctx, pr)
	if !errors.Is(err, ErrAlreadyExists) || queue.IsPermanent(err) {
		t.Fatalf("second Create = %v, want ErrAlreadyExists", err)
	}
	list, err := client.TektonV1().PipelineRuns(pr.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Errorf("%d PipelineRuns after two creates, want 1", len(list.Items))
	}
}

func TestKubeCreatorErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want outcome
	}{
		{"forbidden", apierrors.NewForbidden(prResource, "x", errors.New(`User "switchyard" cannot create resource`)), permanent},
		{"server timeout", apierrors.NewServerTimeout(prResource, "create", 2), transient},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), transient},
		{"internal error", apierrors.NewInternalError(errors.New("etcdserver: leader changed")), transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewSimpleClientset()
			client.PrependReactor("create", "pipelineruns", func(ktesting.Action) (bool, runtime.Object, error) {
				return true, nil, tt.err
			})
			pr := mustRender(t, testWork())
			err := NewKubeCreatorForClient(client).Create(context.Background(), pr)
			if o := outcomeOf(err); o != tt.want {
				t.Errorf("Create = %v (%v), want %v", err, o, tt.want)
			}
			want := "create pipelinerun shop-ci/" + pr.Name + ": "
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Create error %q lacks prefix %q", err, want)
			}
		})
	}
}

const kubeconfigTemplate = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: SERVER
contexts:
- name: x
  context:
    cluster: c
    user: u
current-context: x
users:
- name: u
  user:
    token: not-a-secret
`

func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	content := []byte(strings.ReplaceAll(kubeconfigTemplate, "SERVER", server))
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRESTConfig(t *testing.T) {
	explicit := writeKubeconfig(t, "https://explicit.example:6443")
	fromEnv := writeKubeconfig(t, "https://env.example:6443")
	missing := filepath.Join(t.TempDir(), "missing")

	tests := []struct {
		name       string
		kubeconfig string
		env        string
		wantHost   string
		wantNoCl   bool
	}{
		{name: "explicit path", kubeconfig: explicit, wantHost: "https://explicit.example:6443"},
		{name: "explicit path wins over env", kubeconfig: explicit, env: fromEnv, wantHost: "https://explicit.example:6443"},
		{name: "KUBECONFIG", env: fromEnv, wantHost: "https://env.example:6443"},
		{name: "KUBECONFIG list skips missing files", env: missing + string(filepath.ListSeparator) + fromEnv, wantHost: "https://env.example:6443"},
		{name: "KUBECONFIG only missing files", env: missing, wantNoCl: true},
		{name: "nothing", wantNoCl: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tt.env)
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			t.Setenv("KUBERNETES_SERVICE_PORT", "")
			cfg, err := RESTConfig(tt.kubeconfig, 50, 100)
			if tt.wantNoCl {
				if !errors.Is(err, ErrNoCluster) {
					t.Fatalf("RESTConfig = %v, %v; want ErrNoCluster", cfg, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("RESTConfig: %v", err)
			}
			if cfg.Host != tt.wantHost || cfg.QPS != 50 || cfg.Burst != 100 || cfg.UserAgent != "switchyard" {
				t.Errorf("RESTConfig = host %q qps %v burst %d agent %q; want host %q qps 50 burst 100 agent switchyard",
					cfg.Host, cfg.QPS, cfg.Burst, cfg.UserAgent, tt.wantHost)
			}
			if cfg.BearerToken != "not-a-secret" {
				t.Errorf("credentials not loaded from kubeconfig")
			}
			if _, err := NewKubeCreator(cfg); err != nil {
				t.Errorf("NewKubeCreator: %v", err)
			}
		})
	}
}

func TestRESTConfigExplicitMissing(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := RESTConfig(filepath.Join(t.TempDir(), "missing"), 50, 100)
	if err == nil || errors.Is(err, ErrNoCluster) {
		t.Errorf("RESTConfig with a missing explicit file = %v, want a load error other than ErrNoCluster", err)
	}
}
