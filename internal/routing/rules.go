package routing

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
)

// Rules is a compiled, immutable parent manifest. It is safe for concurrent
// use; a reload builds a new Rules and swaps it in whole.
type Rules struct {
	sources   map[string]*Source
	endpoints map[string]*Endpoint
	auditors  []string
	// tokenHeaders are the headers sources read a token from (`header:`),
	// canonical: credentials like those IsCredentialHeader knows.
	tokenHeaders []string
	apps         []*app
	// triggers is every trigger in fan-out order (apps by name, triggers
	// in file order); a trigger's ordinal is its index here.
	triggers []*trigger
	// byRepo indexes the triggers whose repositories are all literal, by
	// repository; anyRepo lists the others. byType and anyType do the same
	// by event type. Route visits only the shorter of byRepo[repository]
	// with anyRepo and byType[type] with anyType, merged by ordinal.
	byRepo, byType   map[string][]int32
	anyRepo, anyType []int32
	usesPaths        bool
	warnings         Problems
	revision         string
	statusURL        string // see StatusURL
}

// Source is one webhook source declared in the root manifest.
type Source struct {
	Name string
	Kind string
	// Secret is the first resolved secret, the one `router send` signs
	// with; nil unless the manifest was loaded with Options.ResolveSecrets.
	Secret []byte
	// Secrets are all the resolved secrets, Secret first: during a
	// rotation the file (or variable) lists the new secret and the old one,
	// one a line, and verification accepts any of them.
	Secrets [][]byte
	// secretLines are the lines of Secrets in their file or variable.
	secretLines []int
	// SecretRef says where the secret comes from (never the secret).
	SecretRef secretRef
	// APIToken is the resolved provider API token (nil without one, or
	// without Options.ResolveSecrets). Ingest uses it to fetch what a
	// payload leaves out, such as the changed files of a truncated push.
	APIToken []byte
	// APITokenRef says where the API token comes from.
	APITokenRef secretRef
	// APIURL is the provider API's base URL; empty means the public API.
	APIURL string
	// Header is the request header carrying a static token; empty means
	// the provider's default.
	Header string
	// AllowSHA1 accepts GitHub's SHA-1 signature header.
	AllowSHA1 bool
	// OIDC, when set, authenticates deliveries by an OIDC token instead of
	// the secret.
	OIDC *OIDC
	// MaxBodyBytes caps a request to this source; 0 means the server's
	// default. Never above MaxSourceBodyBytes.
	MaxBodyBytes int64
	// Recover, when set, is the source's recover block.
	Recover *Recover
	// Report is how run results go back to the Git host: ReportStatus,
	// ReportChecks, or "" for not at all.
	Report string
	// GitHubApp posts check runs (ReportChecks); nil otherwise.
	GitHubApp *GitHubApp
	// Commands grants pull request comment commands; nil: none.
	Commands *Commands
}

// MaxSourceBodyBytes is the most a source's maxBodyBytes may allow: 25 MiB,
// GitHub's own cap on a webhook payload.
const MaxSourceBodyBytes = 25 << 20

// OIDC says which OIDC bearer tokens a source accepts.
type OIDC struct {
	Issuer, Audience, JWKSURL, Email string
	// Algorithms accepted; empty means RS256.
	Algorithms []string
}

// SecretLine is the line, in the source's secret file or variable, of the
// i-th accepted secret (1-based, as ingest reports the one that verified a
// request): what the audit trail names instead of the secret. 0 stays 0.
func (s *Source) SecretLine(i int) int {
	if i > 0 && i <= len(s.secretLines) {
		return s.secretLines[i-1]
	}
	return i
}

// AcceptedSecrets are the secrets a sender may sign (or authenticate) with:
// Secrets, or Secret alone for a Source built without the list.
func (s *Source) AcceptedSecrets() [][]byte {
	if len(s.Secrets) > 0 {
		return s.Secrets
	}
	if len(s.Secret) > 0 {
		return [][]byte{s.Secret}
	}
	return nil
}

// SecretEnv and SecretFile name where the secret is read from.
func (s *Source) SecretEnv() string  { return s.SecretRef.Env }
func (s *Source) SecretFile() string { return s.SecretRef.File }

type app struct {
	name            string
	files           []string
	namespaces      []string
	serviceAccounts []string
	sources         []string
	identities      []string
	eventTypes      globList
	triggers        []*trigger
	// openExtensions is set when some caller of the app sends its own
	// CloudEvent extensions (a cloudevents source, an endpoint): a binding
	// reading an extension Switchyard does not set is then only warned of.
	openExtensions bool
	approval       *Approval
}

