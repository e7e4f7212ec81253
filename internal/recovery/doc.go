// Package recovery recovers the webhook deliveries a Git host failed to
// make: GitHub does not redeliver a failed webhook by itself, so a router
// that was down for a deploy would silently lose pushes.
//
// Run lists a hook's deliveries through the host's API (newest first,
// paging until Options.Since), groups the attempts of each delivery id
// (GUID), and asks the host to redeliver each delivery that failed on every
// attempt and whose id Switchyard never stored. Invariants:
//   - A GUID with any successful attempt, or whose id the queue stored, is
//     never redelivered; a GUID is redelivered at most once per Run, and not
//     at all once it has Options.MaxAttempts attempts (a delivery the
//     router refuses would otherwise be redelivered forever).
//   - DryRun changes nothing at the host.
//   - No token appears in an error or a log line: errors name the request,
//     never its credentials.
//
// GitLab has no API to redeliver past events; CheckGitLabHook reports a
// project hook GitLab disabled after repeated failures instead.
package recovery
