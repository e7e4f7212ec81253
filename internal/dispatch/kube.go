package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// ErrNoCluster reports that no Kubernetes configuration was found: no
// kubeconfig given, none in $KUBECONFIG, and not running in a cluster. The
// router then writes PipelineRuns to a directory instead (DirCreator).
var ErrNoCluster = errors.New("no kubernetes cluster configured")

// UserAgent is the User-Agent of Switchyard's Kubernetes requests.
const UserAgent = "switchyard"

// fieldManager names Switchyard as the owner of the fields it sets.
const fieldManager = "switchyard"

// KubeCreator creates PipelineRuns through the Tekton clientset.
type KubeCreator struct {
	client      versioned.Interface
	concurrency *Concurrency
}

var _ Creator = (*KubeCreator)(nil)

// NewKubeCreator returns a KubeCreator talking to the cluster cfg describes
// (see RESTConfig).
func NewKubeCreator(cfg *rest.Config) (*KubeCreator, error) {
	client, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("tekton client: %w", err)
	}
	return NewKubeCreatorForClient(client), nil
}

// NewKubeCreatorForClient returns a KubeCreator using an existing Tekton
// clientset (shared with other components, or a fake in tests).
func NewKubeCreatorForClient(client versioned.Interface) *KubeCreator {
	return &KubeCreator{client: client, concurrency: NewConcurrency(client, nil, nil)}
}

// UseLocker makes the creator's concurrency controller serialize group
// decisions with locker (queue.Queue does so across replicas) and log to
// logger, and returns the controller, for its caller to Run. Call it before
// the first Create.
func (k *KubeCreator) UseLocker(locker Locker, logger *slog.Logger) *Concurrency {
	k.concurrency = NewConcurrency(k.client, locker, logger)
	return k.concurrency
}

// Create creates pr in its namespace. See Creator for the error contract.
//
// A PipelineRun of a concurrency group is then handed to the concurrency
// controller, also when it existed already (a redelivery after a crash
// between the two steps); its errors are transient.
func (k *KubeCreator) Create(ctx context.Context, pr *pipelinev1.PipelineRun) error {
	if pr.Labels[LabelConcurrencyGroup] != "" {
		pr = pr.DeepCopy()
		if pr.Annotations == nil {
			pr.Annotations = map[string]string{}
		}
		pr.Annotations[AnnotationDispatchedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	_, err := k.client.TektonV1().PipelineRuns(pr.Namespace).Create(ctx, pr, metav1.CreateOptions{FieldManager: fieldManager})
	if err = classify(err); err != nil {
		err = fmt.Errorf("create pipelinerun %s/%s: %w", pr.Namespace, pr.Name, err)
		if !errors.Is(err, ErrAlreadyExists) {
			return err
		}
	}
	if cerr := k.concurrency.AfterCreate(ctx, pr); cerr != nil {
		return fmt.Errorf("pipelinerun %s/%s: concurrency: %w", pr.Namespace, pr.Name, cerr)
	}
	return err // nil, or ErrAlreadyExists
}

// classify sorts an API error from creating a PipelineRun:
//   - AlreadyExists: wrapped with ErrAlreadyExists (success);
//   - Forbidden (RBAC, a terminating namespace) and NotFound (missing
//     namespace or CRD): queue.PermanentAfter a few attempts;
//   - Invalid, BadRequest (also an admission webhook's denial),
//     MethodNotSupported, RequestEntityTooLarge: marked queue.Permanent, the
//     same request can only fail again;
//   - everything else is transient and returned as is: timeouts, refused
//     connections, 5xx (also an unreachable webhook), 429, Conflict,
//     Unauthorized (credentials may be rotated), a cancelled context; when
//     the API server suggested a delay (Retry-After on 429 or 503) it is
//     passed on with queue.RetryAfter.
func classify(err error) error {
	const forbiddenAttempts = 5
	switch {
	case err == nil:
		return nil
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: %w", ErrAlreadyExists, err)
	case apierrors.IsForbidden(err), apierrors.IsNotFound(err):
		// Forbidden and NotFound are what a just-restarted API server
		// answers until its RBAC and discovery caches are filled (seen in
		// the e2e outage test), so they get a few attempts first.
		return queue.PermanentAfter(err, forbiddenAttempts)
	case apierrors.IsInvalid(err),
		apierrors.IsBadRequest(err),
		apierrors.IsMethodNotSupported(err),
		apierrors.IsRequestEntityTooLargeError(err):
		return queue.Permanent(err)
	default:
		if secs, ok := apierrors.SuggestsClientDelay(err); ok && secs > 0 {
			return queue.RetryAfter(err, time.Duration(secs)*time.Second)
		}
		return err
	}
}

// RESTConfig returns the client configuration for the cluster to create
// PipelineRuns in, from the first of: the kubeconfig file given, the files in
// $KUBECONFIG, the in-cluster service account. When none applies it returns
// an error wrapping ErrNoCluster. ~/.kube/config is deliberately not
// consulted: a laptop's current context must not receive PipelineRuns unless
// asked to.
//
// qps and burst set the client-side rate limit. Zero keeps client-go's
// default (5/10, a bottleneck for a router); a negative qps disables it,
// which is the router's default: a fixed client rate either idles the API
// server or overloads it, while its priority and fairness answers 429 with
// Retry-After exactly when it is busy, and dispatch retries after that
// delay (client-go itself first retries a 429 after its Retry-After).
func RESTConfig(kubeconfig string, qps float32, burst int) (*rest.Config, error) {
	cfg, err := loadRESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS = qps
	cfg.Burst = burst
	cfg.UserAgent = UserAgent
	return cfg, nil
}

func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(env)}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		switch {
		case clientcmd.IsEmptyConfig(err):
			// Missing files in $KUBECONFIG are skipped, as kubectl does.
			return nil, fmt.Errorf("load $%s %s: %w", clientcmd.RecommendedConfigPathEnvVar, env, ErrNoCluster)
		case err != nil:
			return nil, fmt.Errorf("load $%s %s: %w", clientcmd.RecommendedConfigPathEnvVar, env, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	switch {
	case errors.Is(err, rest.ErrNotInCluster):
		return nil, fmt.Errorf("no kubeconfig, $%s unset, not in a cluster: %w", clientcmd.RecommendedConfigPathEnvVar, ErrNoCluster)
	case err != nil:
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	return cfg, nil
}
