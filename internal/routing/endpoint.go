package routing

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/decls"
	"github.com/google/cel-go/common/types"
	celext "github.com/google/cel-go/ext"
	"go.yaml.in/yaml/v3"
)

// Scoped event endpoints, POST /v1/events/<name>: how bots and AI agents
// trigger pipelines. The root declares each one with how its callers
// authenticate and what they may do; the identity "endpoint:<name>" must
// also be granted by the apps it reaches.

// endpointSpec is one endpoint in root.yaml.
type endpointSpec struct {
	Name  string       `yaml:"name"`
	Auth  endpointAuth `yaml:"auth"`
	Scope scopeSpec    `yaml:"scope"`
	// Callers, when present, narrow the scope per identity behind the
	// endpoint; a caller matching none of them is refused.
	Callers []callerSpec `yaml:"callers"`
	// Approval, when set, holds matching requests for an approver.
	Approval *approvalSpec `yaml:"approval"`
}

// callerSpec narrows an endpoint's scope for the principals it matches
// (the token's subject claim, or a static token's name).
type callerSpec struct {
	Principal string    `yaml:"principal"`
	Scope     scopeSpec `yaml:"scope"`
}

type endpointAuth struct {
	OIDC *endpointOIDC `yaml:"oidc"`
	// Tokens names a file or environment variable holding static bearer
	// tokens as SHA-256 hashes, one per line: "sha256:<hex> [name]".
	Tokens *secretRef `yaml:"tokens"`
}

type endpointOIDC struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	JWKSURL  string `yaml:"jwksURL"`
	// Algorithms accepted; default RS256. HS* and none are refused.
	Algorithms []string `yaml:"algorithms"`
	// When is a CEL condition on the token's claims (variable claims).
	When string `yaml:"when"`
	// SubjectClaim names the claim that identifies the caller; default sub.
	SubjectClaim string `yaml:"subjectClaim"`
}

type scopeSpec struct {
	// Apps and Triggers ("app/trigger") the endpoint may reach.
	Apps     []string `yaml:"apps"`
	Triggers []string `yaml:"triggers"`
	// EventTypes are globs of the CloudEvent types it may send.
	EventTypes []string `yaml:"eventTypes"`
	// Params are the names it may set in the event's data.params.
	Params []string `yaml:"params"`
	// Branches and Refs are globs for the event's branch and ref
	// extensions; Environments the values of params.environment (and an
	// environment extension).
	Branches     []string `yaml:"branches"`
	Refs         []string `yaml:"refs"`
	Environments []string `yaml:"environments"`
	// EventsPerMinute per caller (token bucket); default 60.
	EventsPerMinute int `yaml:"eventsPerMinute"`
	// MaxBodyBytes caps a request; default 1 MiB.
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
}

// reservedTypePrefix starts the router's own normalized event types.
const reservedTypePrefix = "dev.switchyard."

// Defaults of an endpoint's scope.
const (
	DefaultEventsPerMinute = 60
	DefaultEndpointBody    = 1 << 20
)

// Endpoint is a compiled endpoint.
type Endpoint struct {
	Name string
	// OIDC, when set, accepts OIDC bearer tokens (OIDC.Algorithms set).
	OIDC *OIDC
	// ClaimsWhen, when set, must hold for a token's claims.
	ClaimsWhen   *ClaimsCondition
	SubjectClaim string
	// TokensRef is where static token hashes live; Tokens are the hashes,
	// read when secrets are resolved.
	TokensRef secretRef
	Tokens    []TokenHash
	Scope     Scope
	// Callers narrow Scope per principal; see CallerScope.
	Callers []Caller
	// Approval, when set, is the gate on what the endpoint's callers start.
	Approval *Approval
}

// Caller is one compiled callers[] entry.
type Caller struct {
	Index     int // position in callers[], for refusal reasons
	Principal globList
	Scope     Scope
}

// CallerScope returns the caller entry whose principal pattern matches
// principal (the first one), or nil and true when the endpoint has no
// callers list. With a list and no match it returns false: that caller
// has no scope on this endpoint.
func (e *Endpoint) CallerScope(principal string) (*Caller, bool) {
	if len(e.Callers) == 0 {
		return nil, true
	}
	for i := range e.Callers {
		if e.Callers[i].Principal.match(principal) {
			return &e.Callers[i], true
		}
	}
	return nil, false
}

