package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
	"github.com/switchyard-dev/switchyard/test/k8senv"
)

var (
	buildOnce   sync.Once
	routerPath  string
	errBuilding error
)

// routerBinary builds cmd/router once for the package: the e2e tests run
// the real binary as a separate process.
func routerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := k8senv.RepoRoot()
		if err != nil {
			errBuilding = err
			return
		}
		dir, err := os.MkdirTemp("", "switchyard-e2e-bin-")
		if err != nil {
			errBuilding = err
			return
		}
		routerPath = filepath.Join(dir, "router")
		cmd := exec.Command("go", "build", "-o", routerPath, "./cmd/router")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			errBuilding = fmt.Errorf("go build ./cmd/router: %v\n%s", err, out)
		}
	})
	if errBuilding != nil {
		t.Fatal(errBuilding)
	}
	return routerPath
}

// rulesFor writes a manifest granting app "web" the namespace ns and, when
// brokenNS is set, an app "broken" whose trigger renders a PipelineRun that
// Tekton's validation rejects.
func rulesFor(t *testing.T, ns, brokenNS string) string {
	t.Helper()
	dir := t.TempDir()
	root := fmt.Sprintf(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: GITHUB_WEBHOOK_SECRET}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [%s]
    serviceAccounts: [pipeline-runner]
    sources: [github]
`, ns)
	web := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match:
      types: [dev.switchyard.git.push]
      repositories: [acme/web]
      branches: [main]
    run:
      pipelineRef: build-and-test
      timeout: 45m
      params:
        - {name: repo-url, value: $(body.repository.clone_url)}
        - {name: revision, value: $(extensions.revision)}
`
	files := map[string]string{"root.yaml": root, "apps/web.yaml": web}
	if brokenNS != "" {
		files["root.yaml"] += fmt.Sprintf(`  - name: broken
    manifest: apps/broken.yaml
    namespaces: [%s]
    sources: [github]
`, brokenNS)
		// A Tekton Triggers template whose pipelineRef comes from the commit
		// message: for the sample push ("Fix cart total rounding") it is not
		// a Kubernetes name, so Tekton's validation rejects the rendered
		// PipelineRun and dispatch must dead-letter it.
		files["apps/broken.yaml"] = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: broken
triggers:
  - name: build
    run:
      bindings:
        - {name: pipeline, value: $(body.head_commit.message)}
      template:
        spec:
          params: [{name: pipeline}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: broken-}
              spec:
                pipelineRef: {name: $(tt.params.pipeline)}
`
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// router is a `router serve` subprocess.
type router struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string
	dataDir string
	logs    *lockedBuffer
	done    chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records returns the JSON log records with the given msg.
func (l *lockedBuffer) records(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

type routerConfig struct {
	rulesDir, dataDir, kubeconfig, natsURL, secret string
}

func startRouter(t *testing.T, cfg routerConfig) *router {
	t.Helper()
	return startRouterArgs(t, cfg)
}

// startRouterArgs starts `router serve` with extra flags.
func startRouterArgs(t *testing.T, cfg routerConfig, extra ...string) *router {
	t.Helper()
	args := []string{"serve", "--rules", cfg.rulesDir, "--data-dir", cfg.dataDir, "--listen", "127.0.0.1:0",
		"--dispatch", "kube", "--kubeconfig", cfg.kubeconfig, "--shutdown-grace", "5s", "--drain-delay", "0"}
	if cfg.natsURL != "" {
		args = append(args, "--nats-url", cfg.natsURL)
	}
	args = append(args, extra...)
	r := &router{t: t, dataDir: cfg.dataDir, logs: &lockedBuffer{}, done: make(chan error, 1)}
	r.cmd = exec.Command(routerBinary(t), args...)
	r.cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET="+cfg.secret, "KUBECONFIG=")
	r.cmd.Stderr = r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("router logs:\n%s", r.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if recs := r.logs.records("listening"); len(recs) > 0 {
			r.url = "http://" + recs[0]["addr"].(string)
			return r
		}
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("router exited before listening (%v):\n%s", err, r.logs.String())
		case <-time.After(25 * time.Millisecond):
		}
	}
	t.Fatalf("router did not start:\n%s", r.logs.String())
	return nil
}

// kill stops the router with SIGKILL: a crash.
func (r *router) kill() {
	if r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.done <- nil
}

// stop stops the router with SIGTERM and waits for a clean exit.
func (r *router) stop() {
	r.t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			r.t.Fatalf("router exited with %v:\n%s", err, r.logs.String())
		}
	case <-time.After(30 * time.Second):
		r.t.Fatal("router did not stop on SIGTERM")
	}
}

func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func samplePush(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("../testdata/github/push.json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// sendPush posts a push signed as GitHub signs it and returns the status.
func sendPush(t *testing.T, url, secret, delivery string, body []byte) int {
	t.Helper()
	body = perDelivery(body, delivery)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url+"/v1/hooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", delivery, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func adminTekton(t *testing.T) versioned.Interface {
	t.Helper()
	c, err := versioned.NewForConfig(cluster.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitForRuns polls, as the admin, until ns holds want PipelineRuns of app
// web, and returns them. It fails if there are ever more than want.
func waitForRuns(t *testing.T, tekton versioned.Interface, ns string, want int, within time.Duration) []pipelinev1.PipelineRun {
	t.Helper()
	deadline := time.Now().Add(within)
	var items []pipelinev1.PipelineRun
	for time.Now().Before(deadline) {
		list, err := tekton.TektonV1().PipelineRuns(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "switchyard.dev/app=web"})
		if err == nil {
			items = list.Items
			if len(items) > want {
				t.Fatalf("%d PipelineRuns in %s, want %d: duplicated work", len(items), ns, want)
			}
			if len(items) == want {
				return items
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d PipelineRuns in %s after %s, want %d", len(items), ns, within, want)
	return nil
}

func TestSignedPushCreatesPipelineRun(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-push"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	secret := newSecret(t)
	r := startRouter(t, routerConfig{rulesDir: rulesFor(t, ns, ""), dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: secret})

	if code := sendPush(t, r.url, secret, "e2e-push-1", samplePush(t)); code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", code)
	}
	pr := waitForRunsSettled(t, adminTekton(t), ns, 1, 30*time.Second, r.embeddedNATS(t))[0]

	if want := routing.PipelineRunName("web", "build", "github", "e2e-push-1"); pr.Name != want {
		t.Errorf("name %q, want %q", pr.Name, want)
	}
	if pr.Spec.PipelineRef == nil || pr.Spec.PipelineRef.Name != "build-and-test" {
		t.Errorf("pipelineRef %+v", pr.Spec.PipelineRef)
	}
	params := map[string]string{}
	for _, p := range pr.Spec.Params {
		params[p.Name] = p.Value.StringVal
	}
	if params["repo-url"] != "https://github.com/acme/web.git" || params["revision"] != "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d" {
		t.Errorf("params %v", params)
	}
	if pr.Spec.TaskRunTemplate.ServiceAccountName != "pipeline-runner" {
		t.Errorf("service account %q", pr.Spec.TaskRunTemplate.ServiceAccountName)
	}
	if pr.Spec.Timeouts == nil || pr.Spec.Timeouts.Pipeline == nil || pr.Spec.Timeouts.Pipeline.Duration != 45*time.Minute {
		t.Errorf("timeouts %+v", pr.Spec.Timeouts)
	}
	for k, v := range map[string]string{"switchyard.dev/app": "web", "switchyard.dev/trigger": "build", "switchyard.dev/event-id": "e2e-push-1"} {
		if pr.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, pr.Labels[k], v)
		}
	}
	for k, v := range map[string]string{
		"switchyard.dev/event-id":     "e2e-push-1",
		"switchyard.dev/event-type":   "dev.switchyard.git.push",
		"switchyard.dev/event-source": "https://github.com/acme/web",
		"switchyard.dev/revision":     "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
		"switchyard.dev/identity":     "source:github",
		// The revision the router logged at load: which rules routed it.
		dispatch.AnnotationRulesRevision: loadedRevision(t, r),
	} {
		if pr.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, pr.Annotations[k], v)
		}
	}
	// The object as stored passes Tekton's own defaulting and validation.
	stored := pr.DeepCopy()
	stored.SetDefaults(ctx)
	if err := stored.Validate(ctx); err != nil {
		t.Errorf("stored PipelineRun fails Tekton validation: %v", err)
	}
}

// loadedRevision is the rules revision r logged at start.
func loadedRevision(t *testing.T, r *router) string {
	t.Helper()
	recs := r.logs.records("rules loaded")
	if len(recs) == 0 {
		t.Fatal("no rules loaded record")
	}
	rev, _ := recs[0]["revision"].(string)
	if !strings.HasPrefix(rev, "sha256:") {
		t.Fatalf("rules loaded with revision %q, want sha256:...", rev)
	}
	return rev
}

// TestRedeliveryAndRestartLeaveOneRun crashes the router while its
// dispatch of an event waits on the API server (a proxy holds the create),
// so the crash lands on unacknowledged work. After the restart the work is
// redelivered and created once, and redeliveries of the event by its
// sender, before and after the crash, create nothing more.
func TestRedeliveryAndRestartLeaveOneRun(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-restart"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	proxy, kubeconfig := viaProxy(t, kubeconfig)
	secret := newSecret(t)
	cfg := routerConfig{rulesDir: rulesFor(t, ns, ""), dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: secret}
	body := samplePush(t)

	proxy.Hold()
	first := startRouter(t, cfg)
	for i := 0; i < 3; i++ {
		if code := sendPush(t, first.url, secret, "restart-a", body); code != http.StatusAccepted {
			t.Fatalf("send %d: status %d", i, code)
		}
	}
	waitUntil(t, "the dispatch of restart-a to reach the API server", 30*time.Second, func() bool { return proxy.Counts().Held == 1 })
	first.kill()
	// The held create dies with its router: it never reaches the API server.
	waitUntil(t, "the crashed router's create to be abandoned", 30*time.Second, func() bool { return proxy.Counts().Abandoned == 1 })
	proxy.Release()

	second := startRouter(t, cfg)
	if code := sendPush(t, second.url, secret, "restart-a", body); code != http.StatusAccepted {
		t.Fatalf("redelivery after restart: status %d", code)
	}
	if code := sendPush(t, second.url, secret, "restart-b", body); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	// restart-a comes back once its ack wait (30s) has passed.
	runs := waitForRunsSettled(t, adminTekton(t), ns, 2, 2*time.Minute, second.embeddedNATS(t))
	got := map[string]bool{}
	for _, pr := range runs {
		got[pr.Labels["switchyard.dev/event-id"]] = true
	}
	if !got["restart-a"] || !got["restart-b"] {
		t.Fatalf("runs for %v, want restart-a and restart-b", got)
	}
	c := proxy.Counts()
	if want := routing.PipelineRunName("web", "build", "github", "restart-a"); !slices.Contains(c.Created, want) {
		t.Errorf("restart-a's run was not created after the restart (%s, created %v): the crash did not hit its work", c, c.Created)
	}
	second.stop()
}

func TestAPIServerDownEventsAreQueued(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-outage"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	secret := newSecret(t)
	r := startRouter(t, routerConfig{rulesDir: rulesFor(t, ns, ""), dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: secret})
	body := samplePush(t)

	if err := cluster.StopAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = cluster.StartAPIServer(ctx)
		}
	}()
	const n = 5
	for i := 0; i < n; i++ {
		if code := sendPush(t, r.url, secret, fmt.Sprintf("outage-%d", i), body); code != http.StatusAccepted {
			t.Fatalf("webhook %d during the API server outage: status %d, want 202 (queued)", i, code)
		}
	}
	if err := cluster.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	runs := waitForRunsSettled(t, adminTekton(t), ns, n, 3*time.Minute, r.embeddedNATS(t))
	seen := map[string]bool{}
	for _, pr := range runs {
		seen[pr.Labels["switchyard.dev/event-id"]] = true
	}
	for i := 0; i < n; i++ {
		if !seen[fmt.Sprintf("outage-%d", i)] {
			t.Errorf("no PipelineRun for outage-%d", i)
		}
	}
	r.stop()
}

func TestInvalidPipelineRunIsDeadLetteredAndDoesNotBlockOthers(t *testing.T) {
	ctx := context.Background()
	const ns, brokenNS = "e2e-good", "e2e-broken"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns, brokenNS)
	if err != nil {
		t.Fatal(err)
	}
	// An external NATS server, so the test can read the dead-letter stream.
	nats, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer nats.Shutdown()
	secret := newSecret(t)
	r := startRouter(t, routerConfig{rulesDir: rulesFor(t, ns, brokenNS), dataDir: t.TempDir(), kubeconfig: kubeconfig, natsURL: nats.ClientURL(), secret: secret})

	if code := sendPush(t, r.url, secret, "dlq-1", samplePush(t)); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	waitForRuns(t, adminTekton(t), ns, 1, 30*time.Second)

	nc, err := nats.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	q, err := queue.Open(ctx, nc, queue.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var dead []queue.DeadLetter
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && len(dead) == 0 {
		if dead, err = q.DeadLetters(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1 for the broken app", len(dead))
	}
	d := dead[0]
	if d.Work.Target.App != "broken" || d.Reason != queue.ReasonPermanent || d.Attempts != 1 {
		t.Errorf("dead letter app=%s reason=%s attempts=%d, want broken/permanent/1", d.Work.Target.App, d.Reason, d.Attempts)
	}
	// Tekton's validation refused the field the commit message filled in.
	if !strings.HasPrefix(d.LastError, "render pipelinerun: invalid value: ") || !strings.HasSuffix(d.LastError, ": spec.pipelineRef.name") {
		t.Errorf("dead letter reason %q, want Tekton's refusal of spec.pipelineRef.name at render", d.LastError)
	}
	list, err := adminTekton(t).TektonV1().PipelineRuns(brokenNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("%d PipelineRuns in %s, want none", len(list.Items), brokenNS)
	}
	r.stop()
}

// perDelivery makes a sample body unique to its delivery id, as distinct
// pushes are: GitHub signs only the body, so the router treats one body
// under a new delivery id as the same delivery (a captured body replayed).
// The same delivery id gives the same body, so redeliveries stay
// redeliveries.
func perDelivery(body []byte, delivery string) []byte {
	id, _ := json.Marshal(delivery)
	return append([]byte(`{"test_delivery":`+string(id)+`,`), bytes.TrimLeft(body, " \t\r\n")[1:]...)
}
