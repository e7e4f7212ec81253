package routing

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReloaderReloadsOnTouch: `touch root.yaml` (a timestamp change only)
// reloads the rules.
func TestReloaderReloadsOnTouch(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.yaml")
	writeFile(t, root, testRoot)
	writeFile(t, filepath.Join(dir, "apps", "web.yaml"), appWithTriggers("build"))
	load := func(d string) (*Rules, error) { return LoadDir(d, Options{}) }
	rules, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	holder := NewHolder(rules)
	logs := &lockedBuffer{}
	r := NewReloader(ReloaderConfig{Dir: dir, Load: load, Holder: holder, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Debounce: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, "the watcher to start", func() bool { return strings.Contains(logs.String(), "watching rules") })
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(root, later, later); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a reload after touch", func() bool { return !holder.LastReload().IsZero() })
}