// admits reports whether the grant lets an event from source, authenticated
// as identity, trigger the app.
func (a *app) admits(source, identity string) bool {
	return slices.Contains(a.sources, source) || (identity != "" && slices.Contains(a.identities, identity))
}

// grantsSource and grantsIdentity decide whether a trigger's own sources
// and identities stay within the grant. Source s and identity "source:s"
// are the same caller.
func (a *app) grantsSource(s string) bool {
	return slices.Contains(a.sources, s) || slices.Contains(a.identities, identitySourcePrefix+s)
}

func (a *app) grantsIdentity(id string) bool {
	if slices.Contains(a.identities, id) {
		return true
	}
	s, ok := strings.CutPrefix(id, identitySourcePrefix)
	return ok && slices.Contains(a.sources, s)
}

// admits reports whether the trigger's own sources and identities, when
// it lists any, let an event from source, authenticated as identity, fire
// it.
func (t *trigger) admits(source, identity string) bool {
	if len(t.sources) == 0 && len(t.identities) == 0 {
		return true
	}
	return slices.Contains(t.sources, source) || (identity != "" && slices.Contains(t.identities, identity))
}

func (a *app) grantSummary() string {
	list := func(v []string) string {
		if len(v) == 0 {
			return "none"
		}
		return strings.Join(v, ", ")
	}
	return "sources: " + list(a.sources) + "; identities: " + list(a.identities)
}

type trigger struct {
	app     *app
	name    string
	file    string
	line    int
	ordinal int32

	types        globList
	sources      []string
	identities   []string
	repositories globList
	branches     globList
	tags         globList
	paths        globList
	actorsAllow  []string
	actorsDeny   []string
	when         *condition

	namespace      string
	serviceAccount string
	pipelineRef    string
	// A pipelineRef run.
	params      []paramSpec
	paramsBound bool // some param value holds a $(...) expression
	// concurrency, when set, holds the unresolved group template.
	concurrency   *Concurrency
	bindingParams []triggersv1.Param
	bindsBody     bool // some binding reads $(body...): the resolver parses the payload
	// bodyPaths and groupPaths are what the bindings and the concurrency
	// group read of the body; nil when that is not known.
	bodyPaths, groupPaths *bodyPaths
	timeout               string
	tasksTimeout          string
	finallyTimeout        string
	workspaces            []pipelinev1.WorkspaceBinding
	// overlays are the trigger's CEL overlays, in order.
	overlays []overlay
	// readsChangedFiles is set when a binding reads
	// $(extensions.changed_files).
	readsChangedFiles bool
	// A template run (bindingParams are its bindings).
	template *triggersv1.TriggerTemplate
	// templateUID says some resource template reads $(uid).
	templateUID bool
}

// Source returns the named source, or nil.
func (r *Rules) Source(name string) *Source { return r.sources[name] }

