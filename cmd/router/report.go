package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/report"
)

// startReport starts closing the loop (kube dispatch only): the watcher of
// the PipelineRuns this router's rules create (on the one replica that
// leads it), and the sender of the commit statuses and CDEvents it queues
// (on every replica). Both stop when ctx ends. The
// watcher looks only while some source has `report:` or --cdevents-sink is
// set; the rules in force are read again on every resync.
func (r *router) startReport(ctx context.Context, wg *sync.WaitGroup, q *queue.Queue, fail func(error)) {
	if _, ok := r.creator.(*dispatch.KubeCreator); !ok {
		if r.cfg.cdeventsSink != "" {
			r.logger.Warn("cdevents and commit statuses need kube dispatch: not reporting")
		}
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.runReport(ctx, q, fail)
	}()
}

// runReport builds the watcher and the sender, retrying while JetStream
// refuses the report stream, and runs them until ctx ends.
func (r *router) runReport(ctx context.Context, q *queue.Queue, fail func(error)) {
	delay := queueRetryMin
	watcher, held, sender, err := r.newReport(ctx, q)
	for err != nil {
		if errors.Is(err, errReportConfig) {
			fail(err)
			return
		}
		r.logger.Warn("report queue not ready: retrying", "error", err.Error(), "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, queueRetryMax)
		watcher, held, sender, err = r.newReport(ctx, q)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		// One watcher per cluster: among the replicas sharing this NATS,
		// the one holding the lead watches the runs and the held targets;
		// another takes over within the lock's TTL when it stops.
		err := q.Lead(ctx, "report-watcher", func(ctx context.Context) error {
			r.logger.Info("leading the run watcher")
			var lw sync.WaitGroup
			lw.Go(func() { _ = held.Run(ctx) }) // retries on its own; nil when ctx ends
			err := watcher.Run(ctx)
			lw.Wait()
			return err
		})
		if err != nil {
			fail(fmt.Errorf("report watcher: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		if err := sender.Run(ctx); err != nil {
			fail(fmt.Errorf("report sender: %w", err))
		}
	}()
	wg.Wait()
}

// errReportConfig marks a report setup error no retry can fix.
var errReportConfig = errors.New("report")

// newReport builds the run and approval watchers and the sender on the
// report queue.
func (r *router) newReport(ctx context.Context, q *queue.Queue) (*report.Watcher, *report.ApprovalWatcher, *report.Sender, error) {
	restCfg, err := dispatch.RESTConfig(r.cfg.kubeconfig, float32(r.cfg.kubeQPS), r.cfg.kubeBurst)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: kubernetes config: %w", errReportConfig, err)
	}
	client, err := versioned.NewForConfig(restCfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: tekton client: %w", errReportConfig, err)
	}
	rq, err := report.OpenQueue(ctx, r.nc, r.cfg.streamReplica)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := report.NewMetrics(prometheus.DefaultRegisterer)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", errReportConfig, err)
	}
	var cd *report.CDEvents
	if r.cfg.cdeventsSink != "" {
		cd = &report.CDEvents{Sink: r.cfg.cdeventsSink, Subject: r.cfg.cdeventsSubject, StatusURL: func() string { return r.holder.Rules().StatusURL() }}
		if r.cfg.cdeventsSubject != "" {
			cd.NATS = r.nc
		}
	}
	reports := func(source string) bool {
		s := r.holder.Rules().Source(source)
		return s != nil && s.Report != ""
	}
	watcher := report.NewWatcher(report.WatcherConfig{
		Client: client, Publisher: rq, Live: rq, Logger: r.logger, CDEvents: cd != nil,
		Namespaces: func() []string {
			rules := r.holder.Rules()
			if !rules.Reporting() && cd == nil {
				return nil
			}
			return rules.RunNamespaces()
		},
		Status: reports, Resync: r.cfg.reportResync,
	})
	held := report.NewApprovalWatcher(report.ApprovalWatcherConfig{
		Store: q, Status: reports, Rules: r.holder.Rules, Publisher: rq, Logger: r.logger,
	})
	sender := report.NewSender(rq, report.SenderConfig{
		Rules: r.holder.Rules, CDEvents: cd, Logger: r.logger, Metrics: m, Audit: q.Audit, Approvals: q,
		MaxAttempts: r.cfg.reportMaxAttempts, BackoffBase: r.cfg.retryBase, BackoffMax: r.cfg.retryMax,
	})
	return watcher, held, sender, nil
}
