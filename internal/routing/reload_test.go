package routing

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// lockedBuffer is a log sink safe for the reloader's goroutine.
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

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// Write then rename, as editors and kubectl do: the watcher must
	// never read a half-written file as the new rules.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func appWithTriggers(names ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: web\ntriggers:\n")
	for _, n := range names {
		b.WriteString("  - name: " + n + "\n    run: {pipelineRef: build}\n")
	}
	return b.String()
}

// triggerNames lists the triggers in force.
func triggerNames(h *Holder) string {
	var names []string
	for _, t := range h.Rules().triggers {
		names = append(names, t.name)
	}
	return strings.Join(names, ",")
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[name] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloaderWatchesFiles writes rule files under a running watcher: a
// valid change is picked up, an invalid one leaves the last good rules in
// force and is reported in the log, the metrics and Holder.LastError; a
// fix clears the error. A new subdirectory is watched too.
func TestReloaderWatchesFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "root.yaml"), strings.Replace(testRoot, "apps/web.yaml", "apps/web/*.yaml", 1))
	writeFile(t, filepath.Join(dir, "apps", "web", "a.yaml"), appWithTriggers("build"))
	load := func(d string) (*Rules, error) { return LoadDir(d, Options{}) }
	rules, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	holder := NewHolder(rules)
	reg := prometheus.NewRegistry()
	logs := &lockedBuffer{}
	r := NewReloader(ReloaderConfig{
		Dir: dir, Load: load, Holder: holder, Metrics: NewReloadMetrics(reg),
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Debounce: 20 * time.Millisecond,
	})
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

	m := gather(t, reg)
	if m["switchyard_rules_last_reload_success"] != 1 || m["switchyard_rules_reloads_total{result=failure}"] != 0 {
		t.Fatalf("initial metrics = %v", m)
	}
	if _, ok := m["switchyard_rules_reloads_total{result=success}"]; !ok {
		t.Fatalf("reloads_total{result=success} not created at start: %v", m)
	}

	writeFile(t, filepath.Join(dir, "apps", "web", "a.yaml"), appWithTriggers("build", "test"))
	waitFor(t, "the new trigger", func() bool { return triggerNames(holder) == "build,test" })

	good := holder.Rules()
	writeFile(t, filepath.Join(dir, "apps", "web", "a.yaml"), appWithTriggers("build", "Bad Name"))
	waitFor(t, "the reload error", func() bool { return holder.LastError() != nil })
	if holder.Rules() != good {
		t.Fatal("invalid rules replaced the rules in force")
	}
	if !strings.Contains(holder.LastError().Error(), `a.yaml:7: trigger name "Bad Name" must be a DNS label`) {
		t.Errorf("LastError = %v", holder.LastError())
	}
	if !strings.Contains(logs.String(), "rules reload failed; keeping the last good rules") {
		t.Errorf("failure not logged:\n%s", logs.String())
	}
	m = gather(t, reg)
	if m["switchyard_rules_last_reload_success"] != 0 || m["switchyard_rules_reloads_total{result=failure}"] < 1 {
		t.Errorf("metrics after a failed reload = %v", m)
	}

	// A new app team folder: created after the watch started.
	writeFile(t, filepath.Join(dir, "apps", "web", "more", "b.yaml"), appWithTriggers("deploy"))
	writeFile(t, filepath.Join(dir, "root.yaml"), strings.Replace(testRoot, "apps/web.yaml", "apps/web/**/*.yaml", 1))
	writeFile(t, filepath.Join(dir, "apps", "web", "a.yaml"), appWithTriggers("build"))
	waitFor(t, "the fixed rules", func() bool { return holder.LastError() == nil && triggerNames(holder) == "build,deploy" })
	writeFile(t, filepath.Join(dir, "apps", "web", "more", "b.yaml"), appWithTriggers("deploy", "promote"))
	waitFor(t, "a change in the new folder", func() bool { return triggerNames(holder) == "build,deploy,promote" })
	if m := gather(t, reg); m["switchyard_rules_last_reload_success"] != 1 {
		t.Errorf("metrics after the fix = %v", m)
	}
}

func TestReloadMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewReloadMetrics(reg), NewReloadMetrics(reg)
	a.record(nil)
	b.record(nil)
	if got := gather(t, reg)["switchyard_rules_reloads_total{result=success}"]; got != 2 {
		t.Errorf("reloads_total{success} = %v, want both registrations to share one counter", got)
	}
}

// TestReloaderFollowsLinkSwaps: git-sync publishes each commit by pointing
// a link at a new tree; nothing changes inside the old tree, yet the rules
// must follow.
func TestReloaderFollowsLinkSwaps(t *testing.T) {
	base := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		writeFile(t, filepath.Join(base, v, "root.yaml"), testRoot)
	}
	writeFile(t, filepath.Join(base, "v1", "apps", "web.yaml"), appWithTriggers("build"))
	writeFile(t, filepath.Join(base, "v2", "apps", "web.yaml"), appWithTriggers("build", "deploy"))
	link := filepath.Join(base, "current")
	if err := os.Symlink("v1", link); err != nil {
		t.Fatal(err)
	}
	load := func(d string) (*Rules, error) { return LoadDir(d, Options{}) }
	rules, err := load(link)
	if err != nil {
		t.Fatal(err)
	}
	holder := NewHolder(rules)
	r := NewReloader(ReloaderConfig{Dir: link, Load: load, Holder: holder, Debounce: 10 * time.Millisecond, ResolveEvery: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// Swap the link atomically, as git-sync does.
	tmp := filepath.Join(base, "current.tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the swapped tree's rules", func() bool { return triggerNames(holder) == "build,deploy" })
}
