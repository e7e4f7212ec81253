package routing

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"github.com/tektoncd/triggers/pkg/template"
)

// Rules is a compiled, immutable parent manifest. It is safe for concurrent
// use; a reload builds a new Rules and swaps it in whole.
type Rules struct {
	sources map[string]*Source
	apps    []*app
}

// Source is one webhook source declared in the root manifest.
type Source struct {
	Name string
	Kind string
	// Secret is the resolved secret; nil unless the manifest was loaded
	// with Options.ResolveSecrets.
	Secret []byte
	// SecretRef says where the secret comes from (never the secret).
	SecretRef secretRef
}

// SecretEnv and SecretFile name where the secret is read from.
func (s *Source) SecretEnv() string  { return s.SecretRef.Env }
func (s *Source) SecretFile() string { return s.SecretRef.File }

type app struct {
	name            string
	file            string
	namespaces      []string
	serviceAccounts []string
	sources         []string
	eventTypes      globList
	triggers        []*trigger
}

type trigger struct {
	app, name      string
	file           string
	line           int
	types          globList
	repositories   globList
	branches       globList
	tags           globList
	params         []paramSpec
	namespace      string
	serviceAccount string
	pipelineRef    string
	timeout        string
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

// Input is what routing decides on: an accepted, normalized event and the
// request it came in.
type Input struct {
	// Source is the router source name that accepted the event.
	Source string
	Event  *event.Event
	// Header is the original request's headers, for $(header.x) bindings.
	Header http.Header
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

// facts are the event's routing keys, read once per event.
type facts struct {
	typ, repository, branch, tag string
}

func extString(ev *event.Event, name string) string {
	v, ok := ev.Extensions()[name]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func (r *Rules) evaluate(in Input, explain bool) Decision {
	var d Decision
	f := facts{
		typ:        in.Event.Type(),
		repository: extString(in.Event, "repository"),
		branch:     extString(in.Event, "branch"),
		tag:        extString(in.Event, "tag"),
	}
	miss := func(a *app, t *trigger, reason string) {
		if explain {
			d.Unmatched = append(d.Unmatched, Miss{App: a.name, Trigger: t.name, Reason: reason})
		}
	}
	for _, a := range r.apps {
		var appReason string
		switch {
		case !slices.Contains(a.sources, in.Source):
			appReason = fmt.Sprintf("source %q is not granted to app %q (granted: %s)", in.Source, a.name, strings.Join(a.sources, ", "))
		case !a.eventTypes.empty() && !a.eventTypes.match(f.typ):
			appReason = fmt.Sprintf("event type %q is not granted to app %q", f.typ, a.name)
		}
		for _, t := range a.triggers {
			if appReason != "" {
				miss(a, t, appReason)
				continue
			}
			if reason := t.mismatch(&f, explain); reason != "" {
				miss(a, t, reason)
				continue
			}
			target, err := t.target(in)
			if err != nil {
				miss(a, t, err.Error())
				continue
			}
			d.Targets = append(d.Targets, target)
		}
	}
	return d
}

// mismatch returns why the trigger does not match, or "" when it does. The
// reason is built only when explaining, so routing stays cheap.
func (t *trigger) mismatch(f *facts, explain bool) string {
	no := func(format string, args ...any) string {
		if !explain {
			return "-"
		}
		return fmt.Sprintf(format, args...)
	}
	if !t.types.empty() && !t.types.match(f.typ) {
		return no("type %q does not match %s", f.typ, strings.Join(t.types.patterns(), ", "))
	}
	if !t.repositories.empty() {
		if f.repository == "" {
			return no("event has no repository")
		}
		if !t.repositories.match(f.repository) {
			return no("repository %q does not match %s", f.repository, strings.Join(t.repositories.patterns(), ", "))
		}
	}
	// Branches and tags together filter the ref: a branch event must match
	// branches, a tag event must match tags.
	if !t.branches.empty() || !t.tags.empty() {
		switch {
		case f.branch != "":
			if t.branches.empty() {
				return no("branch %q: trigger matches tags only", f.branch)
			}
			if !t.branches.match(f.branch) {
				return no("branch %q does not match %s", f.branch, strings.Join(t.branches.patterns(), ", "))
			}
		case f.tag != "":
			if t.tags.empty() {
				return no("tag %q: trigger matches branches only", f.tag)
			}
			if !t.tags.match(f.tag) {
				return no("tag %q does not match %s", f.tag, strings.Join(t.tags.patterns(), ", "))
			}
		default:
			return no("event has no branch or tag")
		}
	}
	return ""
}

// target renders the trigger's run for one event. Parameter bindings are
// resolved by Tekton Triggers' own resolver, so $(body.x), $(header.x) and
// $(extensions.x) behave exactly as in a TriggerBinding.
func (t *trigger) target(in Input) (Target, error) {
	target := Target{
		App:            t.app,
		Trigger:        t.name,
		Namespace:      t.namespace,
		Name:           PipelineRunName(t.app, t.name, in.Source, in.Event.ID()),
		ServiceAccount: t.serviceAccount,
		PipelineRef:    t.pipelineRef,
		Timeout:        t.timeout,
	}
	if len(t.params) == 0 {
		return target, nil
	}
	bindings := make([]triggersv1.Param, len(t.params))
	for i, p := range t.params {
		bindings[i] = triggersv1.Param{Name: p.Name, Value: p.Value}
	}
	resolved, err := template.ResolveParams(template.ResolvedTrigger{BindingParams: bindings},
		in.Event.Data(), in.Header, in.Event.Extensions(), template.NewTriggerContext(in.Event.ID()))
	if err != nil {
		return Target{}, fmt.Errorf("render params: %w", err)
	}
	// The resolver returns params in map order; keep the manifest's order
	// so the rendered PipelineRun is deterministic.
	values := make(map[string]string, len(resolved))
	for _, p := range resolved {
		values[p.Name] = p.Value
	}
	target.Params = make([]Param, len(t.params))
	for i, p := range t.params {
		target.Params[i] = Param{Name: p.Name, Value: values[p.Name]}
	}
	return target, nil
}

// ResolveSecret reads the source's secret from its environment variable or
// file; `router send` uses it to sign a sample for one source.
func (s *Source) ResolveSecret() ([]byte, error) {
	return s.SecretRef.resolve(os.LookupEnv)
}