// Sources returns the sources sorted by name.
func (r *Rules) Sources() []*Source {
	out := make([]*Source, 0, len(r.sources))
	for _, s := range r.sources {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Source) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// UsesPaths reports whether any trigger has a paths condition, so ingest
// fetches changed files (an API call for a truncated push) only when some
// rule will read them.
func (r *Rules) UsesPaths() bool { return r.usesPaths }

// LimitedNamespaces lists, sorted, the namespaces where some trigger with a
// concurrency limit creates PipelineRuns: where pending runs may wait to
// be started.
func (r *Rules) LimitedNamespaces() []string {
	var out []string
	for _, a := range r.apps {
		for _, t := range a.triggers {
			if t.concurrency != nil && t.concurrency.Limit > 0 && !slices.Contains(out, t.namespace) {
				out = append(out, t.namespace)
			}
		}
	}
	slices.Sort(out)
	return out
}

// index numbers the triggers in fan-out order and builds the repository
// and type indexes Route uses.
func (r *Rules) index() {
	r.byRepo, r.byType = map[string][]int32{}, map[string][]int32{}
	for _, a := range r.apps {
		for _, t := range a.triggers {
			t.ordinal = int32(len(r.triggers))
			r.triggers = append(r.triggers, t)
			if !t.paths.empty() {
				r.usesPaths = true
			}
			t.bodyPaths = bodyPathsOf(bindingValues(t.bindingParams)...)
			if t.concurrency != nil {
				t.groupPaths = bodyPathsOf(t.concurrency.Group)
			}
			indexBy(r.byRepo, &r.anyRepo, t.repositories, t.ordinal)
			indexBy(r.byType, &r.anyType, t.types, t.ordinal)
		}
	}
}

// indexBy lists the trigger under each of its literal values, or in
// rest when some value is a pattern or there is none.
func indexBy(by map[string][]int32, rest *[]int32, g globList, ordinal int32) {
	lits := g.literals()
	if lits == nil {
		*rest = append(*rest, ordinal)
		return
	}
	for _, v := range lits {
		// A value listed twice must not fire the trigger twice.
		if l := by[v]; len(l) == 0 || l[len(l)-1] != ordinal {
			by[v] = append(l, ordinal)
		}
	}
}

// Input is what routing decides on: an accepted, normalized event and the
// request it came in.
type Input struct {
	// Source is the router source name that accepted the event.
	Source string
	Event  *event.Event
	// Header is the original request's headers, for $(header.x) bindings
	// and CEL conditions.
	Header http.Header
	// Changes are the files the event changed, for paths conditions. Nil
	// when the event carries no such list: paths conditions then match,
	// with a note saying they were not checked.
	Changes *Changes
	// DataIsJSON says the event's data is known to be one valid JSON value
	// (ingest validates every JSON payload before it becomes an event's
	// data: ingest.RouteInput sets it). Bindings and conditions then read
	// the fields they use without scanning the whole body again; unset,
	// routing validates the body first, as a full decode would.
	DataIsJSON bool
}

// Changes are the files a push changed, as ingest found them.
type Changes struct {
	// Files are the changed paths (added, modified, removed, and both
	// names of a rename), relative to the repository root.
	Files []string `json:"files"`
	// Complete reports whether Files lists every changed file. When it
	// does not, paths conditions match (a build is never skipped for want
	// of information) and the target carries a note with Reason.
	Complete bool `json:"complete"`
	// Reason says where Files came from, or why they are incomplete.
	Reason string `json:"reason,omitempty"`
	// Deferred, when set, says Files are incomplete and the provider's API
	// is to be asked after the event is stored: paths conditions fire their
	// target with a PathsCheck for dispatch to finish.
	Deferred *ChangesQuery `json:"deferred,omitempty"`
}

// Miss is a trigger that did not fire, and why.
type Miss struct {
	App     string `json:"app"`
	Trigger string `json:"trigger"`
	Reason  string `json:"reason"`
}

// Decision is the full answer for one event: every target, and for
// explain, every trigger that did not match with its reason.
type Decision struct {
	Targets   []Target `json:"targets"`
	Unmatched []Miss   `json:"unmatched"`
}

// Route returns the targets an event fires, in deterministic order (apps by
// name, triggers in file order). Each trigger fires at most once.
func (r *Rules) Route(in Input) []Target {
	return r.evaluate(in, false).Targets
}

// Explain is Route plus the reason every other trigger did not fire.
func (r *Rules) Explain(in Input) Decision {
	return r.evaluate(in, true)
}

// routeState is one event's routing keys, read once, and what conditions
// computed lazily (the parsed body, the event variable).
type routeState struct {
	in      *Input
	explain bool
	ext     map[string]any
	typ     string
	repo    string
	branch  string
	tag     string
	actor   string
	ident   string
	rules   *Rules
	// header is the request's headers without credentials, made on first
	// use (headers()).
	header http.Header

	body       map[string]any
	bodyErr    error
	bodyParsed bool
	// fields are the body's top-level fields when it is a valid JSON
	// object (objectOK), for the parts bindings and conditions read
	// (bodyPart).
	fields                  []rawField
	objectChecked, objectOK bool
	eventMap                map[string]any

	// changed and extChanged are changed_files and the extensions with it,
	// made on first use.
	changed    *string
	extChanged map[string]any

	// The app of the last trigger visited, and why it refuses the event.
	app       *app
	appReason string
}

func extString(ext map[string]any, name string) string {
	v, ok := ext[name]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// noHeader stands for a missing header; conditions and bindings only read
// it.
var noHeader = http.Header{}

// headers returns the request's headers as rules see them: without the
// credential headers, whatever a condition or binding asks for.
func (st *routeState) headers() http.Header {
	if st.header == nil {
		st.header = st.rules.StripCredentials(st.in.Header)
		if st.header == nil {
			st.header = noHeader
		}
	}
	return st.header
}

// noReason is what a mismatch returns when not explaining: building the
// reason would cost an allocation Route does not need.
const noReason = "-"

// why returns the reason reason() builds when explaining, noReason
// otherwise. The closure does not escape, so Route allocates nothing for
// the triggers that do not match.
func (st *routeState) why(reason func() string) string {
	if !st.explain {
		return noReason
	}
	return reason()
}

// parseBody parses the payload for CEL, once per event, as Tekton Triggers
// does (an empty body is {}).
func (st *routeState) parseBody() error {
	if !st.bodyParsed {
		st.bodyParsed = true
		data := st.in.Event.Data()
		if len(data) == 0 {
			data = []byte("{}")
		}
		if err := json.Unmarshal(data, &st.body); err != nil {
			st.bodyErr = fmt.Errorf("body is not a JSON object: %v", err)
		}
	}
	return st.bodyErr
}

// conditionBody is CEL's body variable for a condition that reads paths:
// only their part when it is known, the whole payload otherwise.
func (st *routeState) conditionBody(paths *bodyPaths) (map[string]any, error) {
	if paths != nil {
		if part, ok := st.bodyPart(paths); ok {
			return part, nil
		}
	}
	if err := st.parseBody(); err != nil {
		return nil, err
	}
	return st.body, nil
}

// eventVar is CEL's event variable: the CloudEvent's attributes.
func (st *routeState) eventVar() map[string]any {
	if st.eventMap == nil {
		ev := st.in.Event
		st.eventMap = map[string]any{
			"id":      ev.ID(),
			"type":    ev.Type(),
			"source":  ev.Source(),
			"subject": ev.Subject(),
		}
		if t := ev.Time(); !t.IsZero() {
			st.eventMap["time"] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	return st.eventMap
}

func (r *Rules) evaluate(in Input, explain bool) Decision {
	ev := in.Event
	// Extensions() copies the map: read it once.
	ext := ev.Extensions()
	st := &routeState{
		in:      &in,
		explain: explain,
		ext:     ext,
		typ:     ev.Type(),
		repo:    extString(ext, "repository"),
		branch:  extString(ext, "branch"),
		tag:     extString(ext, "tag"),
		actor:   extString(ext, "actor"),
		ident:   extString(ext, "identity"),
		rules:   r,
	}
	var d Decision
	if explain {
		for _, t := range r.triggers {
			st.visit(t, &d)
		}
		return d
	}
	// Only the triggers that can match this repository, or this type when
	// fewer can, in fan-out order.
	lit, wild := r.byRepo[st.repo], r.anyRepo
	if lt, wt := r.byType[st.typ], r.anyType; len(lt)+len(wt) < len(lit)+len(wild) {
		lit, wild = lt, wt
	}
	for i, j := 0, 0; i < len(lit) || j < len(wild); {
		var k int32
		if j == len(wild) || (i < len(lit) && lit[i] < wild[j]) {
			k, i = lit[i], i+1
		} else {
			k, j = wild[j], j+1
		}
		st.visit(r.triggers[k], &d)
	}
	return d
}

// visit decides one trigger and records a target or, when explaining, a
// miss.
func (st *routeState) visit(t *trigger, d *Decision) {
	a := t.app
	if st.app != a {
		st.app, st.appReason = a, st.refusal(a)
	}
	reason, note := st.appReason, ""
	if reason == "" {
		reason, note = st.mismatch(t)
	}
	if reason == "" {
		targets, err := t.targets(st)
		if err == nil {
			for _, target := range targets {
				if note != "" {
					target.Notes = append(target.Notes, note)
				}
				target.PathsCheck = st.pathsCheck(t)
				d.Targets = append(d.Targets, target)
			}
			return
		}
		reason = err.Error()
	}
	if st.explain {
		d.Unmatched = append(d.Unmatched, Miss{App: a.name, Trigger: t.name, Reason: reason})
	}
}

// refusal says why the app's grant refuses the event, "" when it admits it.
func (st *routeState) refusal(a *app) string {
	if !a.admits(st.in.Source, st.ident) {
		if st.ident == "" {
			return st.why(func() string {
				return fmt.Sprintf("source %q is not granted to app %q (%s)", st.in.Source, a.name, a.grantSummary())
			})
		}
		return st.why(func() string {
			return fmt.Sprintf("source %q is not granted to app %q, nor identity %q (%s)", st.in.Source, a.name, st.ident, a.grantSummary())
		})
	}
	if !a.eventTypes.empty() && !a.eventTypes.match(st.typ) {
		return st.why(func() string { return fmt.Sprintf("event type %q is not granted to app %q", st.typ, a.name) })
	}
	return ""
}

// mismatch returns why the trigger does not match ("" when it does), and a
// note when it matched on an assumption. Conditions are checked cheapest
// first; the reason names the first that failed.
func (st *routeState) mismatch(t *trigger) (reason, note string) {
	if !t.types.empty() && !t.types.match(st.typ) {
		return st.why(func() string { return fmt.Sprintf("type %q does not match %s", st.typ, t.types.text) }), ""
	}
	if !t.admits(st.in.Source, st.ident) {
		return st.why(func() string {
			return fmt.Sprintf("source %q / identity %q is not among the trigger's sources (%s) or identities (%s)",
				st.in.Source, st.ident, strings.Join(t.sources, ", "), strings.Join(t.identities, ", "))
		}), ""
	}
	if !t.repositories.empty() {
		if st.repo == "" {
			return st.why(func() string { return "event has no repository" }), ""
		}
		if !t.repositories.match(st.repo) {
			return st.why(func() string { return fmt.Sprintf("repository %q does not match %s", st.repo, t.repositories.text) }), ""
		}
	}
	// Branches and tags together filter the ref: a branch event must match
	// branches, a tag event must match tags.
	if !t.branches.empty() || !t.tags.empty() {
		switch {
		case st.branch != "":
			if t.branches.empty() {
				return st.why(func() string { return fmt.Sprintf("branch %q: trigger matches tags only", st.branch) }), ""
			}
			if !t.branches.match(st.branch) {
				return st.why(func() string { return fmt.Sprintf("branch %q does not match %s", st.branch, t.branches.text) }), ""
			}
		case st.tag != "":
			if t.tags.empty() {
				return st.why(func() string { return fmt.Sprintf("tag %q: trigger matches branches only", st.tag) }), ""
			}
			if !t.tags.match(st.tag) {
				return st.why(func() string { return fmt.Sprintf("tag %q does not match %s", st.tag, t.tags.text) }), ""
			}
		default:
			return st.why(func() string { return "event has no branch or tag" }), ""
		}
	}
	if len(t.actorsAllow) > 0 || len(t.actorsDeny) > 0 {
		if slices.Contains(t.actorsDeny, st.actor) {
			return st.why(func() string { return fmt.Sprintf("actor %q is denied (!%s)", st.actor, st.actor) }), ""
		}
		if len(t.actorsAllow) > 0 && !slices.Contains(t.actorsAllow, st.actor) {
			if st.actor == "" {
				return st.why(func() string { return "event has no actor" }), ""
			}
			return st.why(func() string {
				return fmt.Sprintf("actor %q is not among %s", st.actor, strings.Join(t.actorsAllow, ", "))
			}), ""
		}
	}
	if !t.paths.empty() {
		switch ch := st.in.Changes; {
		case ch == nil:
			note = "paths not checked: the event lists no changed files; treated as matched"
		case ch.Deferred != nil:
			note = "paths checked at dispatch: " + ch.Reason
		case !ch.Complete:
			note = "paths not checked: " + ch.Reason + "; treated as matched"
		default:
			if !t.paths.matchAny(ch.Files) {
				return st.why(func() string {
					return fmt.Sprintf("no changed file matches paths %s (%d files changed)", t.paths.text, len(ch.Files))
				}), ""
			}
		}
	}
	if c := t.when; c != nil {
		var body map[string]any
		if c.usesBody {
			var err error
			if body, err = st.conditionBody(c.bodyPaths); err != nil {
				return st.why(func() string { return fmt.Sprintf("when: %v", err) }), ""
			}
		}
		ok, err := c.eval(celVars{st, body, c.changedFiles})
		if err != nil {
			return st.why(func() string { return fmt.Sprintf("when %q: %v", c.expr, err) }), ""
		}
		if !ok {
			return st.why(func() string { return fmt.Sprintf("when %q is false", c.expr) }), ""
		}
	}
	return "", note
}

// ResolveSecret reads the source's secret from its environment variable or
// file; `router send` uses it to sign a sample for one source. With several
// secrets listed it is the first one.
func (s *Source) ResolveSecret() ([]byte, error) {
	secrets, err := s.SecretRef.resolveAll(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return secrets[0], nil
}

// ResolveAPIToken reads the source's API token from its environment
// variable or file; `router explain --fetch-changes` uses it.
func (s *Source) ResolveAPIToken() ([]byte, error) {
	if s.APITokenRef == (secretRef{}) {
		return nil, fmt.Errorf("source %s has no apiToken", s.Name)
	}
	return s.APITokenRef.resolve(os.LookupEnv)
}
