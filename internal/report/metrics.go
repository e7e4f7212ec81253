package report

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/metrics"
)

// Results counted by switchyard_reports_total.
const (
	ResultPosted   = "posted"   // the host (or sink) took it
	ResultSkipped  = "skipped"  // already posted, superseded, or not asked for
	ResultRetried  = "retried"  // 5xx, 429 or no answer: retried later
	ResultRejected = "rejected" // 4xx: reported once and dropped
	ResultGaveUp   = "gave_up"  // still failing after the last attempt
)

// ProviderCDEvents is the provider label of CDEvents.
const ProviderCDEvents = "cdevents"

// Metrics counts reports by provider and result.
type Metrics struct {
	reports *prometheus.CounterVec
}

// NewMetrics registers switchyard_reports_total on reg, with every
// provider and result at zero.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{reports: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_reports_total",
		Help: "Reports of PipelineRun results: commit statuses by Git host, and CDEvents, by result.",
	}, []string{"provider", "result"})}
	var err error
	if m.reports = metrics.Register(reg, m.reports, &err); err != nil {
		return nil, fmt.Errorf("report metrics: %w", err)
	}
	for _, p := range append(Kinds(), ProviderCDEvents) {
		for _, r := range []string{ResultPosted, ResultSkipped, ResultRetried, ResultRejected, ResultGaveUp} {
			m.reports.WithLabelValues(p, r)
		}
	}
	return m, nil
}

func (m *Metrics) count(provider, result string) {
	if m != nil && provider != "" {
		m.reports.WithLabelValues(provider, result).Inc()
	}
}
