// Package routing is the compiled parent manifest: given a normalized
// CloudEvent and the source that accepted it, it returns the (app, trigger)
// targets with their rendered parameters and, for explain, why every other
// trigger did not fire.
//
// Invariants: routing is pure and in memory, with no I/O on the request
// path; Rules is immutable once loaded, so a reload swaps it whole; the root
// manifest bounds every app manifest (namespaces, service accounts,
// sources, event types), and an app that asks for more is rejected at load.
package routing
