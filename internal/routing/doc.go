// Package routing is the compiled parent manifest: given a normalized
// CloudEvent and the source that accepted it, it returns the targets (one
// per (app, trigger), or per run a trigger's Tekton Triggers template
// renders) with their rendered parameters or PipelineRun or TaskRun and, for
// explain, why every other trigger did not fire.
//
// Invariants: routing is pure and in memory, with no I/O on the request
// path (ingest supplies what needs I/O, such as a push's changed files);
// Rules is immutable once loaded, so a reload swaps it whole (Holder,
// Reloader) and an event is routed by one Rules; the root manifest bounds
// every app manifest (namespaces, service accounts, sources, identities,
// event types), an app that asks for more is rejected at load, and a
// template any of whose rendered runs leaves the grant does not fire;
// globs and CEL conditions are compiled at load; every trigger fires at
// most once per event, in a deterministic order (apps by name, triggers in
// file order).
package routing
