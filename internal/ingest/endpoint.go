package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Scoped event endpoints for bots and AI agents: POST /v1/events/{endpoint}
// takes CloudEvents (binary, structured or batched, through the sdk-go HTTP
// binding), authenticates the caller (OIDC token or static token), holds
// every event to the endpoint's scope, and then goes the way of a webhook:
// route, store, dispatch. GET /v1/events/{id} tells the caller what became
// of an event it sent.

// StatusReader reads an accepted event's status (queue.Queue.Status). An
// event it does not hold gives an error with a NotFound() bool method that
// returns true (queue.ErrNotFound).
type StatusReader interface {
	Status(ctx context.Context, source, eventID string) (policy.EventStatus, error)
}

// RunStateReader replaces the state of an event's created targets with
// their runs' own (report.RunStates).
type RunStateReader interface {
	Fill(ctx context.Context, st *policy.EventStatus)
}

// authenticate checks the bearer token against the endpoint: a static
// token (compared as a SHA-256 with every stored hash, in constant time),
// else an OIDC token (signature, issuer, audience, expiry, algorithms, then
// the claims condition). The token never appears in an error; tokenLine
// is the matching static token's line in the tokens file, 0 for OIDC.
func authenticate(ctx context.Context, h http.Header, ep *routing.Endpoint) (c policy.Caller, tokenLine int, err error) {
	raw, err := authorizationBearer(h)
	if err != nil {
		return policy.Caller{}, 0, err
	}
	if len(ep.Tokens) > 0 {
		if name, line, ok := ep.MatchToken(raw); ok {
			return policy.EndpointCaller(ep, name), line, nil
		}
		// A static token that matched nothing is said to be that, not
		// answered with what an identity provider made of it.
		if ep.OIDC == nil || strings.Count(raw, ".") != 2 {
			return policy.Caller{}, 0, fmt.Errorf("%w: the bearer token is not one of the endpoint's static tokens", ErrUnauthorized)
		}
	}
	if ep.OIDC == nil {
		return policy.Caller{}, 0, fmt.Errorf("%w: endpoint %s has no credentials configured", ErrUnauthorized, ep.Name)
	}
	tok, err := verifyOIDCBearer(ctx, h, ep.OIDC)
	if err != nil {
		if len(ep.Tokens) > 0 {
			return policy.Caller{}, 0, fmt.Errorf("%w (and it is not one of the endpoint's static tokens)", err)
		}
		return policy.Caller{}, 0, err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return policy.Caller{}, 0, fmt.Errorf("%w: token claims: %v", ErrUnauthorized, err)
	}
	subject, _ := claims[ep.SubjectClaim].(string)
	if subject == "" {
		return policy.Caller{}, 0, fmt.Errorf("%w: token has no %q claim", ErrUnauthorized, ep.SubjectClaim)
	}
	if c := ep.ClaimsWhen; c != nil {
		ok, err := c.Eval(claims)
		if err != nil {
			return policy.Caller{}, 0, fmt.Errorf("%w: token claims do not satisfy the endpoint's condition: %v", ErrUnauthorized, err)
		}
		if !ok {
			// The condition itself is not echoed: it tells an attacker
			// which claims to forge.
			return policy.Caller{}, 0, fmt.Errorf("%w: token claims do not satisfy the endpoint's condition", ErrUnauthorized)
		}
	}
	return policy.EndpointCaller(ep, subject), 0, nil
}

// handleEvents is POST /v1/events/{endpoint}.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	name := policy.Truncate(r.PathValue("endpoint"), policy.MaxNameLen)
	out, err := s.acceptEvents(r, r.PathValue("endpoint"))
	rec := policy.Record{Kind: "endpoint", Source: name, Remote: remoteHost(r), Identity: out.caller.Identity, Subject: out.caller.Principal,
		TokenLine: out.tokenLine}
	s.audit(rec, out, err)
	log := s.logger.With("endpoint", name, "status", out.status, "principal", out.caller.Principal)
	if err != nil {
		s.logRefusal(log, "event refused", err)
		if out.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard"`)
		}
		writeError(w, out, err)
		return
	}
	for _, e := range out.events {
		msg := "event accepted"
		if e.Duplicate {
			msg = "event duplicate"
		}
		log.Info(msg, "event_id", e.ID, "type", e.Type, "targets", len(e.Targets))
	}
	writeAccepted(w, out)
}

