package routing

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
)

// Reload results, the values of the result label.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

// ReloadMetrics count rule reloads:
//
//	switchyard_rules_last_reload_success        1 when the last reload (or the start) loaded valid rules, else 0
//	switchyard_rules_reloads_total{result=...}  reloads by result, success or failure
type ReloadMetrics struct {
	lastSuccess prometheus.Gauge
	reloads     *prometheus.CounterVec
}

// NewReloadMetrics registers the reload metrics on reg, with both result
// label values created so dashboards show zeros instead of gaps. The
// gauge starts at 1: the router only starts with valid rules. Registering
// twice on one registry (a test starting two routers) reuses the first
// collectors.
func NewReloadMetrics(reg prometheus.Registerer) *ReloadMetrics {
	m := &ReloadMetrics{
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "switchyard",
			Subsystem: "rules",
			Name:      "last_reload_success",
			Help:      "Whether the last rules reload succeeded (1) or failed and the previous rules stay in force (0).",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard",
			Subsystem: "rules",
			Name:      "reloads_total",
			Help:      "Rules reloads, by result (success or failure).",
		}, []string{"result"}),
	}
	m.lastSuccess = register(reg, m.lastSuccess)
	m.reloads = register(reg, m.reloads)
	m.reloads.WithLabelValues(ReloadSuccess)
	m.reloads.WithLabelValues(ReloadFailure)
	m.lastSuccess.Set(1)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Only a programming error (an invalid or clashing descriptor) gets
		// here; the names above are constants.
		panic(fmt.Sprintf("register rules metrics: %v", err))
	}
	return c
}

func (m *ReloadMetrics) record(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.lastSuccess.Set(0)
		m.reloads.WithLabelValues(ReloadFailure).Inc()
		return
	}
	m.lastSuccess.Set(1)
	m.reloads.WithLabelValues(ReloadSuccess).Inc()
}

// DefaultReloadDebounce is how long the watcher waits for changes to settle
// before reloading: an editor or `kubectl cp` writes several files, and a
// ConfigMap update swaps a symlink in steps.
const DefaultReloadDebounce = 300 * time.Millisecond

// ReloaderConfig builds a Reloader.
type ReloaderConfig struct {
	// Dir is the rules directory, watched with its subdirectories.
	Dir string
	// Load loads the rules from Dir (with secrets, as serve needs them).
	Load func(dir string) (*Rules, error)
	// Holder receives the new rules.
	Holder *Holder
	// Logger reports reloads; nil discards.
	Logger *slog.Logger
	// Metrics count reloads; nil counts nothing.
	Metrics *ReloadMetrics
	// Debounce is DefaultReloadDebounce when zero.
	Debounce time.Duration
	// ResolveEvery is how often Dir is resolved again through symlinks;
	// DefaultResolveEvery when zero. git-sync (and any tool that publishes
	// a tree by swapping a link above Dir) changes the tree without an
	// event inside the watched directories.
	ResolveEvery time.Duration
}

// DefaultResolveEvery is how often a reloader checks whether the rules
// directory now resolves to another tree.
const DefaultResolveEvery = 5 * time.Second

// Reloader keeps a Holder in step with a rules directory: it reloads when
// files change (Run) or when asked (Reload, on SIGHUP), swaps valid rules in
// whole, and keeps the last good rules when the new ones are invalid,
// reporting why in the log, the metrics and Holder.LastError.
type Reloader struct {
	cfg    ReloaderConfig
	logger *slog.Logger
	mu     sync.Mutex // one reload at a time, so an older load never wins
	// resolved is the tree Dir pointed at when the reloader was made,
	// right after the rules in force were loaded.
	resolved string
}

// NewReloader returns a Reloader; nothing runs until Run or Reload.
func NewReloader(cfg ReloaderConfig) *Reloader {
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultReloadDebounce
	}
	if cfg.ResolveEvery <= 0 {
		cfg.ResolveEvery = DefaultResolveEvery
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	resolved, _ := filepath.EvalSymlinks(cfg.Dir)
	return &Reloader{cfg: cfg, logger: logger.With("component", "rules"), resolved: resolved}
}

