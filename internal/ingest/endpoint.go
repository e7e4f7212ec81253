package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/time/rate"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Scoped event endpoints for bots and AI agents: POST /v1/events/{endpoint}
// takes CloudEvents (binary, structured or batched, through the sdk-go HTTP
// binding), authenticates the caller (OIDC token or static token), holds
// every event to the endpoint's scope, and then goes the way of a webhook:
// route, store, dispatch. GET /v1/events/{id} tells the caller what became
// of an event it sent.

// StatusReader reads an accepted event's status (queue.Queue.Status).
type StatusReader interface {
	Status(ctx context.Context, source, eventID string) (queue.EventStatus, error)
}

// caller is an authenticated endpoint caller.
type caller struct {
	endpoint  *routing.Endpoint
	principal string // the token's subject, or the static token's name
}

func (c caller) identity() string { return c.endpoint.Identity() }

// authenticate checks the bearer token against the endpoint: a static
// token (compared as a SHA-256 with every stored hash, in constant time),
// else an OIDC token (signature, issuer, audience, expiry, algorithms, then
// the claims condition). The token never appears in an error.
func authenticate(ctx context.Context, h http.Header, ep *routing.Endpoint) (caller, error) {
	raw, err := authorizationBearer(h)
	if err != nil {
		return caller{}, err
	}
	if len(ep.Tokens) > 0 {
		if name, ok := ep.MatchToken(raw); ok {
			return caller{endpoint: ep, principal: name}, nil
		}
		if ep.OIDC == nil {
			return caller{}, fmt.Errorf("%w: the bearer token is not one of the endpoint's tokens", ErrUnauthorized)
		}
	}
	if ep.OIDC == nil {
		return caller{}, fmt.Errorf("%w: endpoint %s has no credentials configured", ErrUnauthorized, ep.Name)
	}
	tok, err := verifyOIDCBearer(ctx, h, ep.OIDC)
	if err != nil {
		return caller{}, err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return caller{}, fmt.Errorf("%w: token claims: %v", ErrUnauthorized, err)
	}
	subject, _ := claims[ep.SubjectClaim].(string)
	if subject == "" {
		return caller{}, fmt.Errorf("%w: token has no %q claim", ErrUnauthorized, ep.SubjectClaim)
	}
	if c := ep.ClaimsWhen; c != nil {
		ok, err := c.Eval(claims)
		if err != nil {
			return caller{}, fmt.Errorf("%w: token claims do not satisfy the endpoint's condition: %v", ErrUnauthorized, err)
		}
		if !ok {
			return caller{}, fmt.Errorf("%w: token claims do not satisfy the endpoint's condition (%s)", ErrUnauthorized, c.Expr)
		}
	}
	return caller{endpoint: ep, principal: subject}, nil
}

// limiters holds one token bucket per endpoint caller.
type limiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// take takes n events from the caller's bucket (perMinute, refilled
// continuously, burst perMinute; n is at most perMinute) and returns 0, or
// how long to wait when there are not enough.
func (l *limiters) take(key string, perMinute, n int, now time.Time) time.Duration {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*rate.Limiter{}
	}
	key += "/" + strconv.Itoa(perMinute) // a reload that changes the limit starts a new bucket
	lim, ok := l.m[key]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)
		l.m[key] = lim
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, n)
	d := res.DelayFrom(now)
	if d > 0 {
		res.CancelAt(now)
	}
	return d
}

// scopeRule is a scope and where it is written ("scope",
// "callers[0].scope"), for refusal reasons.
type scopeRule struct {
	scope *routing.Scope
	rule  string
}

// refuse is a refusal by one field of the scope.
func (sr scopeRule) refuse(field, format string, args ...any) error {
	return &ScopeError{Rule: sr.rule + "." + field, Message: fmt.Sprintf(format, args...)}
}

// agentParams is the part of an agent event's data that sets parameters:
// {"params": {"environment": "staging", ...}}.
type agentParams struct {
	Params map[string]json.RawMessage `json:"params"`
	// names are the params' names, sorted so that a refusal always names
	// the same one.
	names []string
}

// readAgentParams reads the event's params once, for every scope it is
// held to.
func readAgentParams(ev *event.Event) agentParams {
	var ap agentParams
	if json.Unmarshal(ev.Data(), &ap) != nil {
		return agentParams{} // no data, or not a JSON object: it sets no params
	}
	ap.names = slices.Sorted(maps.Keys(ap.Params))
	return ap
}

