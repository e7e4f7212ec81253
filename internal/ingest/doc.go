// Package ingest is Switchyard's HTTP front: it checks a credential carried
// in the headers or the path before reading the body, reads the body with a
// size cap and within an in-flight memory budget, authenticates signatures
// on the raw bytes before any JSON decoding, normalizes the provider's
// payload into CloudEvents, asks routing for the targets, has policy judge
// them, and hands what policy accepted to its Publisher. It does not import
// the queue: the publisher and status reader are interfaces in policy's
// types, and "unavailable" and "not found" are recognised by method.
// Approvers release held targets through POST /v1/events/{id}/approve (or
// reject) and Git comment commands (/retest, /ok-to-test, /approve,
// /cancel) arrive as verified comment events; who may do either is
// policy's, granted in the root only. A GitHub check run's Re-run button
// (a check_run requested_action) re-runs its target as /retest would,
// judged with the original sender's identity (rerun.go).
//
// Invariants: a 2xx is sent only after the publisher reported that every
// message was stored; a request that fails verification never yields a
// 2xx; no network call is made before the answer (a truncated push's
// changed files are asked of GitHub after it, by dispatch, through
// ChangesFetcher); secrets and bodies are never logged. Providers are small types
// registered by kind, one file each; ingest never imports dispatch or
// Kubernetes packages.
package ingest
