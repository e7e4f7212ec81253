package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecondServeOnSameDataDir: the "second terminal" mistake. The second
// router exits at once naming the first (PID and listen address), opens
// neither the store nor the port, and leaves the first's files and
// service as they were.
func TestSecondServeOnSameDataDir(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "second-serve-secret")
	dataDir := t.TempDir()
	first := startRouter(t, dataDir)
	connFile := filepath.Join(dataDir, natsConnFile)
	before, err := os.ReadFile(connFile)
	if err != nil {
		t.Fatal(err)
	}

	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--rules", "../../rules", "--data-dir", dataDir,
		"--listen", "127.0.0.1:0", "--dispatch", "dir"}, nil, io.Discard, &stderr)
	addr := strings.TrimPrefix(first.url, "http://")
	msg := stderr.String()
	if code != 1 || !strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) || !strings.Contains(msg, addr) ||
		!strings.Contains(msg, "in use by router serve") {
		t.Fatalf("second serve exited %d with %q; want 1 naming pid %d and %s", code, msg, os.Getpid(), addr)
	}
	if strings.Contains(msg, "embedded nats started") {
		t.Fatalf("second serve opened the store: %s", msg)
	}
	after, err := os.ReadFile(connFile)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the first router's %s changed or went away (err %v)", natsConnFile, err)
	}
	if got := getStatus(t, first.url+"/readyz"); got != http.StatusOK {
		t.Fatalf("first router /readyz = %d after the second start", got)
	}
	sendSample(t, first.url, "after-second-start")
	first.stop(t)

	// Released on exit: the next start on the directory works.
	startRouter(t, dataDir).stop(t)
}

// TestOpsNeverOpenAHeldStore: a router without a connection file
// (--nats-listen "") holds its store; an operator command says so instead
// of starting a second server on it.
func TestOpsNeverOpenAHeldStore(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "ops-held-secret")
	dataDir := t.TempDir()
	r := startRouter(t, dataDir, "--nats-listen", "")
	code, _, stderr := runCmd(t, "", "audit", "--data-dir", dataDir)
	if code != 1 || !strings.Contains(stderr, "in use by router serve") || !strings.Contains(stderr, "not opening a store another process holds") {
		t.Fatalf("audit exited %d: %q", code, stderr)
	}
	r.stop(t)
	// Stopped: the command opens the store itself.
	if code, out, stderr := runCmd(t, "", "audit", "--data-dir", dataDir); code != 0 || !strings.Contains(out, "DECISION") {
		t.Fatalf("audit on a stopped router exited %d: %s %s", code, out, stderr)
	}
}
