// Package policy decides who may run what. Given an authenticated caller
// (a webhook source, or an endpoint's principal) and what routing would run
// (the rendered targets: app, trigger, namespace, service account, params
// after binding), it allows or denies with a named reason, meters the
// caller's rate, and names every decision for the audit trail. Dispatch asks
// it again, with the rules in force then, before a PipelineRun is created.
// Approval gates (Gate, MayDecide) and comment command grants (MayCommand)
// are decided here too, from the root manifest only.
//
// Invariants:
//   - The sender never decides on its own held event (approval.self).
//   - Deny by default: a caller with no scope, a principal matching no
//     callers[] entry, or a target outside the grant is refused.
//   - The scope is judged on the rendered targets and on the exact keys the
//     renderer reads, never on a second, differently decoded view of the
//     body, so the check and the run cannot disagree.
//   - Pure: no I/O. Token buckets (rate limits and audit sampling) are the
//     only state, and both are bounded.
package policy
