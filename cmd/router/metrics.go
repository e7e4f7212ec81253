package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// serveMetrics are the router's request, queue and dispatch metrics, on the
// default Prometheus registry that /metrics serves.
type serveMetrics struct {
	http  *metrics.HTTP
	queue *queue.Metrics
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
	return &serveMetrics{http: h, queue: q}, nil
}
