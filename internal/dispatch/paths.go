package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// ChangesFetcher finds the files a push changed, for a paths condition
// routing deferred (routing.PathsCheck). Changes returns them, incomplete
// with a Reason when they cannot be known (no token, a refusal); it returns
// an error only when asking again may help (a timeout, a 5xx).
type ChangesFetcher interface {
	Changes(ctx context.Context, c routing.PathsCheck) (*routing.Changes, error)
}

// Results of a deferred paths check, the result label of
// switchyard_paths_checks_total.
const (
	PathsMatched   = "matched"   // a changed file matches: created
	PathsSkipped   = "skipped"   // none matches: nothing created
	PathsUnchecked = "unchecked" // the files could not be known: created, with a note
)

// PathsMetrics count deferred paths checks by result.
type PathsMetrics struct {
	checks *prometheus.CounterVec
}

// NewPathsMetrics registers switchyard_paths_checks_total with reg.
func NewPathsMetrics(reg prometheus.Registerer) (*PathsMetrics, error) {
	var err error
	checks := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_paths_checks_total",
		Help: "Paths conditions checked at dispatch (a push whose payload may not list every change), by result: matched, skipped, unchecked.",
	}, []string{"result"}), &err)
	if err != nil {
		return nil, fmt.Errorf("paths metrics: %w", err)
	}
	for _, r := range []string{PathsMatched, PathsSkipped, PathsUnchecked} {
		checks.WithLabelValues(r)
	}
	return &PathsMetrics{checks: checks}, nil
}

func (m *PathsMetrics) count(result string) {
	if m != nil {
		m.checks.WithLabelValues(result).Inc()
	}
}

// WithChanges makes Handle finish the paths checks routing deferred by
// asking f, counting their results in m (nil counts nothing). Without it,
// such work is created with a note that its paths were not checked.
func WithChanges(f ChangesFetcher, m *PathsMetrics) Option {
	return func(d *Dispatcher) { d.changes, d.pathsMetrics = f, m }
}

// checkPaths finishes w's deferred paths check, if any. It returns the note
// to record when the files could not be known (the target is created all
// the same: a build is never skipped for want of information),
// queue.Skip when no changed file matches, and an error to retry when the
// fetcher failed and the work has attempts left.
func (d *Dispatcher) checkPaths(ctx context.Context, w queue.Work) (note string, err error) {
	c := w.Target.PathsCheck
	if c == nil {
		return "", nil
	}
	if d.changes == nil {
		return d.unchecked(ctx, w, "this router does not ask the provider's API"), nil
	}
	ch, err := d.changes.Changes(ctx, *c)
	switch {
	case err != nil && ctx.Err() == nil && queue.LastAttempt(ctx):
		return d.unchecked(ctx, w, err.Error()+" on the last attempt"), nil
	case err != nil:
		d.transient.Add(1)
		return "", fmt.Errorf("paths check: %w", err)
	case !ch.Complete:
		return d.unchecked(ctx, w, ch.Reason), nil
	}
	match, err := routing.MatchPaths(c.Paths, ch.Files)
	if err != nil {
		d.permanent.Add(1)
		return "", queue.Permanent(fmt.Errorf("paths check: %w", err))
	}
	if match {
		d.pathsMetrics.count(PathsMatched)
		return "", nil
	}
	d.pathsMetrics.count(PathsSkipped)
	reason := fmt.Sprintf("no changed file matches paths %s (%d files changed, %s)", strings.Join(c.Paths, ", "), len(ch.Files), ch.Reason)
	d.logger.LogAttrs(ctx, slog.LevelInfo, "work skipped",
		slog.String("event_id", w.Event.ID()),
		slog.String("app", w.Target.App),
		slog.String("trigger", w.Target.Trigger),
		slog.String("reason", reason),
	)
	return "", queue.Skip(reason)
}

// unchecked is the note of a paths condition treated as matched, counted.
func (d *Dispatcher) unchecked(ctx context.Context, w queue.Work, why string) string {
	d.pathsMetrics.count(PathsUnchecked)
	note := "paths not checked: " + w.Target.PathsCheck.Reason + "; " + why + "; treated as matched"
	d.logger.LogAttrs(ctx, slog.LevelWarn, "paths not checked",
		slog.String("event_id", w.Event.ID()),
		slog.String("app", w.Target.App),
		slog.String("trigger", w.Target.Trigger),
		slog.String("reason", note),
	)
	return note
}
