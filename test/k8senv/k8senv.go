// Package k8senv runs a real kube-apiserver + etcd with Tekton's CRDs for
// tests, using the scripts in test/k8s (up.sh, down.sh, apiserver.sh).
//
// Typical use, one cluster per test package:
//
//	var cluster *k8senv.Cluster
//
//	func TestMain(m *testing.M) {
//		k8senv.Main(m, func(c *k8senv.Cluster) error {
//			cluster = c
//			return nil
//		})
//	}
//
//	func TestSomething(t *testing.T) {
//		cs := kubernetes.NewForConfigOrDie(cluster.AdminConfig())
//		path, err := cluster.RouterKubeconfig(ctx, "ci") // the router's own identity
//		...
//	}
//
// The cluster has no controllers (no kube-controller-manager, no scheduler, no
// Tekton controller or webhook): objects are stored and served, nothing
// reconciles them, namespaces never finish terminating, and Tekton's
// defaulting/validation webhooks do not run.
//
// The first Start on a machine builds kube-apiserver and etcd from the Go
// module proxy (about 10 minutes on 2 cores; see test/k8s/build.sh); later
// starts take a few seconds. Run test/k8s/build.sh in CI before `go test` so
// the build does not count against the test timeout.
package k8senv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ModulePath is the main module's path, used to recognise the repository root.
const ModulePath = "github.com/switchyard-dev/switchyard"

// DefaultStartTimeout bounds Start when its context has no deadline. It
// covers a cold build of kube-apiserver. Override with the environment
// variable SWITCHYARD_K8S_START_TIMEOUT (a Go duration, e.g. "30m").
const DefaultStartTimeout = 20 * time.Minute

// Cluster is a running kube-apiserver + etcd with Tekton CRDs.
type Cluster struct {
	// StateDir holds the cluster's state (etcd data, credentials, logs,
	// kubeconfigs). It is removed by Stop.
	StateDir string
	// AdminKubeconfig is the path of a kubeconfig for user "admin" (group
	// system:masters).
	AdminKubeconfig string
	// RepoRoot is the repository root the scripts were run from.
	RepoRoot string

	admin *rest.Config

	mu      sync.Mutex
	routerN int
}

// Start runs test/k8s/up.sh in a fresh temporary state dir and returns the
// running cluster. It honours ctx (if ctx has no deadline, DefaultStartTimeout
// applies); on failure or timeout it cleans up and returns an error that
// includes the end of the script's log. up.sh's log is also streamed to
// os.Stderr.
//
// The processes are tied to the current process: if it exits without calling
// Stop (crash, test timeout), a watchdog stops them and removes StateDir.
func Start(ctx context.Context) (*Cluster, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	timeout, err := startTimeout()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	state, err := os.MkdirTemp("", "switchyard-k8s-")
	if err != nil {
		return nil, fmt.Errorf("k8senv: %w", err)
	}
	c := &Cluster{StateDir: state, RepoRoot: root}
	// The marker lets down.sh clean up even if up.sh is cancelled before
	// it gets to create it.
	if err := os.WriteFile(filepath.Join(state, ".switchyard-k8s"), nil, 0o600); err != nil {
		_ = os.Remove(state)
		return nil, fmt.Errorf("k8senv: %w", err)
	}

	began := time.Now()
	var stdout bytes.Buffer
	tail := NewTailBuffer(8 << 10)
	err = c.script(ctx, &stdout, io.MultiWriter(os.Stderr, tail), []string{
		"SWITCHYARD_K8S_STATE=" + state,
		"SWITCHYARD_K8S_OWNER_PID=" + strconv.Itoa(os.Getpid()),
	}, "up.sh")
	if err != nil {
		_ = c.Stop()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("k8senv: test/k8s/up.sh did not finish within %s (%v); "+
				"a cold build of kube-apiserver takes ~10 min on 2 cores: run test/k8s/build.sh first "+
				"or raise SWITCHYARD_K8S_START_TIMEOUT; log tail:\n%s",
				time.Since(began).Round(time.Second), context.Cause(ctx), tail)
		}
		return nil, fmt.Errorf("k8senv: test/k8s/up.sh failed: %w; log tail:\n%s", err, tail)
	}
	c.AdminKubeconfig = lastLine(stdout.String())
	if c.AdminKubeconfig == "" {
		_ = c.Stop()
		return nil, fmt.Errorf("k8senv: test/k8s/up.sh printed no kubeconfig path; log tail:\n%s", tail)
	}
	if c.admin, err = ConfigFromKubeconfig(c.AdminKubeconfig); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// Stop stops kube-apiserver and etcd and removes StateDir (test/k8s/down.sh).
