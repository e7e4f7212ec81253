package policy

import (
	"fmt"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// endpointPrefix starts an endpoint's identity (routing.Endpoint.Identity).
const endpointPrefix = "endpoint:"

// SourceIdentity is the identity of events a webhook source accepted.
func SourceIdentity(source string) string { return routing.SourceIdentity(source) }

// Caller is who authenticated a request.
type Caller struct {
	// Identity is "source:<name>" or "endpoint:<name>".
	Identity string
	// Principal is who, behind an endpoint, sent it: the token's subject
	// claim or the static token's name. Empty for sources.
	Principal string
	// Endpoint is the endpoint the caller authenticated to; nil for a
	// webhook source.
	Endpoint *routing.Endpoint
}

// SourceCaller is the caller behind a verified webhook source.
func SourceCaller(source string) Caller { return Caller{Identity: SourceIdentity(source)} }

// EndpointCaller is principal, authenticated by endpoint ep.
func EndpointCaller(ep *routing.Endpoint, principal string) Caller {
	return Caller{Identity: ep.Identity(), Principal: principal, Endpoint: ep}
}

// CallerOf rebuilds the caller of a stored event from its identity and
// principal extensions, under rules (replay and dispatch re-checks). An
// endpoint that no longer exists is an error: its events have no scope.
func CallerOf(rules *routing.Rules, identity, principal string) (Caller, error) {
	name, ok := strings.CutPrefix(identity, endpointPrefix)
	if !ok {
		return Caller{Identity: identity, Principal: principal}, nil
	}
	ep := rules.Endpoint(name)
	if ep == nil {
		return Caller{}, &Denial{Rule: "endpoint", Message: fmt.Sprintf("endpoint %q no longer exists", name)}
	}
	return EndpointCaller(ep, principal), nil
}

// scopeRule is a scope and where it is written ("scope",
// "callers[0].scope"), for refusal reasons.
type scopeRule struct {
	scope *routing.Scope
	rule  string
}

// scopes are the scopes c is held to: the endpoint's, and the callers[]
// entry matching its principal when the endpoint lists callers. A
// principal that matches no entry has no scope at all (fail closed).
func (c Caller) scopes() ([]scopeRule, error) {
	ep := c.Endpoint
	if ep == nil {
		return nil, nil
	}
	out := []scopeRule{{&ep.Scope, "scope"}}
	switch cs, ok := ep.CallerScope(c.Principal); {
	case !ok:
		return nil, &Denial{Rule: "callers", Message: fmt.Sprintf("principal %q matches no caller of endpoint %q", c.Principal, ep.Name)}
	case cs != nil:
		out = append(out, scopeRule{&cs.Scope, fmt.Sprintf("callers[%d].scope", cs.Index)})
	}
	return out, nil
}

// EventsPerMinute is the caller's rate limit: the matching callers[]
// entry's, else the endpoint's. Sources are not limited (0).
func (c Caller) EventsPerMinute() int {
	ep := c.Endpoint
	if ep == nil {
		return 0
	}
	if cs, ok := ep.CallerScope(c.Principal); ok && cs != nil {
		return cs.Scope.EventsPerMinute
	}
	return ep.Scope.EventsPerMinute
}

// MayRead reports whether c may read an accepted event's status: the
// identity and principal that sent it may, and so may the root's auditors.
func MayRead(rules *routing.Rules, c Caller, st EventStatus) bool {
	owner := st.Identity == c.Identity && st.Principal == c.Principal
	return owner || rules.IsAuditor(c.Identity)
}
