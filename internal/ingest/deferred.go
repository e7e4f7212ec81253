package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// A burst of webhooks (a monorepo merge, a base-image rebuild) is answered
// at the speed of one publish: while more than Config.DeferAbove webhooks
// are being answered at once, each verified webhook is stored as it came
// (its headers without credentials, its body) and answered 202 at once;
// normalizing, routing, policy and the event's own records run behind the
// answer (Judge), a few at a time in the order the webhooks were stored.
// The 202 still means stored: the stored webhook is judged, never lost,
// and an event judged twice (a retry) is deduplicated as any redelivery
// is. What the sender no longer gets in the answer (the targets, or a 400
// for a signed but malformed payload) is in the audit trail and in
// GET /v1/events/{id} once judged. No webhook is refused by scope (only
// agents' endpoints are, and those are never deferred), so no 403 is lost.

// DefaultDeferAbove is how many webhooks answered at once make a burst.
const DefaultDeferAbove = 8

// Deferred is a verified webhook stored to be judged behind its 202.
type Deferred struct {
	Source string
	Remote string
	// SecretLine is the line of the source's secret that verified it.
	SecretLine int
	Received   time.Time
	// Header is the request's headers without credentials
	// (routing.Rules.StripCredentials): the request was verified before it
	// was stored, and nothing after verification reads a credential.
	Header http.Header
	Body   []byte
}

// Deferrer stores deferred webhooks durably (queue.Queue.StoreIntake).
// Defer returns nil only once the webhook is stored; a failure a retry may
// heal has an Unavailable() bool method that returns true. It keeps no
// reference to the body once it returns.
type Deferrer interface {
	Defer(ctx context.Context, d Deferred) error
}

// burstAbove is how many webhooks answered at once make a burst, 0 when
// nothing can be deferred.
func burstAbove(cfg Config) int64 {
	if cfg.Deferrer == nil || cfg.DeferAbove <= 0 {
		return 0
	}
	return int64(cfg.DeferAbove)
}

// burstLinger is how long a burst lasts after the last moment more than
// Config.DeferAbove webhooks were being answered: senders' load comes in
// waves, and a burst that flickered off between two of them would judge a
// webhook before answering in the middle of it.
const burstLinger = 200 * time.Millisecond

// Busy reports whether the router is answering a burst: more webhooks at
// once than Config.DeferAbove, now or less than 200 ms ago. Webhooks are
// then deferred, and the judging of the deferred ones waits
// (queue.IntakeConfig.Busy).
func (s *Server) Busy() bool {
	if s.burstAbove == 0 {
		return false
	}
	return s.hooksInflight.Load() > s.burstAbove || time.Now().UnixNano() < s.busyUntil.Load()
}

// noteBurst records that inflight webhooks are being answered: more than
// Config.DeferAbove start (or extend) a burst.
func (s *Server) noteBurst(inflight int64) {
	if s.burstAbove > 0 && inflight > s.burstAbove {
		s.busyUntil.Store(time.Now().Add(burstLinger).UnixNano())
	}
}

// deferNow reports whether this webhook is deferred. A provider that may
// answer in the body (a subscription validation handshake) never is.
func (s *Server) deferNow(p Provider) bool {
	if _, answers := p.(Handshaker); answers {
		return false
	}
	if s.deferAll {
		return s.cfg.Deferrer != nil
	}
	return s.Busy()
}

// deferRequest stores a verified webhook as it came and answers 202.
func (s *Server) deferRequest(r *http.Request, rules *routing.Rules, src *routing.Source, req *Request, out outcome) (outcome, error) {
	d := Deferred{Source: src.Name, Remote: remoteHost(r), SecretLine: out.secretLine, Received: s.now(),
		Header: rules.StripCredentials(req.Header), Body: req.Body}
	err := s.cfg.Deferrer.Defer(r.Context(), d)
	// The stored message is a copy (Deferrer's contract): nothing holds the
	// body now.
	recycleBody(req.Body)
	req.Body = nil
	if err != nil {
		return out.fail(err)
	}
	out.status, out.deferred = http.StatusAccepted, true
	return out, nil
}

// encodedAnswer is an answer's body for one rules revision.
type encodedAnswer struct {
	revision string
	body     []byte
}

// writeDeferred answers a deferred webhook 202: the same body for every
// webhook of a revision, so it is encoded once per revision, not once per
// webhook of a burst.
func (s *Server) writeDeferred(w http.ResponseWriter, revision string) {
	a := s.deferredBody.Load()
	if a == nil || a.revision != revision {
		body, err := json.Marshal(AcceptedResponse{EventResult: EventResult{Targets: []TargetRef{}}, Deferred: true, RulesRevision: revision})
		if err != nil {
			panic(err) // strings and a bool always encode
		}
		a = &encodedAnswer{revision: revision, body: append(body, '\n')}
		s.deferredBody.Store(a)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(a.body)
}

// Judge decides a deferred webhook with the rules in force now, as accept
// would have: its events are stored, or it is refused, and either way
// audited (the record marked deferred) and logged. It returns an error only
// when the webhook should be judged again later: the rules are not loaded
// yet, or the queue was unavailable.
func (s *Server) Judge(ctx context.Context, d Deferred) error {
	rules := s.cfg.Rules.Rules()
	if rules == nil {
		return ErrNotReady
	}
	out, err := s.judgeDeferred(ctx, rules, d)
	if err != nil && out.status == http.StatusServiceUnavailable {
		return err
	}
	rec := policy.Record{Kind: "webhook", Source: policy.Truncate(d.Source, policy.MaxNameLen), Remote: d.Remote,
		Identity: out.caller.Identity, SecretLine: d.SecretLine, Deferred: true}
	s.audit(rec, out, err)
	log := s.logger.With("source", rec.Source, "status", out.status, "deferred", true)
	if err != nil {
		s.logRefusal(log, "deferred webhook refused", err)
		return nil
	}
	s.logAccepted(log, out)
	return nil
}

func (s *Server) judgeDeferred(ctx context.Context, rules *routing.Rules, d Deferred) (outcome, error) {
	src := rules.Source(d.Source)
	if src == nil {
		// Removed from the rules since it was stored: nothing routes it.
		return fail(fmt.Errorf("%w (removed since the webhook was stored)", s.unknownName("source", d.Source)))
	}
	provider, ok := Lookup(src.Kind)
	if !ok {
		return fail(fmt.Errorf("%w: source %q has unknown kind %q", ErrUnknownSource, d.Source, src.Kind))
	}
	out := outcome{caller: policy.SourceCaller(src.Name), rulesRevision: rules.Revision(), secretLine: d.SecretLine, answered: d.Received}
	return s.judge(ctx, rules, src, provider, &Request{Header: d.Header, Body: d.Body}, out)
}
