package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// Dispatcher renders and creates the PipelineRun of each unit of work. Its
// Handle method is the queue's handler.
type Dispatcher struct {
	creator Creator
	logger  *slog.Logger

	created, existed, permanent, transient atomic.Uint64
}

// Stats counts Handle's outcomes since the Dispatcher was built.
type Stats struct {
	// Created counts PipelineRuns created.
	Created uint64
	// Existed counts work whose PipelineRun already existed (redeliveries).
	Existed uint64
	// Permanent counts failures marked queue.Permanent (dead-lettered).
	Permanent uint64
	// Transient counts failures the queue will retry.
	Transient uint64
}

// New returns a Dispatcher creating PipelineRuns with c. A nil logger
// discards logs.
func New(c Creator, logger *slog.Logger) *Dispatcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{creator: c, logger: logger.With("component", "dispatch")}
}

// Handle renders the PipelineRun for w and creates it. A PipelineRun that
// already exists is success (the work was done before). Errors keep their
// queue.Permanent mark and are left to the caller, the queue consumer, to log
// as it retries or dead-letters the work; Handle logs only successes.
func (d *Dispatcher) Handle(ctx context.Context, w queue.Work) error {
	pr, err := Render(ctx, w)
	if err == nil {
		err = d.creator.Create(ctx, pr)
	}
	msg := "pipelinerun created"
	switch {
	case err == nil:
		d.created.Add(1)
	case errors.Is(err, ErrAlreadyExists):
		d.existed.Add(1)
		msg = "pipelinerun already exists"
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
		slog.String("namespace", pr.Namespace),
		slog.String("name", pr.Name),
	)
	return nil
}

// Stats returns the outcome counters, for metrics.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Created:   d.created.Load(),
		Existed:   d.existed.Load(),
		Permanent: d.permanent.Load(),
		Transient: d.transient.Load(),
	}
}
