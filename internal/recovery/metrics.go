package recovery

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/metrics"
)

// Metrics count what recovery did, per source. Label values are the
// sources with a recover block and the two results, created at start.
type Metrics struct {
	recovered *prometheus.CounterVec
	disabled  *prometheus.GaugeVec
}

// Results of switchyard_recovered_deliveries_total.
const (
	resultRedelivered = "redelivered"
	resultFailed      = "failed"
)

// NewMetrics registers the recovery metrics with reg (or returns those
// registered before) with zeros for sources.
func NewMetrics(reg prometheus.Registerer, sources []string) (*Metrics, error) {
	var err error
	m := &Metrics{
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_recovered_deliveries_total",
			Help: "Failed webhook deliveries Switchyard asked the Git host to redeliver (redelivered), or whose redelivery the host refused (failed).",
		}, []string{"source", "result"}),
		disabled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_hook_disabled",
			Help: "1 while the Git host reports a hook of the source disabled after repeated failures (GitLab), else 0.",
		}, []string{"source"}),
	}
	m.recovered = metrics.Register(reg, m.recovered, &err)
	m.disabled = metrics.Register(reg, m.disabled, &err)
	if err != nil {
		return nil, err
	}
	for _, s := range sources {
		m.recovered.WithLabelValues(s, resultRedelivered)
		m.recovered.WithLabelValues(s, resultFailed)
	}
	return m, nil
}

// Observe counts a Run's redeliveries.
func (m *Metrics) Observe(source string, r Report) {
	m.recovered.WithLabelValues(source, resultRedelivered).Add(float64(r.Count(Redelivered)))
	m.recovered.WithLabelValues(source, resultFailed).Add(float64(r.Count(Failed)))
}

// SetDisabled records whether a hook of source is disabled.
func (m *Metrics) SetDisabled(source string, disabled bool) {
	v := 0.0
	if disabled {
		v = 1
	}
	m.disabled.WithLabelValues(source).Set(v)
}
