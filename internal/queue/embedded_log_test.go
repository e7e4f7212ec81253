package queue

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestEmbeddedStartsWithoutPayloadWarning: the maximum payload is the
// router's choice, so nats-server's warning about it is not shown at info.
func TestEmbeddedStartsWithoutPayloadWarning(t *testing.T) {
	var buf lockedBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.Shutdown()
	buf.mu.Lock()
	defer buf.mu.Unlock()
	if strings.Contains(buf.b.String(), "Maximum payloads over") {
		t.Fatalf("start logged the payload warning:\n%s", buf.b.String())
	}
}

// TestLockDataDir: one holder at a time, the second told who holds it.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDataDir(dir, LockHolder{Command: "router serve"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetListen("127.0.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	_, err = LockDataDir(dir, LockHolder{Command: "router audit"})
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.Command != "router serve" || le.Holder.Listen != "127.0.0.1:8080" || le.Holder.PID != os.Getpid() {
		t.Fatalf("second lock: %v", err)
	}
	l.Unlock()
	l2, err := LockDataDir(dir, LockHolder{Command: "router audit"})
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	l2.Unlock()
}
