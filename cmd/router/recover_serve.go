package main

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/recovery"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Periodic recovery inside serve: every source with a recover block has
// its hooks' failed deliveries redelivered (GitHub) or its disabled hooks
// reported (GitLab) after every start and every recover.every. Replicas
// each run it; a delivery redelivered twice is stored once (its id).

// recoverRecheck bounds the wait between passes, so a reload that adds a
// recover block is picked up.
const recoverRecheck = time.Minute

// recoveryStore is what recovery needs of the queue.
type recoveryStore interface {
	recovery.Store
	StoredFor(ctx context.Context) (time.Duration, error)
}

var _ recoveryStore = (*queue.Queue)(nil)

// recoverLoop runs the recover blocks; its zero value is ready.
type recoverLoop struct {
	mu       sync.Mutex
	disabled map[string]string // source -> the hooks the host disabled
	// now and wait are the clock (a test moves it); nil: the real one.
	now  func() time.Time
	wait func(ctx context.Context, d time.Duration) bool
	// reg registers the metrics; nil: the default registry /metrics serves.
	reg prometheus.Registerer
}

// startRecovery runs the recover blocks on q until ctx ends.
func (r *router) startRecovery(ctx context.Context, wg *sync.WaitGroup, q *queue.Queue) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.recovery.run(ctx, r.holder.Rules, q, r.logger.With("component", "recover"))
	}()
}

func (l *recoverLoop) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

func (l *recoverLoop) sleep(ctx context.Context, d time.Duration) bool {
	if l.wait != nil {
		return l.wait(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// run passes over the rules in force until ctx ends, recovering each
// source when it is due.
func (l *recoverLoop) run(ctx context.Context, rules func() *routing.Rules, store recoveryStore, logger *slog.Logger) {
	var names []string
	for _, s := range rules().Sources() {
		if s.Recover != nil {
			names = append(names, s.Name)
		}
	}
	reg := l.reg
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m, err := recovery.NewMetrics(reg, names)
	if err != nil {
		logger.Error("recovery metrics not registered: recovery off", "error", err.Error())
		return
	}
	last := map[string]time.Time{}
	for {
		next := l.clock().Add(recoverRecheck)
		var active []string
		for _, src := range rules().Sources() {
			if src.Recover == nil {
				continue
			}
			active = append(active, src.Name)
			ran, ok := last[src.Name]
			if !ok || !l.clock().Before(ran.Add(src.Recover.Every)) {
				l.recoverSource(ctx, src, store, m, logger)
				ran = l.clock()
				last[src.Name] = ran
			}
			if due := ran.Add(src.Recover.Every); due.Before(next) {
				next = due
			}
		}
		l.forget(active)
		if !l.sleep(ctx, next.Sub(l.clock())) {
			return
		}
	}
}

// recoverSource runs one pass over the hooks of src.
func (l *recoverLoop) recoverSource(ctx context.Context, src *routing.Source, store recoveryStore, m *recovery.Metrics, logger *slog.Logger) {
	logger = logger.With("source", src.Name)
	since := src.Recover.Since
	if kept, err := store.StoredFor(ctx); err == nil && kept > 0 && kept < since {
		since = kept
	}
	var disabled []string
	unchecked := 0
	for _, h := range src.Recover.Hooks {
		if src.Kind == "gitlab" {
			switch known, off := checkGitLabHook(ctx, src, h, logger); {
			case !known:
				unchecked++
			case off:
				disabled = append(disabled, h.String())
			}
			continue
		}
		host, err := recoveryHost(src, h)
		if err != nil {
			logger.Warn("recovery failed", "hook", h.String(), "error", err.Error())
			continue
		}
		rep, err := recovery.Run(ctx, host, store, recovery.Options{Source: src.Name, Hook: h, Since: l.clock().Add(-since)})
		m.Observe(src.Name, rep)
		for _, res := range rep.Results {
			if res.Action == recovery.Redelivered || res.Action == recovery.Failed {
				logger.Info("delivery "+string(res.Action), "hook", h.String(), "delivery", res.Delivery.GUID, "event", res.Delivery.Event, "status_code", res.Delivery.StatusCode)
			}
		}
		attrs := []any{"hook", h.String(), "listed", rep.Listed, "redelivered", rep.Count(recovery.Redelivered),
			"already_stored", rep.Count(recovery.AlreadyStored), "gave_up", rep.Count(recovery.GaveUp), "failed", rep.Count(recovery.Failed)}
		if err != nil {
			logger.Warn("recovery failed", append(attrs, "error", err.Error())...)
			continue
		}
		logger.Info("deliveries recovered", attrs...)
	}
	// A failed check says nothing: the last known state stands.
	if src.Kind == "gitlab" && (len(disabled) > 0 || unchecked == 0) {
		m.SetDisabled(src.Name, len(disabled) > 0)
		l.setDisabled(src.Name, disabled)
	}
}

// checkGitLabHook reports whether GitLab disabled hook h (known: the
// check succeeded), logging a disabled hook.
func checkGitLabHook(ctx context.Context, src *routing.Source, h routing.RecoverHook, logger *slog.Logger) (known, disabled bool) {
	st, err := recovery.CheckGitLabHook(ctx, recovery.GitLabConfig{APIURL: src.APIURL, Token: src.APIToken}, h.Repository, h.HookID)
	if err != nil {
		logger.Warn("gitlab hook check failed", "hook", h.String(), "error", err.Error())
		return false, false
	}
	if !st.Disabled() {
		return true, false
	}
	attrs := []any{"hook", h.String(), "alert_status", st.AlertStatus}
	if !st.DisabledUntil.IsZero() {
		attrs = append(attrs, "disabled_until", st.DisabledUntil.Format(time.RFC3339))
	}
	// GitLab cannot redeliver what it dropped meanwhile: say what to do.
	logger.Warn("gitlab disabled the hook after repeated failures: re-enable it in the project's webhook settings; events sent meanwhile are lost (replay them with a manual push or GitLab's resend of recent events)", attrs...)
	return true, true
}

func (l *recoverLoop) setDisabled(source string, hooks []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(hooks) == 0 {
		delete(l.disabled, source)
		return
	}
	if l.disabled == nil {
		l.disabled = map[string]string{}
	}
	l.disabled[source] = strings.Join(hooks, ", ")
}

// forget drops the disabled hooks of sources no longer recovered.
func (l *recoverLoop) forget(active []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	maps.DeleteFunc(l.disabled, func(s, _ string) bool { return !slices.Contains(active, s) })
}

// readyDetail is /readyz's note on disabled hooks; nil while none is.
func (l *recoverLoop) readyDetail() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.disabled) == 0 {
		return nil
	}
	sources := slices.Sorted(maps.Keys(l.disabled))
	return map[string]string{"hooks": "disabled by the Git host after repeated failures (see the router's log and switchyard_hook_disabled): source " + strings.Join(sources, ", ")}
}
