package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"

	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/pflag"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// syncBuffer is a bytes.Buffer safe for the router's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLines returns the JSON log records whose msg is msg.
func (s *syncBuffer) logLines(msg string) []map[string]any {
	s.mu.Lock()
	data := s.b.String()
	s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

type runningRouter struct {
	url    string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

func startRouter(t *testing.T, dataDir string, extra ...string) *runningRouter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningRouter{logs: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		args := append([]string{"serve", "--rules", "../../rules", "--data-dir", dataDir,
			"--listen", "127.0.0.1:0", "--dispatch", "dir", "--drain-delay", "0"}, extra...)
		r.done <- run(ctx, args, nil, io.Discard, r.logs)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if l := r.logs.logLines("listening"); len(l) > 0 {
			r.url = "http://" + l[0]["addr"].(string)
			return r
		}
		select {
		case code := <-r.done:
			t.Fatalf("router exited with %d:\n%s", code, r.logs.b.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("router did not start listening")
	return nil
}

// stop stops the router and returns its final dispatch counters.
func (r *runningRouter) stop(t *testing.T) map[string]any {
	t.Helper()
	r.cancel()
	if code := <-r.done; code != 0 {
		t.Fatalf("router exited with %d", code)
	}
	stopped := r.logs.logLines("stopped")
	if len(stopped) != 1 {
		t.Fatalf("want one stopped record, got %v", stopped)
	}
	return stopped[0]
}

func sendSample(t *testing.T, url, delivery string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"send", "--rules", "../../rules", "--source", "github", "--url", url, "--delivery", delivery}, nil, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "202 Accepted") {
		t.Fatalf("router send exited %d: %s %s", code, out.String(), errOut.String())
	}
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

func runFile(dataDir, delivery string) string {
	return filepath.Join(dataDir, "pipelineruns", "ci", routing.PipelineRunName("web", "build", "github", delivery)+".yaml")
}

// TestRestartDispatchesNothingTwice runs `router serve` twice on one data
// directory: work done before the restart is not done again, and a
// redelivery after the restart is deduplicated by the persisted queue.
func TestRestartDispatchesNothingTwice(t *testing.T) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_WEBHOOK_SECRET", hex.EncodeToString(secret))
	dataDir := t.TempDir()

	first := startRouter(t, dataDir)
	sendSample(t, first.url, "restart-1")
	sendSample(t, first.url, "restart-2")
	waitForFile(t, runFile(dataDir, "restart-1"))
	waitForFile(t, runFile(dataDir, "restart-2"))
	if got := first.stop(t); got["created"] != float64(2) {
		t.Fatalf("first run created %v PipelineRuns, want 2", got["created"])
	}

	second := startRouter(t, dataDir)
	sendSample(t, second.url, "restart-1") // a redelivery of work already done
	sendSample(t, second.url, "restart-3")
	waitForFile(t, runFile(dataDir, "restart-3"))
	got := second.stop(t)
	if got["created"] != float64(1) || got["existed"] != float64(0) {
		t.Fatalf("second run: created %v, existed %v; want 1 and 0 (nothing dispatched twice)", got["created"], got["existed"])
	}
	files, _ := filepath.Glob(filepath.Join(dataDir, "pipelineruns", "ci", "*.yaml"))
	if len(files) != 3 {
		t.Fatalf("%d PipelineRun files, want 3: %v", len(files), files)
	}
}

func TestServeRefusesInvalidRules(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "")
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--rules", "../../rules", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, nil, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "GITHUB_WEBHOOK_SECRET is not set") {
		t.Fatalf("exit %d, stderr %q: serve must refuse to start without the source's secret", code, stderr.String())
	}
}

