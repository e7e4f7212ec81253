// Package queue stores accepted events and the work they produced on NATS
// JetStream, and hands that work to dispatch.
//
// Layout: SWITCHYARD_EVENTS keeps every accepted CloudEvent for replay and
// audit (limits retention, time bound); SWITCHYARD_WORK holds one message per
// (event, app, trigger) on switchyard.work.<app>, one subject per app, with
// work-queue retention so a message disappears once dispatched;
// SWITCHYARD_DLQ keeps work that failed permanently or ran out of attempts;
// SWITCHYARD_AUDIT keeps the ingest decisions policy names (90 days, at most
// Config.AuditMaxBytes: the oldest are dropped first). Key-value buckets record the
// accepted events (deduplication across restarts), each target's dispatch
// state (Status) and the cross-replica locks (Lock); switchyard-approvals
// holds the targets an approval gate keeps out of the work stream until
// Decide releases (or drops) them.
//
// Invariants:
//   - Publish returns nil only after JetStream acknowledged every message of
//     an Accepted: the event and each of its work items; ErrAlreadyStored
//     (a success) when the event was stored before. Any failure wraps
//     ErrUnavailable and the sender must retry.
//   - Every message carries a deduplication id scoped by source
//     (source/event-id for the event, source/event-id/app/trigger for work),
//     so two deliveries in flight together, or a prompt retry of a publish
//     that failed half way, store nothing twice within the duplicate window
//     (DefaultDuplicateWindow: short, since JetStream keeps the ids in
//     memory). A redelivery of a fully stored event finds its record in the
//     accepted-events bucket and stores nothing, for Config.EventsMaxAge.
//     Work queued twice past the window still makes one PipelineRun: its
//     name is deterministic and dispatch takes AlreadyExists as done.
//   - A held target is stored before the event counts as accepted, and
//     released with the work message id Publish would have given it, so a
//     second approval queues nothing new (and one past the window finds the
//     decision recorded).
//   - Work leaves the work stream only when dispatched (Ack; a handler's
//     Skip counts: the rules said not to run it) or when its dead letter
//     was acknowledged by JetStream (Term): nothing is dropped.
//   - Consumers are durable and shared: every router replica pulls from the
//     same consumers, so each work message goes to one replica at a time.
//   - One consumer per app, served in turn: a backlog for one app delays
//     another app's work by at most a round of fetches, not by the backlog.
//
// An embedded nats-server (StartEmbedded) serves small installs and tests;
// Open works the same against an external cluster.
package queue
