package policy

import (
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Decisions, as the audit trail names them.
const (
	DecisionAccepted        = "accepted"        // stored (2xx), or a ping/handshake answered
	DecisionUnauthenticated = "unauthenticated" // 401: missing or wrong credential
	DecisionDenied          = "denied"          // 403: authenticated, out of scope
	DecisionRateLimited     = "rate-limited"    // 429
	DecisionInvalid         = "invalid"         // 400, 404, 405, 413, 415
	DecisionUnavailable     = "unavailable"     // 503: not stored, the sender retries
)

// DecisionFor names the decision behind an HTTP status that refused a
// request: the one vocabulary the audit trail and `router audit` use.
func DecisionFor(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return DecisionUnauthenticated
	case http.StatusForbidden:
		return DecisionDenied
	case http.StatusTooManyRequests:
		return DecisionRateLimited
	case http.StatusServiceUnavailable, http.StatusInternalServerError:
		return DecisionUnavailable
	default:
		return DecisionInvalid
	}
}

// Record is one decision on a request, for the audit trail. It never holds
// a credential or a payload.
type Record struct {
	Time     time.Time `json:"time"`
	Decision string    `json:"decision"`
	// Kind is "webhook" or "endpoint"; Source the hook source or endpoint
	// name (truncated to MaxNameLen when it names nothing configured).
	Kind   string `json:"kind"`
	Source string `json:"source"`
	// Identity is who authenticated ("source:github", "endpoint:x"), empty
	// when nobody did.
	Identity string `json:"identity,omitempty"`
	Subject  string `json:"subject,omitempty"` // the principal behind the identity
	EventID  string `json:"eventId,omitempty"`
	Type     string `json:"type,omitempty"`
	Status   int    `json:"status"`
	Reason   string `json:"reason,omitempty"`
	// Rule is the scope rule that refused an event (403).
	Rule    string `json:"rule,omitempty"`
	Targets int    `json:"targets,omitempty"`
	Remote  string `json:"remote,omitempty"`
	// Suppressed counts the unauthenticated records sampled away since the
	// previous one that was kept (see Sampler).
	Suppressed int `json:"suppressed,omitempty"`
	// TokenLine is the line of the endpoint's tokens file (or variable)
	// whose static token matched, never the token: during a rotation it
	// shows whether the old line is still used.
	TokenLine int `json:"tokenLine,omitempty"`
	// SecretLine is the line of the webhook source's secret file (or
	// variable) whose secret verified the request, never the secret.
	SecretLine int `json:"secretLine,omitempty"`
	// RulesRevision is the revision of the rules that made the decision
	// (routing.Rules.Revision); empty when none judged it (an unknown
	// source, a failed credential).
	RulesRevision string `json:"rulesRevision,omitempty"`
	// OriginalRulesRevision, on a replay's record, is the revision that
	// routed the event when it was first accepted.
	OriginalRulesRevision string `json:"originalRulesRevision,omitempty"`
	// Deferred marks a webhook judged behind the 202 the router answered
	// while busy (a burst): Status is what the judgment would have
	// answered, the sender got 202.
	Deferred bool `json:"deferred,omitempty"`
}

// Accepted is what policy allowed to be stored for one event: the event and
// the targets it may start.
type Accepted struct {
	// Source is the webhook source or endpoint name; with the event id it
	// scopes deduplication.
	Source  string
	Event   event.Event
	Targets []routing.Target
	// BodyDigest, when set, is the hex SHA-256 of a body whose signature
	// covers only the body: the queue deduplicates on it as well as on the
	// event id, so a captured body replayed with a new delivery id is the
	// same delivery.
	BodyDigest string
	// Hold, when set, names the targets an approval gate holds: stored,
	// not queued (see Gate).
	Hold *Hold
	// Answered, when set, is when the sender got its 202, before the
	// event was judged: a webhook deferred during a burst. Zero: answered
	// once stored.
	Answered time.Time
}

// Target states, as GET /v1/events/{id} and `router status` report them.
const (
	// StateQueued: stored, not dispatched yet.
	StateQueued = "queued"
	// StateCreated: the PipelineRun exists (created now or found).
	StateCreated = "created"
	// StateFailed: the last attempt failed and it will be retried.
	StateFailed = "failed"
	// StateDeadLettered: it will not be retried; see `router dlq`.
	StateDeadLettered = "dead-lettered"
	// StateSkipped: nothing was created, by the rules: dispatch checked a
	// paths condition routing deferred and no changed file matched.
	StateSkipped = "skipped"
	// The run's own state, read from the cluster when the status is asked
	// for, past created (report.RunStates):
	// StateRunning: the run started and has not finished.
	StateRunning = "running"
	// StateSucceeded: the run finished and succeeded.
	StateSucceeded = "succeeded"
	// StateRunFailed: the run finished and did not succeed (failed,
	// cancelled, timed out: the reason says which). Final, unlike failed.
	StateRunFailed = "run-failed"
)

// TargetStatus is one target's dispatch state.
type TargetStatus struct {
	App       string    `json:"app"`
	Trigger   string    `json:"trigger"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	Updated   time.Time `json:"updated,omitzero"`
}

// EventStatus is an accepted event and the state of each of its targets.
type EventStatus struct {
	Source    string         `json:"source"`
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Identity  string         `json:"identity,omitempty"`
	Principal string         `json:"principal,omitempty"`
	Accepted  time.Time      `json:"accepted"`
	Targets   []TargetStatus `json:"targets"`
}

// MaxNameLen bounds a name taken from a request path (an unknown source or
// endpoint) in logs and audit records.
const MaxNameLen = 64

// Truncate shortens s to at most n bytes, marking the cut, so a request
// cannot grow the log or the audit stream by the length of its path.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
