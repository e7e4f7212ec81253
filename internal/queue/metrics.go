package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/policy"
)

// Dispatch results, the result label of switchyard_dispatch_total.
const (
	ResultDone        = "done"        // the handler succeeded and the work was acked
	ResultRetry       = "retry"       // failed, redelivered after a backoff
	ResultDeadLetter  = "dead_letter" // dead-lettered (permanent, exhausted, undecodable)
	ResultInterrupted = "interrupted" // stopped by the shutdown deadline, left in the queue
)

// Metrics are the queue's and dispatch's Prometheus metrics. Pass them to
// Consume in ConsumerConfig.Metrics, and publish through Publisher.
type Metrics struct {
	publish     prometheus.Histogram
	dispatch    *prometheus.CounterVec
	dispatchDur prometheus.Histogram
	toRun       prometheus.Histogram
	pending     *prometheus.GaugeVec
	deadLetters prometheus.Gauge
	recordsKept prometheus.Gauge
	// pendingApps are the apps with a pending series, so an app whose
	// work is done reads 0 rather than its last backlog.
	pendingApps map[string]bool
}

// latencyBuckets span a local JetStream ack to a slow API server.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewMetrics registers the queue's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchyard_publish_duration_seconds", Buckets: latencyBuckets,
			Help: "Time to store an accepted event and its work in JetStream (all acks received).",
		}),
		dispatch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_dispatch_total",
			Help: "Dispatch attempts by app and result: done, retry, dead_letter, interrupted.",
		}, []string{"app", "result"}),
		dispatchDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchyard_dispatch_duration_seconds", Buckets: latencyBuckets,
			Help: "Time one dispatch attempt took (render, validate, create).",
		}),
		toRun: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchyard_event_to_pipelinerun_seconds", Buckets: latencyBuckets,
			Help: "Time from storing the work (just before the 202) to its PipelineRun's creation.",
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_queue_pending",
			Help: "Work in the work stream by app: waiting, in flight or waiting for a retry.",
		}, []string{"app"}),
		deadLetters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_dead_letters",
			Help: "Dead letters stored (router dlq list), as Consume last read them.",
		}),
		recordsKept: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_records_kept",
			Help: "Keys of the events kept for deduplication for --events-max-age (one per event, one more per body digest of a body-signed source), as Consume last read them. NATS holds each key in memory: about 110 B of heap each (docs/performance.md).",
		}),
		pendingApps: map[string]bool{},
	}
	var err error
	m.publish = metrics.Register(reg, m.publish, &err)
	m.dispatch = metrics.Register(reg, m.dispatch, &err)
	m.dispatchDur = metrics.Register(reg, m.dispatchDur, &err)
	m.toRun = metrics.Register(reg, m.toRun, &err)
	m.pending = metrics.Register(reg, m.pending, &err)
	m.deadLetters = metrics.Register(reg, m.deadLetters, &err)
	m.recordsKept = metrics.Register(reg, m.recordsKept, &err)
	if err != nil {
		return nil, fmt.Errorf("queue metrics: %w", err)
	}
	return m, nil
}

// storedRefresh is how often Consume counts the dead letters and the
// records kept.
const storedRefresh = 5 * time.Second

// countStored sets switchyard_dead_letters from the dead-letter stream and
// switchyard_records_kept from the records buckets (the legacy one too,
// while it holds records), at most every storedRefresh. Only Consume's
// loop calls it.
func (m *Metrics) countStored(ctx context.Context, q *Queue, last *time.Time) {
	if m == nil || time.Since(*last) < storedRefresh {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	s, err := q.js.Stream(ctx, DLQStream)
	if err != nil {
		return // tried again at the next refresh
	}
	*last = time.Now()
	m.deadLetters.Set(float64(s.CachedInfo().State.Msgs))
	kept, err := q.accepted.Status(ctx)
	if err != nil {
		return
	}
	n := kept.Values()
	if q.legacy.holdsRecords(ctx) {
		if st, err := q.legacy.kv.Status(ctx); err == nil {
			n += st.Values()
		}
	}
	m.recordsKept.Set(float64(n))
}

// Publisher is a Queue whose Publish is timed.
type Publisher struct {
	q *Queue
	m *Metrics
}

// Publisher returns q publishing with its duration measured.
func (m *Metrics) Publisher(q *Queue) *Publisher { return &Publisher{q: q, m: m} }

// Publish is Queue.Publish, timed into switchyard_publish_duration_seconds.
func (p *Publisher) Publish(ctx context.Context, a policy.Accepted) error {
	start := time.Now()
	err := p.q.Publish(ctx, a)
	p.m.publish.Observe(time.Since(start).Seconds())
	return err
}

// observe records one dispatch attempt that ran the handler for took. A
// nil Metrics records nothing.
func (m *Metrics) observe(app, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.dispatch.WithLabelValues(app, result).Inc()
	m.dispatchDur.Observe(took.Seconds())
}

// count records a delivery settled without running the handler.
func (m *Metrics) count(app, result string) {
	if m != nil {
		m.dispatch.WithLabelValues(app, result).Inc()
	}
}

// created records the time from the 202 of work's event to its
// PipelineRun.
func (m *Metrics) created(answered time.Time) {
	if m == nil || answered.IsZero() {
		return
	}
	m.toRun.Observe(time.Since(answered).Seconds())
}

// setPending records each app's work in the stream; apps seen before and
// absent now read 0. Only Consume's loop calls it.
func (m *Metrics) setPending(counts map[string]uint64) {
	if m == nil {
		return
	}
	for app := range m.pendingApps {
		if _, ok := counts[app]; !ok {
			m.pending.WithLabelValues(app).Set(0)
		}
	}
	for app, n := range counts {
		if !m.pendingApps[app] {
			m.dispatch.WithLabelValues(app, ResultDone) // a series from the start, at zero
		}
		m.pendingApps[app] = true
		m.pending.WithLabelValues(app).Set(float64(n))
	}
}