// check holds one event, whose params are ap, to the scope.
func (sr scopeRule) check(ev *event.Event, ap agentParams) error {
	s := sr.scope
	if !s.AllowsType(ev.Type()) {
		return sr.refuse("eventTypes", "event type %q is not allowed", ev.Type())
	}
	ext := ev.Extensions()
	str := func(name string) string { v, _ := ext[name].(string); return v }
	if b := str("branch"); !s.AllowsBranch(b) {
		return sr.refuse("branches", "branch %q is not allowed", b)
	}
	if ref := str("ref"); !s.AllowsRef(ref) {
		return sr.refuse("refs", "ref %q is not allowed", ref)
	}
	if env := str("environment"); !s.AllowsEnvironment(env) {
		return sr.refuse("environments", "environment %q is not allowed", env)
	}
	for _, name := range ap.names {
		if !s.AllowsParam(name) {
			return sr.refuse("params", "param %q may not be set by this caller (allowed: %s)", name, strings.Join(s.Params, ", "))
		}
	}
	if raw, ok := ap.Params["environment"]; ok {
		var env string
		if json.Unmarshal(raw, &env) != nil || !s.AllowsEnvironment(env) {
			return sr.refuse("environments", "environment %s is not allowed", raw)
		}
	}
	return nil
}

// checkTarget holds one target the event would trigger to the scope; the
// refusal names apps when the app is outside the scope, triggers when only
// the trigger is.
func (sr scopeRule) checkTarget(t routing.Target) error {
	s := sr.scope
	if s.AllowsTarget(t.App, t.Trigger) {
		return nil
	}
	field := "apps"
	if len(s.Apps) == 0 || slices.Contains(s.Apps, t.App) {
		field = "triggers"
	}
	return sr.refuse(field, "it would trigger %s/%s, which this caller may not", t.App, t.Trigger)
}

// handleEvents is POST /v1/events/{endpoint}.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("endpoint")
	var c caller
	out, err := s.acceptEvents(r, name, &c)
	rec := queue.AuditRecord{Kind: "endpoint", Source: name, Remote: remoteHost(r)}
	if c.endpoint != nil {
		rec.Identity, rec.Subject = c.identity(), c.principal
	}
	s.audit(rec, out, err)
	log := s.logger.With("endpoint", name, "status", out.status, "principal", c.principal)
	if err != nil {
		log.Info("event refused", "error", err.Error())
		if out.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard"`)
		}
		writeError(w, out, err)
		return
	}
	for _, e := range out.events {
		log.Info("event accepted", "event_id", e.ID, "type", e.Type, "targets", len(e.Targets))
	}
	writeAccepted(w, out)
}

