package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// serveMetrics are the router's request, queue and dispatch metrics, on the
// default Prometheus registry that /metrics serves.
type serveMetrics struct {
	http  *metrics.HTTP
	queue *queue.Metrics
	// auditDropped reads the queue the router opened.
	auditDropped *auditDropped
	intake       *intakeMetrics
}

func newServeMetrics(holder *routing.Holder) (*serveMetrics, error) {
	reg := prometheus.DefaultRegisterer
	var sources []string
	for _, s := range holder.Rules().Sources() {
		sources = append(sources, s.Name)
	}
	// Labels only for names the rules in force configure.
	known := func(kind, name string) bool {
		r := holder.Rules()
		switch kind {
		case "source":
			return r.Source(name) != nil
		case "endpoint":
			return r.Endpoint(name) != nil
		}
		return false
	}
	h, err := metrics.NewHTTP(reg, known, sources)
	if err != nil {
		return nil, err
	}
	q, err := queue.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	// The latest router of a process (tests run several) reports its rules.
	metrics.Register(reg, newRulesInfo(), &err).holder.Store(holder)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	dropped := metrics.Register(reg, newAuditDropped(), &err)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	intake := metrics.Register(reg, newIntakeMetrics(), &err)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := registerGoCollector(reg); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	return &serveMetrics{http: h, queue: q, auditDropped: dropped, intake: intake}, nil
}

// liveHeap adds go_gc_heap_live_bytes to the Go runtime's metrics: the
// heap the last garbage collection kept. It is the memory to size by:
// resident memory also holds the collector's headroom (up to as much
// again with GOGC=100), and moves with when the collector last ran.
var liveHeap = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}

// registerGoCollector replaces the default registry's Go collector with
// one that also exports liveHeap (once per process: tests serve several
// routers).
func registerGoCollector(reg prometheus.Registerer) error {
	reg.Unregister(collectors.NewGoCollector())
	err := reg.Register(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(liveHeap)))
	if are := (prometheus.AlreadyRegisteredError{}); err != nil && !errors.As(err, &are) {
		return fmt.Errorf("go collector: %w", err)
	}
	return nil
}

// intakeMetrics exports switchyard_webhooks_deferred_total (webhooks of a
// burst stored to be judged behind their 202) and switchyard_intake_pending
// (those not judged yet, read from JetStream at each scrape).
type intakeMetrics struct {
	deferredDesc, pendingDesc *prometheus.Desc
	deferred                  atomic.Uint64
	gate                      atomic.Pointer[queueGate]
}

func newIntakeMetrics() *intakeMetrics {
	return &intakeMetrics{
		deferredDesc: prometheus.NewDesc("switchyard_webhooks_deferred_total",
			"Webhooks answered 202 during a burst once stored as received, to be routed and judged behind the answer (--defer-above).", nil, nil),
		pendingDesc: prometheus.NewDesc("switchyard_intake_pending",
			"Webhooks stored during a burst and not judged yet.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *intakeMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.deferredDesc
	ch <- c.pendingDesc
}

// Collect implements prometheus.Collector.
func (c *intakeMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.deferredDesc, prometheus.CounterValue, float64(c.deferred.Load()))
	g := c.gate.Load()
	if g == nil {
		return
	}
	q := g.q.Load()
	if q == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n, err := q.IntakePending(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.pendingDesc, prometheus.GaugeValue, float64(n))
	}
}

// auditDropped exports switchyard_audit_dropped_total: audit records the
// router's queue dropped because JetStream could not take them for as
// long as its buffer lasted (queue.Queue.AuditDropped).
type auditDropped struct {
	desc *prometheus.Desc
	gate atomic.Pointer[queueGate]
}

func newAuditDropped() *auditDropped {
	return &auditDropped{desc: prometheus.NewDesc("switchyard_audit_dropped_total",
		"Audit records dropped because JetStream could not store them for as long as the router's buffer lasted (the log has every decision).", nil, nil)}
}

// Describe implements prometheus.Collector.
func (c *auditDropped) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *auditDropped) Collect(ch chan<- prometheus.Metric) {
	var n uint64
	if g := c.gate.Load(); g != nil {
		if q := g.q.Load(); q != nil {
			n = q.AuditDropped()
		}
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n))
}

// rulesInfo exports switchyard_rules_info{revision="..."} 1 for the rules
// in force, read at each scrape: a reload replaces the series, so there is
// only ever one.
type rulesInfo struct {
	desc   *prometheus.Desc
	holder atomic.Pointer[routing.Holder]
}

func newRulesInfo() *rulesInfo {
	return &rulesInfo{desc: prometheus.NewDesc("switchyard_rules_info",
		"The rules in force: 1, labelled with their revision (sha256:<12 hex>[,git:<12 hex>]).", []string{"revision"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *rulesInfo) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *rulesInfo) Collect(ch chan<- prometheus.Metric) {
	h := c.holder.Load()
	if h == nil || h.Rules() == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, h.Rules().Revision())
}
