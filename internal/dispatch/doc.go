// Package dispatch turns one unit of queued work into one Tekton PipelineRun,
// or one TaskRun when a Tekton Triggers template rendered one (RenderTaskRun,
// created by a Creator that is also a TaskRunCreator).
//
// Render builds the PipelineRun from a queue.Work (the routed target plus the
// CloudEvent attributes, never the provider payload: dispatch does not parse
// provider payloads), checks it with Tekton's own defaulting and validation,
// and a Creator creates it: in a cluster through client-go (KubeCreator) or,
// without a cluster, as a YAML file (DirCreator). Dispatcher.Handle, the
// queue's handler, does both and counts the outcome.
//
// Invariants:
//   - A run's name is deterministic (routing.RunName), so a redelivered work
//     item maps to the object it already created; a Creator reports that
//     case with ErrAlreadyExists and Handle treats it as success. Exactly one
//     run per (event, app, trigger, index) follows.
//   - Errors marked with queue.Permanent (an invalid PipelineRun, a forbidden or
//     missing namespace) cannot be fixed by retrying: the queue dead-letters
//     them at once. Every other error is transient and the queue redelivers
//     the work with backoff.
//   - The queue is not trusted: with WithGrant, Handle asks the Grant (the
//     rules in force) before rendering, and creates nothing for work it
//     refuses.
//   - A paths condition routing could not decide without GitHub's API
//     (routing.PathsCheck) is finished here, before anything is created
//     (WithChanges): no matching file settles the work as queue.Skip; files
//     that cannot be known create the run with a note (queue.Done).
//   - Every run carries app.kubernetes.io/managed-by=switchyard and
//     Switchyard's switchyard.dev/* keys; a template may set none of them
//     (IsReservedKey). The concurrency controller acts only on Switchyard's
//     runs of one app and group, so one app can never cancel or start
//     another's.
//   - Logs carry identifiers only (event id, app, trigger, namespace, name),
//     never parameter values, payloads or credentials.
package dispatch