// acceptEvents authenticates, rate-limits, checks every event against the
// scope and routes it, and only when all of them pass stores them: a
// refused request queues nothing. c is set once the caller has
// authenticated, so a refusal after that is recorded with who it was.
func (s *Server) acceptEvents(r *http.Request, name string, c *caller) (outcome, error) {
	rules := s.cfg.Rules.Rules()
	if rules == nil {
		return fail(ErrNotReady)
	}
	ep := rules.Endpoint(name)
	if ep == nil {
		return fail(fmt.Errorf("%w: no endpoint named %q", ErrUnknownSource, name))
	}
	limit := min(ep.Scope.MaxBodyBytes, s.cfg.MaxBody)
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fail(fmt.Errorf("%w: the endpoint's limit is %d bytes", ErrTooLarge, limit))
		}
		return fail(fmt.Errorf("%w: read body: %v", ErrMalformed, err))
	}
	authed, err := authenticate(r.Context(), r.Header, ep)
	if err != nil {
		return fail(err)
	}
	*c = authed
	// The scopes this caller is held to: the endpoint's, and the callers[]
	// entry matching its principal, if the endpoint lists callers.
	scopes := []scopeRule{{&ep.Scope, "scope"}}
	perMinute := ep.Scope.EventsPerMinute
	switch cs, ok := ep.CallerScope(c.principal); {
	case !ok:
		return fail(&ScopeError{Rule: "callers", Message: fmt.Sprintf("principal %q matches no caller of endpoint %q", c.principal, ep.Name)})
	case cs != nil:
		scopes = append(scopes, scopeRule{&cs.Scope, fmt.Sprintf("callers[%d].scope", cs.Index)})
		perMinute = cs.Scope.EventsPerMinute
	}
	// One event's worth before the body is decoded (so malformed requests
	// count too), the rest of a batch's once it is: the limit is on events.
	limitKey := ep.Name + "\x00" + c.principal
	rateLimit := func(n int) (outcome, error) {
		wait := s.limits.take(limitKey, perMinute, n, s.now())
		if wait == 0 {
			return outcome{}, nil
		}
		o, err := fail(fmt.Errorf("%w: at most %d events a minute; retry in %s", ErrRateLimited, perMinute, wait.Round(time.Second)))
		o.retryAfter = int(math.Ceil(wait.Seconds()))
		return o, err
	}
	if o, err := rateLimit(1); err != nil {
		return o, err
	}
	events, err := readCloudEvents(&Request{Header: r.Header, Body: body})
	if err != nil {
		return fail(err)
	}
	if len(events) == 0 {
		return fail(fmt.Errorf("%w: an empty batch", ErrMalformed))
	}
	if len(events) > perMinute {
		return fail(fmt.Errorf("%w: a batch of %d events is more than the %d a minute this caller may send; send smaller batches", ErrTooLarge, len(events), perMinute))
	}
	if len(events) > 1 {
		if o, err := rateLimit(len(events) - 1); err != nil {
			return o, err
		}
	}

	accepted := make([]queue.Accepted, len(events))
	results := make([]EventResult, len(events))
	for i := range events {
		ev := &events[i]
		params := readAgentParams(ev)
		for _, sc := range scopes {
			if err := sc.check(ev, params); err != nil {
				return fail(fmt.Errorf("event %q: %w", ev.ID(), err))
			}
		}
		// The router says who sent it, never the caller.
		ev.SetSource("/v1/events/" + ep.Name)
		ev.SetExtension("identity", c.identity())
		ev.SetExtension("principal", c.principal)
		ev.SetExtension("provider", "endpoint")
		targets := rules.Route(routing.Input{Source: ep.Name, Event: ev, Header: r.Header})
		for _, t := range targets {
			for _, sc := range scopes {
				if err := sc.checkTarget(t); err != nil {
					return fail(fmt.Errorf("event %q: %w", ev.ID(), err))
				}
			}
		}
		accepted[i], results[i] = acceptedEvent(ep.Name, ev, targets)
	}
	for _, a := range accepted {
		if err := s.cfg.Publisher.Publish(r.Context(), a); err != nil {
			return fail(err)
		}
	}
	return outcome{status: http.StatusAccepted, events: results}, nil
}

// handleEventStatus is GET /v1/events/{id}: the event's targets and their
// states, for the identity and principal that sent it or an auditor. The
// caller authenticates as for sending (?endpoint=NAME picks the endpoint;
// otherwise each is tried); ?source=NAME reads another source's event
// (auditors). An event the caller may not read is reported as not found,
// so ids cannot be probed.
func (s *Server) handleEventStatus(w http.ResponseWriter, r *http.Request) {
	rules := s.cfg.Rules.Rules()
	if rules == nil || s.cfg.Status == nil {
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: ErrNotReady.Error()})
		return
	}
	id := r.PathValue("id")
	var c caller
	var authErr error = fmt.Errorf("%w: no endpoint accepts this token", ErrUnauthorized)
	candidates := rules.Endpoints()
	if name := r.URL.Query().Get("endpoint"); name != "" {
		candidates = nil
		if ep := rules.Endpoint(name); ep != nil {
			candidates = []*routing.Endpoint{ep}
		}
	}
	for _, ep := range candidates {
		got, err := authenticate(r.Context(), r.Header, ep)
		if err == nil {
			c, authErr = got, nil
			break
		}
		authErr = err
	}
	if authErr != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard"`)
		writeJSON(w, http.StatusUnauthorized, ErrorResponse{Error: authErr.Error()})
		return
	}
	source := r.URL.Query().Get("source")
	if source == "" {
		source = c.endpoint.Name
	}
	notFound := func() {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("no event %q of %q that %s may read", id, source, c.identity())})
	}
	st, err := s.cfg.Status.Status(r.Context(), source, id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		notFound()
		return
	case err != nil:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: err.Error()})
		return
	}
	owner := st.Identity == c.identity() && st.Principal == c.principal
	if !owner && !rules.IsAuditor(c.identity()) {
		notFound()
		return
	}
	writeJSON(w, http.StatusOK, st)
}
