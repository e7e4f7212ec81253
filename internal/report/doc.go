// Package report closes the loop: it watches the PipelineRuns and TaskRuns
// Switchyard created (label app.kubernetes.io/managed-by=switchyard; a
// PipelineRun's own TaskRuns are left to it) and reports what becomes of
// them to the Git host that sent the event (commit statuses, or GitHub
// check runs as a GitHub App, with a Re-run button ingest answers) and as
// CDEvents (to an HTTP sink and a NATS subject). Targets an approval gate
// holds get "awaiting approval", then "rejected" or "approval expired", on
// the same context their run would use.
//
// Flow: Watcher (client-go informers per granted namespace) and
// ApprovalWatcher (a watch of the approvals bucket) turn what they see
// into Jobs, which are published on the SWITCHYARD_REPORTS JetStream
// stream; a durable consumer shared by every router replica (Sender) posts
// them.
//
// Invariants:
//   - A report is stored before it is posted: the Git host or the sink being
//     down loses nothing. Each Job's Nats-Msg-Id is (run uid, kind, state),
//     so the same transition seen by several routers' watchers is stored
//     once.
//   - A commit status is posted at least once and, barring a crash between
//     the post and its record, never twice for the same state: the
//     switchyard-reports bucket records the last state posted per run (one
//     context per run), and `pending` is never posted after a final state.
//   - Only runs whose event carried a revision, from a source with
//     `report: status` (or `checks`), get commit statuses (or check runs:
//     one per run, created once and then updated, its id in the bucket).
//   - 5xx, 429 and network errors are retried with backoff (redelivery with
//     NakWithDelay); any other 4xx is logged, counted and audited once, and
//     the report dropped.
//   - A source's API token goes only to its configured API (apiURL or the
//     provider's public API) and never appears in a log or an error.
//   - CDEvents are delivered at least once; their ids are deterministic
//     (run uid and type), so a consumer can drop repeats.
package report