// TestDrainReadinessGoesFalseFirst: on shutdown /readyz answers 503 while
// webhooks are still accepted, until the drain delay ends.
func TestDrainReadinessGoesFalseFirst(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "drain-test-secret")
	dataDir := t.TempDir()
	r := startRouter(t, dataDir, "--drain-delay", "3s")
	if code := getStatus(t, r.url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d before shutdown", code)
	}
	r.cancel()
	// Bounded: a router that never turns unready must fail here, not hang
	// until the package timeout.
	deadline := time.Now().Add(20 * time.Second)
	for getStatus(t, r.url+"/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still ready 20s after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Still served: a load balancer may not have noticed yet.
	sendSample(t, r.url, "drain-1")
	if code := <-r.done; code != 0 {
		t.Fatalf("router exited with %d", code)
	}
	if len(r.logs.logLines("shutting down")) != 1 {
		t.Fatal("no shutting down record")
	}
	// Accepted during the drain, so stored: the next start dispatches it.
	next := startRouter(t, dataDir)
	waitForFile(t, runFile(dataDir, "drain-1"))
	next.stop(t)
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// startNATS starts a JetStream nats-server on a free loopback port with
// the settings of configure.
func startNATS(t *testing.T, configure func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	configure(opts)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return srv
}

// waitUntil polls cond until it holds or a generous deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeWaitsForJetStream: a router started before its NATS server
// serves /readyz 503 while it retries, then comes up and accepts webhooks
// once the server starts.
func TestServeWaitsForJetStream(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "wait-test-secret")
	reserved, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := reserved.Addr().String()
	reserved.Close()
	dataDir := t.TempDir()

	var cfg serveConfig
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.flags(fs)
	if err := fs.Parse([]string{"--rules", "../../rules", "--data-dir", dataDir, "--listen", "127.0.0.1:0",
		"--dispatch", "dir", "--drain-delay", "0", "--nats-url", "nats://" + natsAddr}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	r, err := newRouter(cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	url := "http://" + r.ln.Addr().String()

	waitUntil(t, "a retry", func() bool { return len(logs.logLines("jetstream not ready: retrying")) > 0 })
	if code := getStatus(t, url+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d while JetStream is not ready, want 503", code)
	}
	if code := getStatus(t, url+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d while JetStream is not ready, want 200", code)
	}

	emb, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir(), Listen: natsAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	waitUntil(t, "/readyz 200", func() bool { return getStatus(t, url+"/readyz") == http.StatusOK })
	sendSample(t, url, "late-nats-1")
	waitForFile(t, runFile(dataDir, "late-nats-1"))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(logs.logLines("listening")) != 1 {
		t.Fatal("no listening record once the queue opened")
	}
}

// TestServeNATSURLSecretsNotLogged: neither the log of a router on a
// token-protected server nor the error of a bad URL shows the secret.
func TestServeNATSURLSecretsNotLogged(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "redact-test-secret")
	const token = "tok-not-for-logs"
	srv := startNATS(t, func(o *server.Options) { o.Authorization = token })
	hostPort := strings.TrimPrefix(srv.ClientURL(), "nats://")
	r := startRouter(t, t.TempDir(), "--nats-url", "nats://"+token+"@"+hostPort)
	waitUntil(t, "nats connected", func() bool { return len(r.logs.logLines("nats connected")) > 0 })
	r.stop(t)
	if logs := r.logs.String(); strings.Contains(logs, token) {
		t.Fatalf("the NATS token is in the log:\n%s", logs)
	}

	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--rules", "../../rules", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
		"--nats-url", "nats://user:secret@127.0.0.1:bad"}, nil, io.Discard, &stderr)
	if code != 1 || strings.Contains(stderr.String(), "secret") || !strings.Contains(stderr.String(), "REDACTED@127.0.0.1") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
}

// TestServeNATSUserFile: serve reaches a password-protected server with
// --nats-user-file.
func TestServeNATSUserFile(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "user-file-test-secret")
	srv := startNATS(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "router", Password: "pw-from-file"}}
	})
	userFile := filepath.Join(t.TempDir(), "nats-user")
	if err := os.WriteFile(userFile, []byte("router:pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	r := startRouter(t, dataDir, "--nats-url", srv.ClientURL(), "--nats-user-file", userFile)
	sendSample(t, r.url, "user-file-1")
	waitForFile(t, runFile(dataDir, "user-file-1"))
	r.stop(t)
}