// It is safe to call more than once. With SWITCHYARD_K8S_KEEP_STATE=1 in the
// environment the state dir (logs, etcd data) is kept for debugging.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := c.script(ctx, io.Discard, &out, nil, "down.sh", c.StateDir); err != nil {
		return fmt.Errorf("k8senv: test/k8s/down.sh %s: %w: %s", c.StateDir, err, out.String())
	}
	return nil
}

// AdminConfig returns a new copy of the cluster-admin client configuration.
func (c *Cluster) AdminConfig() *rest.Config { return rest.CopyConfig(c.admin) }

// APIServerURL is the API server's base URL, e.g. https://127.0.0.1:23456.
func (c *Cluster) APIServerURL() string { return c.admin.Host }

// StopAPIServer stops only kube-apiserver gracefully (SIGTERM) and returns
// once its port no longer accepts connections. etcd and all objects survive.
func (c *Cluster) StopAPIServer(ctx context.Context) error { return c.apiserver(ctx, "stop") }

// KillAPIServer is StopAPIServer with SIGKILL, i.e. a crash.
func (c *Cluster) KillAPIServer(ctx context.Context) error { return c.apiserver(ctx, "kill") }

// StartAPIServer starts kube-apiserver again on the same port with the same
// credentials and serving certificate (so every kubeconfig and rest.Config
// handed out before keeps working) and waits until it is ready. It is a no-op
// if the API server is running.
func (c *Cluster) StartAPIServer(ctx context.Context) error { return c.apiserver(ctx, "start") }

func (c *Cluster) apiserver(ctx context.Context, verb string) error {
	var out bytes.Buffer
	if err := c.script(ctx, io.Discard, &out, nil, "apiserver.sh", verb, c.StateDir); err != nil {
		return fmt.Errorf("k8senv: test/k8s/apiserver.sh %s: %w: %s", verb, err, out.String())
	}
	return nil
}

// script runs test/k8s/<name> with bash in its own process group, killing the
// whole group if ctx ends.
func (c *Cluster) script(ctx context.Context, stdout, stderr io.Writer, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(c.RepoRoot, "test", "k8s", name)}, args...)...)
	cmd.Dir = c.RepoRoot
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Only while the script has not been reaped: after that its pid,
		// and so its group id, may be another process's (this machine's
		// pid_max is 32768, and go test forks a lot).
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return err
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd.Run()
}

// Main is meant to be called from TestMain. It starts one cluster for the
// test package, calls setup (may be nil; typically it stores the cluster in a
// package variable; a non-nil error aborts), runs the tests, stops the
// cluster and exits with the tests' exit code. If the cluster cannot start or
// setup fails it prints why to stderr and exits 1: tests are never skipped
// silently. Ctrl-C during startup aborts it cleanly.
func Main(m *testing.M, setup func(*Cluster) error) {
	os.Exit(run(m, setup))
}

func run(m *testing.M, setup func(*Cluster) error) (code int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c, err := Start(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "k8senv: cannot start the test cluster: %v\n", err)
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "k8senv: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}()
	if setup != nil {
		if err := setup(c); err != nil {
			fmt.Fprintf(os.Stderr, "k8senv: setup failed: %v\n", err)
			return 1
		}
	}
	return m.Run()
}

// ConfigFromKubeconfig loads a client configuration from a kubeconfig file
// (e.g. Cluster.AdminKubeconfig or a path from RouterKubeconfig).
func ConfigFromKubeconfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("k8senv: loading %s: %w", path, err)
	}
	return cfg, nil
}

// RepoRoot returns the repository root: $SWITCHYARD_REPO_ROOT if set, else
// the nearest directory above this package's source (or the working
// directory) whose go.mod declares ModulePath.
func RepoRoot() (string, error) {
	if dir := os.Getenv("SWITCHYARD_REPO_ROOT"); dir != "" {
		return dir, nil
	}
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if isRepoRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("k8senv: cannot find the repository root (go.mod of " + ModulePath +
		" with test/k8s/up.sh); set SWITCHYARD_REPO_ROOT")
}

func isRepoRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == ModulePath {
			_, err := os.Stat(filepath.Join(dir, "test", "k8s", "up.sh"))
			return err == nil
		}
	}
	return false
}

func startTimeout() (time.Duration, error) {
	s := os.Getenv("SWITCHYARD_K8S_START_TIMEOUT")
	if s == "" {
		return DefaultStartTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("k8senv: bad SWITCHYARD_K8S_START_TIMEOUT %q", s)
	}
	return d, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TailBuffer keeps the last bytes written to it, for a process's log in a
// failure message.
type TailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// NewTailBuffer keeps the last max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{max: max} }

// Write keeps p, dropping what is older than the last max bytes.
func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String is what is kept.
func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