// Identity is the identity extension of the endpoint's events.
func (e *Endpoint) Identity() string { return endpointIdentityPrefix + e.Name }

// TokenHash is one accepted static token, by its SHA-256.
type TokenHash struct {
	Sum  [sha256.Size]byte
	Name string
	// Line is the token's line in the tokens file or variable (1-based,
	// blank and comment lines counted), so an audit record can say which
	// token of a rotation was used without naming it.
	Line int
}

// MatchToken returns the name of the static token presented (its label,
// or "token:<first hex digits of its hash>") and its line, comparing with
// every hash in constant time: during a rotation the old and the new
// token are both listed, and either is accepted.
func (e *Endpoint) MatchToken(presented string) (name string, line int, ok bool) {
	sum := sha256.Sum256([]byte(presented))
	match := -1
	for i, h := range e.Tokens {
		if subtle.ConstantTimeCompare(sum[:], h.Sum[:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return "", 0, false
	}
	t := e.Tokens[match]
	if t.Name != "" {
		return t.Name, t.Line, true
	}
	return "token:" + hex.EncodeToString(t.Sum[:4]), t.Line, true
}

// Scope is what an endpoint's callers may do.
type Scope struct {
	Apps, Triggers  []string
	EventTypes      globList
	Params          []string
	Branches, Refs  globList
	Environments    []string
	EventsPerMinute int
	MaxBodyBytes    int64
}

// AllowsTarget reports whether the scope reaches app/trigger.
func (s *Scope) AllowsTarget(app, trigger string) bool {
	if len(s.Apps) > 0 && !slices.Contains(s.Apps, app) {
		return false
	}
	return len(s.Triggers) == 0 || slices.Contains(s.Triggers, app+"/"+trigger)
}

// AllowsType, AllowsBranch and AllowsRef check one value against the scope;
// an empty list allows anything, except for types, which must be listed.
func (s *Scope) AllowsType(t string) bool { return s.EventTypes.match(t) }

// AllowsBranch reports whether the scope allows branch ("" always passes:
// the event names no branch).
func (s *Scope) AllowsBranch(b string) bool {
	return b == "" || s.Branches.empty() || s.Branches.match(b)
}

// AllowsRef is AllowsBranch for refs.
func (s *Scope) AllowsRef(r string) bool { return r == "" || s.Refs.empty() || s.Refs.match(r) }

// AllowsParam reports whether the caller may set the param.
func (s *Scope) AllowsParam(name string) bool { return slices.Contains(s.Params, name) }

// AllowsEnvironment reports whether env may be targeted.
func (s *Scope) AllowsEnvironment(env string) bool {
	return env == "" || len(s.Environments) == 0 || slices.Contains(s.Environments, env)
}

// Endpoint returns the named endpoint, or nil.
func (r *Rules) Endpoint(name string) *Endpoint { return r.endpoints[name] }

// Endpoints returns the endpoints sorted by name.
func (r *Rules) Endpoints() []*Endpoint {
	out := make([]*Endpoint, 0, len(r.endpoints))
	for _, e := range r.endpoints {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *Endpoint) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// IsAuditor reports whether identity may read any event's status.
func (r *Rules) IsAuditor(identity string) bool { return slices.Contains(r.auditors, identity) }

// allowedAlgs are the only algorithms an endpoint may accept: never
// "none", nor the HMAC algorithms, whose key would be the issuer's public
// key (the RS/HS confusion attack).
var allowedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (l *loader) compileEndpoint(file string, node *yaml.Node, i int, s endpointSpec, rules *Rules) *Endpoint {
	at := func(path ...any) int { return lineOf(node, append([]any{"endpoints", i}, path...)...) }
	e := &Endpoint{Name: s.Name, SubjectClaim: "sub"}
	if !nameRE.MatchString(s.Name) {
		l.addf(file, at("name"), "endpoint name %q must be a DNS label (lowercase letters, digits, '-')", s.Name)
	}
	if _, clash := rules.sources[s.Name]; clash {
		l.addf(file, at("name"), "endpoint %q has the name of a source: names share one event-id space", s.Name)
	}
	a := s.Auth
	if a.OIDC == nil && a.Tokens == nil {
		l.addf(file, at("auth"), "endpoint %q: auth needs oidc or tokens (fail closed: an endpoint without authentication is never an open door)", s.Name)
	}
	if o := a.OIDC; o != nil {
		if o.Issuer == "" || o.Audience == "" {
			l.addf(file, at("auth", "oidc"), "endpoint %q: oidc needs issuer and audience", s.Name)
		}
		for j, alg := range o.Algorithms {
			if !slices.Contains(allowedAlgs, alg) {
				l.addf(file, at("auth", "oidc", "algorithms", j), "endpoint %q: algorithm %q is not accepted (allowed: %s; never none or HS*)", s.Name, alg, strings.Join(allowedAlgs, ", "))
			}
		}
		// Empty algorithms mean RS256, as for a source (see OIDC.Algorithms).
		e.OIDC = &OIDC{Issuer: o.Issuer, Audience: o.Audience, JWKSURL: o.JWKSURL, Algorithms: o.Algorithms}
		if o.SubjectClaim != "" {
			e.SubjectClaim = o.SubjectClaim
		}
		if o.When != "" {
			c, err := compileClaimsCondition(o.When)
			if err != nil {
				l.addf(file, at("auth", "oidc", "when"), "endpoint %q: when: %v", s.Name, err)
			}
			e.ClaimsWhen = c
		} else if len(s.Callers) == 0 {
			l.addf(file, at("auth", "oidc"), "endpoint %q: oidc needs when (such as claims.repository == 'acme/release-bot') or callers: "+
				"issuer and audience alone admit every token the issuer signs, and a GitHub Actions workflow chooses its own audience, so any repository could call", s.Name)
		}
	}
	if t := a.Tokens; t != nil {
		if (t.Env == "") == (t.File == "") {
			l.addf(file, at("auth", "tokens"), "endpoint %q: tokens needs exactly one of env or file", s.Name)
		} else {
			e.TokensRef = *t
			if l.opts.ResolveSecrets {
				data, err := t.resolve(l.opts.LookupEnv)
				if err == nil {
					e.Tokens, err = parseTokenHashes(data)
				}
				if err != nil {
					l.addf(file, at("auth", "tokens"), "endpoint %q: tokens: %v", s.Name, err)
				}
			}
		}
	}

	sc := s.Scope
	if len(sc.EventTypes) == 0 {
		l.addf(file, at("scope"), "endpoint %q: scope.eventTypes is required: list the event types its callers may send", s.Name)
	}
	e.Scope = l.compileScope(file, func(path ...any) int { return at(append([]any{"scope"}, path...)...) }, "endpoint "+strconv.Quote(s.Name), sc)
	if sc.EventsPerMinute == 0 {
		e.Scope.EventsPerMinute = DefaultEventsPerMinute
	}
	if sc.MaxBodyBytes == 0 {
		e.Scope.MaxBodyBytes = DefaultEndpointBody
	}
	e.Approval = l.compileApproval(file, func(path ...any) int { return at(append([]any{"approval"}, path...)...) }, approvalRule("endpoints", s.Name), "endpoint "+strconv.Quote(s.Name), "", s.Approval)
	for j, cs := range s.Callers {
		cat := func(path ...any) int { return at(append([]any{"callers", j}, path...)...) }
		e.Callers = append(e.Callers, l.compileCaller(file, cat, e, j, cs))
	}
	return e
}

// compileCaller compiles callers[j] of endpoint e, whose scope it may only
// narrow; cat gives the line of a field inside the entry.
func (l *loader) compileCaller(file string, cat func(path ...any) int, e *Endpoint, j int, cs callerSpec) Caller {
	owner := fmt.Sprintf("endpoint %q callers[%d]", e.Name, j)
	c := Caller{Index: j}
	if cs.Principal == "" {
		l.addf(file, cat(), "%s: principal is required (the token subject or static token name, a glob)", owner)
	} else if name, neg := strings.CutPrefix(cs.Principal, "!"); neg {
		l.addf(file, cat("principal"), "%s: principal %q is only a negation, which matches every other caller: "+
			"an entry applies to the principals it matches, so to treat %s apart list a caller with principal %q before one with principal \"**\"", owner, cs.Principal, name, name)
	} else {
		var err error
		if c.Principal, err = compileGlobs([]string{cs.Principal}); err != nil {
			l.addf(file, cat("principal"), "%s: principal: %v", owner, err)
		}
	}
	c.Scope = l.compileScope(file, func(path ...any) int { return cat(append([]any{"scope"}, path...)...) }, owner, cs.Scope)
	if cs.Scope.MaxBodyBytes != 0 {
		l.addf(file, cat("scope", "maxBodyBytes"), "%s: maxBodyBytes is set per endpoint, not per caller", owner)
	}
	switch {
	case cs.Scope.EventsPerMinute == 0:
		c.Scope.EventsPerMinute = e.Scope.EventsPerMinute
	case cs.Scope.EventsPerMinute > e.Scope.EventsPerMinute:
		l.addf(file, cat("scope", "eventsPerMinute"), "%s: eventsPerMinute %d exceeds the endpoint's %d: a caller's scope only narrows", owner, cs.Scope.EventsPerMinute, e.Scope.EventsPerMinute)
	}
	for k, p := range cs.Scope.Params {
		if !slices.Contains(e.Scope.Params, p) {
			l.addf(file, cat("scope", "params", k), "%s: param %q is not in the endpoint's scope.params: a caller's scope only narrows", owner, p)
		}
	}
	return c
}

// compileScope compiles one scope block (an endpoint's or a caller's);
// at gives the line of a field inside it. Defaults are the caller's job.
func (l *loader) compileScope(file string, at func(path ...any) int, owner string, sc scopeSpec) Scope {
	out := Scope{Apps: sc.Apps, Triggers: sc.Triggers, Params: sc.Params, Environments: sc.Environments,
		EventsPerMinute: sc.EventsPerMinute, MaxBodyBytes: sc.MaxBodyBytes}
	// A scope is an allow list: one of only negations would allow every
	// other value, so the catch-all must be written out.
	for _, g := range []struct {
		field, all string
		patterns   []string
		dst        *globList
	}{{"eventTypes", "*", sc.EventTypes, &out.EventTypes}, {"branches", "**", sc.Branches, &out.Branches}, {"refs", "**", sc.Refs, &out.Refs}} {
		var err error
		if *g.dst, err = compileGlobs(g.patterns); err != nil {
			l.addf(file, at(g.field), "%s: %s: %v", owner, g.field, err)
		} else if g.dst.onlyExcludes() {
			l.addf(file, at(g.field), "%s: %s %s has only negations, which allow every other value: list the allowed values, or write [\"%s\", %s] to allow all others",
				owner, g.field, g.dst.text, g.all, g.dst.text)
		}
	}
	for j, typ := range sc.EventTypes {
		if strings.HasPrefix(typ, reservedTypePrefix) {
			l.addf(file, at("eventTypes", j), "%s: event type %q is reserved: %s* types are the router's own, normalized from verified webhooks, and no agent may send one", owner, typ, reservedTypePrefix)
		}
	}
	for j, p := range sc.Params {
		if !paramNameRE.MatchString(p) {
			l.addf(file, at("params", j), "%s: param name %q is not a valid Tekton parameter name", owner, p)
		}
	}
	for j, tr := range sc.Triggers {
		app, _, ok := strings.Cut(tr, "/")
		if !ok {
			l.addf(file, at("triggers", j), "%s: trigger %q must be written app/trigger", owner, tr)
		} else if len(sc.Apps) > 0 && !slices.Contains(sc.Apps, app) {
			l.addf(file, at("triggers", j), "%s: trigger %q is outside scope.apps", owner, tr)
		}
	}
	if sc.EventsPerMinute < 0 {
		l.addf(file, at("eventsPerMinute"), "%s: eventsPerMinute must not be negative", owner)
	}
	if sc.MaxBodyBytes < 0 {
		l.addf(file, at("maxBodyBytes"), "%s: maxBodyBytes must not be negative", owner)
	}
	return out
}

// checkEndpointApps reports scope apps and triggers that do not exist, and
// apps in scope that do not grant the endpoint's identity (the scope could
// never reach them: almost certainly a mistake). A caller's apps and
// triggers must lie inside the endpoint's: a caller's scope only narrows.
func (l *loader) checkEndpointApps(file string, node *yaml.Node, i int, e *Endpoint, apps map[string]*app) {
	// hasTrigger reports whether "app/trigger" names a trigger; one
	// without a "/" is reported by compileScope.
	hasTrigger := func(tr string) bool {
		appName, triggerName, found := strings.Cut(tr, "/")
		a := apps[appName]
		return !found || a != nil && slices.ContainsFunc(a.triggers, func(t *trigger) bool { return t.name == triggerName })
	}
	// check checks one scope, written at path under the endpoint; within
	// is the endpoint's scope when sc is a caller's.
	check := func(owner string, path []any, sc, within *Scope) {
		at := func(field string, j int) int {
			return lineOf(node, append(append([]any{"endpoints", i}, path...), field, j)...)
		}
		for j, name := range sc.Apps {
			a := apps[name]
			switch {
			case within != nil:
				if len(within.Apps) > 0 && !slices.Contains(within.Apps, name) || a == nil {
					l.addf(file, at("apps", j), "%s: app %q is not in the endpoint's scope", owner, name)
				}
			case a == nil:
				l.addf(file, at("apps", j), "%s: %s", owner, UnknownName("app", name, slices.Collect(maps.Keys(apps))))
			case !a.grantsIdentity(e.Identity()):
				l.addf(file, at("apps", j), "%s: app %q does not grant identity %q: add it to the app's identities", owner, name, e.Identity())
			}
		}
		for j, tr := range sc.Triggers {
			appName, triggerName, _ := strings.Cut(tr, "/")
			if !hasTrigger(tr) {
				l.addf(file, at("triggers", j), "%s: %s", owner, UnknownName("trigger", tr, allTriggers(apps)))
			} else if within != nil && !within.AllowsTarget(appName, triggerName) {
				l.addf(file, at("triggers", j), "%s: trigger %q is not in the endpoint's scope", owner, tr)
			}
		}
	}
	check(fmt.Sprintf("endpoint %q", e.Name), []any{"scope"}, &e.Scope, nil)
	for _, c := range e.Callers {
		check(fmt.Sprintf("endpoint %q callers[%d]", e.Name, c.Index), []any{"callers", c.Index, "scope"}, &c.Scope, &e.Scope)
	}
}

// allTriggers lists every trigger as app/trigger, for unknown-name hints.
func allTriggers(apps map[string]*app) []string {
	var out []string
	for name, a := range apps {
		for _, t := range a.triggers {
			out = append(out, name+"/"+t.name)
		}
	}
	return out
}

// parseTokenHashes reads "sha256:<64 hex> [name]" lines; blank lines and
// lines starting with # are skipped. Plain tokens are refused: the file
// must never hold a usable credential.
func parseTokenHashes(data []byte) ([]TokenHash, error) {
	var out []TokenHash
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hashPart, name, _ := strings.Cut(line, " ")
		hexSum, ok := strings.CutPrefix(hashPart, "sha256:")
		sum, err := hex.DecodeString(hexSum)
		if !ok || err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("line %d: want sha256:<64 hex digits> [name] (store the token's SHA-256, never the token)", n)
		}
		var th TokenHash
		copy(th.Sum[:], sum)
		th.Name, th.Line = strings.TrimSpace(name), n
		out = append(out, th)
	}
	if len(out) == 0 {
		return nil, errors.New("no token hashes")
	}
	return out, nil
}

// ClaimsCondition is a compiled CEL condition on a token's claims.
type ClaimsCondition struct {
	Expr string
	prg  cel.Program
}

var claimsEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		celext.Strings(),
		celext.Lists(),
		celext.Sets(),
		cel.VariableDecls(decls.NewVariable("claims", types.NewMapType(types.StringType, types.DynType))),
	)
})

func compileClaimsCondition(expr string) (*ClaimsCondition, error) {
	env, err := claimsEnv()
	if err != nil {
		return nil, err
	}
	ast, err := compileBool(env, expr)
	if err != nil {
		return nil, err
	}
	prg, err := env.Program(ast, cel.CostLimit(celCostLimit))
	if err != nil {
		return nil, err
	}
	return &ClaimsCondition{Expr: expr, prg: prg}, nil
}

// Eval reports whether the claims satisfy the condition; an evaluation
// error (a missing claim) is a refusal with its reason.
func (c *ClaimsCondition) Eval(claims map[string]any) (bool, error) {
	out, _, err := c.prg.Eval(map[string]any{"claims": claims})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("result is %v, not a bool", out.Value())
	}
	return b, nil
}