// Reload loads the rules now. Valid rules are swapped in; invalid ones are
// reported (log, metrics, Holder.SetError) and the rules in force stay. It
// returns the load error.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rules, err := r.cfg.Load(r.cfg.Dir)
	r.cfg.Metrics.record(err)
	if err != nil {
		// Logged before it is published, so whoever sees the error in the
		// readiness detail finds it in the log too.
		r.logger.Error("rules reload failed; keeping the last good rules", "dir", r.cfg.Dir, "error", err.Error())
		r.cfg.Holder.SetError(err)
		return err
	}
	r.logger.Info("rules reloaded", "dir", r.cfg.Dir, "sources", len(rules.sources), "apps", len(rules.apps), "triggers", len(rules.triggers), "revision", rules.revision)
	r.cfg.Holder.Swap(rules)
	return nil
}

// Run watches the rules directory and its subdirectories and reloads once
// changes have settled, until ctx ends. It fails only when the watch cannot
// start.
func (r *Reloader) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch rules: %w", err)
	}
	defer w.Close()
	if err := r.watchTree(w, r.cfg.Dir); err != nil {
		return fmt.Errorf("watch rules: %w", err)
	}
	r.logger.Info("watching rules", "dir", r.cfg.Dir, "debounce", r.cfg.Debounce.String())
	secrets := map[string][]string{}
	r.watchSecrets(w, secrets)

	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	resolve := time.NewTicker(r.cfg.ResolveEvery)
	defer resolve.Stop()
	resolved := r.resolved
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resolve.C:
			now, err := filepath.EvalSymlinks(r.cfg.Dir)
			if err != nil || now == resolved {
				continue
			}
			// A new tree behind the same path: watch it and reload.
			resolved = now
			if err := r.watchTree(w, r.cfg.Dir); err != nil {
				r.logger.Warn("watch new rules tree", "dir", now, "error", err.Error())
			}
			settle.Reset(r.cfg.Debounce)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !secretEvent(secrets, ev.Name) {
				continue
			}
			// A bare Chmod is kept too: `touch root.yaml` is how people
			// ask for a reload.
			if ev.Has(fsnotify.Create) {
				// A new subdirectory (an app team's folder) is watched too.
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					if err := r.watchTree(w, ev.Name); err != nil {
						r.logger.Warn("watch new rules directory", "dir", ev.Name, "error", err.Error())
					}
				}
			}
			settle.Reset(r.cfg.Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.logger.Warn("rules watch error", "error", err.Error())
		case <-settle.C:
			_ = r.Reload() // reported by Reload
			r.watchSecrets(w, secrets)
		}
	}
}

// watchTree adds dir and every directory below it to the watcher.
func (r *Reloader) watchTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.Add(path)
		}
		return nil
	})
}

// watchSecrets adds the directories of the secret files the rules in force
// name, so rotating a secret reloads. A directory is watched rather than
// the file: editors and Kubernetes secret volumes replace the file (or the
// ..data link above it) instead of writing it. secrets maps each watched
// directory outside the rules tree to the file names that count there.
func (r *Reloader) watchSecrets(w *fsnotify.Watcher, secrets map[string][]string) {
	rules := r.cfg.Holder.Rules()
	if rules == nil {
		return
	}
	for _, f := range rules.SecretFiles() {
		dir, base := filepath.Dir(f), filepath.Base(f)
		if inTree(r.cfg.Dir, dir) || slices.Contains(secrets[dir], base) {
			continue // the rules tree is watched whole
		}
		if _, watched := secrets[dir]; !watched {
			if err := w.Add(dir); err != nil {
				r.logger.Warn("watch secret directory", "dir", dir, "error", err.Error())
				continue
			}
			r.logger.Info("watching secret files", "dir", dir)
		}
		secrets[dir] = append(secrets[dir], base)
	}
}

// secretEvent says whether an event is worth a reload: everything in the
// rules tree is, but in a secret file's directory only that file and the
// "..data" links a Kubernetes secret volume swaps to update it.
func secretEvent(secrets map[string][]string, name string) bool {
	names, ok := secrets[filepath.Dir(name)]
	if !ok {
		return true
	}
	base := filepath.Base(name)
	return strings.HasPrefix(base, "..") || slices.Contains(names, base)
}

// inTree says whether dir is root or below it.
func inTree(root, dir string) bool {
	root, errRoot := filepath.Abs(root)
	dir, errDir := filepath.Abs(dir)
	if errRoot != nil || errDir != nil {
		return false
	}
	rel, err := filepath.Rel(root, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
