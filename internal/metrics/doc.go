// Package metrics instruments Switchyard's HTTP edge for Prometheus: how many
// webhooks arrived per configured source and status code, and how long
// answering them took. Label values are bounded by the manifest: a source
// or endpoint the manifest does not name is counted as "unknown", so a
// scanner probing random paths cannot grow the series.
//
// The queue's and dispatch's metrics live with the queue (queue.Metrics).
package metrics
