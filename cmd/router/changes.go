package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// changesOption lets dispatch finish the paths checks routing deferred (a
// push whose payload may not list every change): it asks GitHub's compare
// API with the apiToken of the source in the rules in force, after the
// 202, and counts the results on the default registry.
func changesOption(holder *routing.Holder) (dispatch.Option, error) {
	m, err := dispatch.NewPathsMetrics(prometheus.DefaultRegisterer)
	if err != nil {
		return nil, err
	}
	f := ingest.NewChangesFetcher(func(name string) *routing.Source { return holder.Rules().Source(name) })
	return dispatch.WithChanges(f, m), nil
}