// acceptEvents authenticates, meters, routes every event and has policy
// judge it with its rendered targets, and only when all of them pass stores
// them: a refused request queues nothing. The outcome names the caller once
// it authenticated, so a refusal after that is recorded with who it was.
func (s *Server) acceptEvents(r *http.Request, name string) (outcome, error) {
	rules := s.cfg.Rules.Rules()
	if rules == nil {
		return fail(ErrNotReady)
	}
	ep := rules.Endpoint(name)
	if ep == nil {
		return fail(s.unknownName("endpoint", name))
	}
	// The token is checked before the body is read: an unauthenticated
	// caller costs no body memory.
	c, tokenLine, err := authenticate(r.Context(), r.Header, ep)
	if err != nil {
		return fail(err)
	}
	out := outcome{caller: c, rulesRevision: rules.Revision(), tokenLine: tokenLine}
	// One event's worth before the body is decoded (so malformed requests
	// count too), the rest of a batch's once it is: the limit is on events.
	if err := s.meter.Take(c, 1, s.now()); err != nil {
		return out.fail(err)
	}
	limit := min(ep.Scope.MaxBodyBytes, s.cfg.MaxBody)
	body, release, err := s.bodies.readBody(r, limit)
	defer release()
	if err != nil {
		return out.fail(err)
	}
	events, err := readCloudEvents(&Request{Header: r.Header, Body: body})
	if err != nil {
		return out.fail(err)
	}
	if len(events) == 0 {
		return out.fail(fmt.Errorf("%w: an empty batch", ErrMalformed))
	}
	if perMinute := c.EventsPerMinute(); len(events) > perMinute {
		return out.fail(fmt.Errorf("%w: a batch of %d events is more than the %d a minute this caller may send; send smaller batches", ErrTooLarge, len(events), perMinute))
	}
	if len(events) > 1 {
		if err := s.meter.Take(c, len(events)-1, s.now()); err != nil {
			return out.fail(err)
		}
	}
	accepted := make([]policy.Accepted, len(events))
	for i := range events {
		ev := &events[i]
		// The router says who sent it, never the caller.
		ev.SetSource("/v1/events/" + ep.Name)
		ev.SetExtension("identity", c.Identity)
		ev.SetExtension("principal", c.Principal)
		ev.SetExtension("provider", "endpoint")
		carryTrace(r.Header, ev)
		targets := rules.Route(routing.Input{Source: ep.Name, Event: ev, Header: r.Header})
		if err := policy.Judge(rules, policy.Request{Source: ep.Name, Caller: c, Event: ev, Targets: targets}); err != nil {
			out.eventID, out.eventType = ev.ID(), ev.Type()
			return out.fail(fmt.Errorf("event %q: %w", ev.ID(), err))
		}
		accepted[i] = policy.Accepted{Source: ep.Name, Event: *ev, Targets: targets,
			Hold: policy.Gate(rules, policy.Request{Source: ep.Name, Caller: c, Event: ev, Targets: targets}, s.now())}
	}
	if err := s.publish(r.Context(), accepted, &out); err != nil {
		return out.fail(err)
	}
	out.status = http.StatusAccepted
	return out, nil
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
	var c policy.Caller
	var authErr error = fmt.Errorf("%w: no endpoint accepts this token", ErrUnauthorized)
	candidates := rules.Endpoints()
	if name := r.URL.Query().Get("endpoint"); name != "" {
		candidates = nil
		if ep := rules.Endpoint(name); ep != nil {
			candidates = []*routing.Endpoint{ep}
		}
	}
	for _, ep := range candidates {
		got, _, err := authenticate(r.Context(), r.Header, ep)
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
		source = c.Endpoint.Name
	}
	notFound := func() {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("no event %q of %q that %s may read", policy.Truncate(id, policy.MaxNameLen), policy.Truncate(source, policy.MaxNameLen), c.Identity)})
	}
	st, err := s.cfg.Status.Status(r.Context(), source, id)
	switch {
	case isNotFound(err):
		notFound()
		return
	case err != nil:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: err.Error()})
		return
	}
	if !policy.MayRead(rules, c, st) {
		notFound()
		return
	}
	if s.cfg.Runs != nil {
		s.cfg.Runs.Fill(r.Context(), &st)
	}
	writeJSON(w, http.StatusOK, st)
}
