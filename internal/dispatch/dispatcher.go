package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// Dispatcher renders and creates the PipelineRun of each unit of work. Its
// Handle method is the queue's handler.
type Dispatcher struct {
	creator Creator
	grant   Grant
	logger  *slog.Logger
	// changes and pathsMetrics finish deferred paths checks (paths.go).
	changes      ChangesFetcher
	pathsMetrics *PathsMetrics

	created, existed, refused, permanent, transient atomic.Uint64
}

// Grant decides whether a unit of work is still allowed under the rules in
// force. Admit returns nil, or an error naming what is no longer granted.
type Grant interface {
	Admit(w queue.Work) error
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithGrant makes Handle ask g before rendering each unit of work: the queue
// is not trusted to hold only work the rules in force allow (a reload may
// have revoked the grant; dlq retry or anyone who can publish on the work
// subjects can queue work). Without it every unit of work is admitted.
func WithGrant(g Grant) Option {
	return func(d *Dispatcher) { d.grant = g }
}

// Stats counts Handle's outcomes since the Dispatcher was built.
type Stats struct {
	// Created counts PipelineRuns created.
	Created uint64
	// Existed counts work whose PipelineRun already existed (redeliveries).
	Existed uint64
	// Refused counts work the Grant refused (dead-lettered, nothing
	// created); it is not counted in Permanent.
	Refused uint64
	// Permanent counts failures marked queue.Permanent (dead-lettered).
	Permanent uint64
	// Transient counts failures the queue will retry.
	Transient uint64
}

// New returns a Dispatcher creating PipelineRuns with c. A nil logger
// discards logs.
func New(c Creator, logger *slog.Logger, opts ...Option) *Dispatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{creator: c, logger: logger.With("component", "dispatch")}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Handle checks w against the Grant (WithGrant), renders the PipelineRun
// or TaskRun for w and creates it. A run that already exists is success (the
// work was done before). Work the Grant refuses is a queue.Permanent error
// ("grant: ..."), logged here as a warning, and nothing is created. Other
// errors keep their queue.Permanent mark and are left to the caller, the
// queue consumer, to log as it retries or dead-letters the work. A paths
// condition routing deferred is finished first (WithChanges): no matching
// file returns queue.Skip and creates nothing; files that cannot be known
// create the run and return queue.Done with the note.
func (d *Dispatcher) Handle(ctx context.Context, w queue.Work) error {
	if err := d.admit(ctx, w); err != nil {
		return err
	}
	note, err := d.checkPaths(ctx, w)
	if err != nil {
		return err
	}
	ns, name, err := createRun(ctx, d.creator, w)
	kind := strings.ToLower(w.Target.RunKind())
	msg := kind + " created"
	switch {
	case err == nil:
		d.created.Add(1)
	case errors.Is(err, ErrAlreadyExists):
		d.existed.Add(1)
		msg = kind + " already exists"
	case queue.IsPermanent(err):
		d.permanent.Add(1)
		return err
	default:
		d.transient.Add(1)
		return err
	}
	d.logger.LogAttrs(ctx, slog.LevelInfo, msg,
		slog.String("event_id", w.Event.ID()),
		slog.String("app", w.Target.App),
		slog.String("trigger", w.Target.Trigger),
		slog.String("namespace", ns),
		slog.String("name", name),
	)
	if note != "" {
		return queue.Done(note)
	}
	return nil
}

// admit asks the Grant, if any, whether w may still run.
func (d *Dispatcher) admit(ctx context.Context, w queue.Work) error {
	if d.grant == nil {
		return nil
	}
	err := d.grant.Admit(w)
	if err == nil {
		return nil
	}
	d.refused.Add(1)
	d.logger.LogAttrs(ctx, slog.LevelWarn, "work refused by grant",
		slog.String("event_id", w.Event.ID()),
		slog.String("app", w.Target.App),
		slog.String("trigger", w.Target.Trigger),
		slog.String("reason", err.Error()),
	)
	return queue.Permanent(fmt.Errorf("grant: %w", err))
}

// Stats returns the outcome counters, for metrics.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Created:   d.created.Load(),
		Existed:   d.existed.Load(),
		Refused:   d.refused.Load(),
		Permanent: d.permanent.Load(),
		Transient: d.transient.Load(),
	}
}
