package policy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// reservedTypePrefix is the router's own vocabulary: only providers'
// normalizers produce these types, never an endpoint's caller.
const reservedTypePrefix = "dev.switchyard."

// Request is one event to judge: who sent it through which source or
// endpoint, and what routing would run for it.
type Request struct {
	Source  string
	Caller  Caller
	Event   *event.Event
	Targets []routing.Target
}

// Judge allows (nil) or denies (a *Denial) one event and the targets these
// rules rendered for it: an endpoint's events must lie inside the caller's
// scopes, judged on the attributes routing read and the params the run will
// get. The grant is not checked again here: the same rules rendered the
// targets, and rendering keeps them inside it (JudgeStored checks it for
// targets made under other rules).
func Judge(rules *routing.Rules, req Request) error {
	if req.Caller.Endpoint == nil {
		return nil
	}
	scopes, err := req.Caller.scopes()
	if err != nil {
		return err
	}
	ev := req.Event
	if strings.HasPrefix(ev.Type(), reservedTypePrefix) {
		return &Denial{Rule: "scope.eventTypes", Message: fmt.Sprintf("event type %q is reserved for the router's own normalized events", ev.Type())}
	}
	params, err := readParams(ev.Data())
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		if err := sc.checkEvent(ev, params); err != nil {
			return err
		}
		for _, t := range req.Targets {
			if err := sc.checkTarget(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// refuse is a refusal by one field of the scope.
func (sr scopeRule) refuse(field, format string, args ...any) error {
	return &Denial{Rule: sr.rule + "." + field, Message: fmt.Sprintf(format, args...)}
}

// eventParams are the params an event's data sets, {"params": {...}}, read
// with exact keys as Tekton's $(body.params.x) reads them.
type eventParams struct {
	values map[string]json.RawMessage
	names  []string // sorted, so a refusal always names the same one
}

// readParams reads data.params with exact keys. A key that differs from
// "params" (or from another param) only in case is refused: a decoder that
// folds case would see another value than the renderer.
func readParams(data []byte) (eventParams, error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return eventParams{}, nil // no data, or not a JSON object: it sets no params
	}
	for k := range top {
		if k != "params" && strings.EqualFold(k, "params") {
			return eventParams{}, &Denial{Rule: "scope.params", Message: fmt.Sprintf("data has a key %q: params must be spelled exactly \"params\"", k)}
		}
	}
	var ps map[string]json.RawMessage
	if raw, ok := top["params"]; !ok || json.Unmarshal(raw, &ps) != nil {
		return eventParams{}, nil
	}
	names := slices.Sorted(maps.Keys(ps))
	for i := 1; i < len(names); i++ {
		if strings.EqualFold(names[i-1], names[i]) {
			return eventParams{}, &Denial{Rule: "scope.params", Message: fmt.Sprintf("params %q and %q differ only in case", names[i-1], names[i])}
		}
	}
	return eventParams{values: ps, names: names}, nil
}

// checkEvent holds the event's attributes and the params it sets to the
// scope. A scope that lists branches or refs requires the event to name
// one: an event without them is not "any branch".
func (sr scopeRule) checkEvent(ev *event.Event, ep eventParams) error {
	s := sr.scope
	if !s.AllowsType(ev.Type()) {
		return sr.refuse("eventTypes", "event type %q is not allowed", ev.Type())
	}
	ext := ev.Extensions()
	str := func(name string) string { v, _ := ext[name].(string); return v }
	branch, ref, tag := str("branch"), str("ref"), str("tag")
	if s.RestrictsBranches() {
		if branch == "" {
			return sr.refuse("branches", "the event names no branch, and this caller may only target listed branches")
		}
		if !s.AllowsBranch(branch) {
			return sr.refuse("branches", "branch %q is not allowed", branch)
		}
	}
	if s.RestrictsRefs() {
		refs := eventRefs(ref, branch, tag)
		if len(refs) == 0 {
			return sr.refuse("refs", "the event names no ref, branch or tag, and this caller may only target listed refs")
		}
		for _, r := range refs {
			if !s.AllowsRef(r) {
				return sr.refuse("refs", "ref %q is not allowed", r)
			}
		}
	}
	if env := str("environment"); !s.AllowsEnvironment(env) {
		return sr.refuse("environments", "environment %q is not allowed", env)
	}
	for _, name := range ep.names {
		if !s.AllowsParam(name) {
			return sr.refuse("params", "param %q may not be set by this caller (allowed: %s)", name, strings.Join(s.Params, ", "))
		}
	}
	if raw, ok := ep.values["environment"]; ok {
		var env string
		if json.Unmarshal(raw, &env) != nil || !s.AllowsEnvironment(env) {
			return sr.refuse("environments", "environment %s is not allowed", raw)
		}
	}
	return nil
}

// eventRefs are the full refs an event names: its ref, and its branch and
// tag as refs/heads/ and refs/tags/ refs, so a tag is scoped by refs too.
func eventRefs(ref, branch, tag string) []string {
	var out []string
	if ref != "" {
		out = append(out, ref)
	}
	if branch != "" {
		out = append(out, "refs/heads/"+branch)
	}
	if tag != "" {
		out = append(out, "refs/tags/"+tag)
	}
	return out
}

// checkTarget holds one rendered target to the scope: the app and trigger,
// and the environment the run will get, whatever binding produced it.
func (sr scopeRule) checkTarget(t routing.Target) error {
	s := sr.scope
	if !s.AllowsTarget(t.App, t.Trigger) {
		field := "apps"
		if len(s.Apps) == 0 || slices.Contains(s.Apps, t.App) {
			field = "triggers"
		}
		return sr.refuse(field, "it would trigger %s/%s, which this caller may not", t.App, t.Trigger)
	}
	for _, v := range renderedParam(t, "environment") {
		if !s.AllowsEnvironment(v) {
			return sr.refuse("environments", "it would run %s/%s with environment %q", t.App, t.Trigger, v)
		}
	}
	return nil
}

// renderedParam returns the values the run's param name will have: from
// the target's params, or from the PipelineRun or TaskRun a template
// rendered (both keep them in spec.params). A value that is not a string
// (an array or object param) is returned as its JSON text, which no
// environments list allows.
func renderedParam(t routing.Target, name string) []string {
	var out []string
	for _, p := range t.Params {
		if p.Name == name {
			out = append(out, p.Value)
		}
	}
	if len(t.Resource) == 0 {
		return out
	}
	var pr struct {
		Spec struct {
			Params []struct {
				Name  string          `json:"name"`
				Value json.RawMessage `json:"value"`
			} `json:"params"`
		} `json:"spec"`
	}
	if json.Unmarshal(t.Resource, &pr) != nil {
		return append(out, string(t.Resource)) // unreadable: never allowed
	}
	for _, p := range pr.Spec.Params {
		if p.Name != name {
			continue
		}
		var s string
		if json.Unmarshal(p.Value, &s) != nil {
			s = string(p.Value)
		}
		out = append(out, s)
	}
	return out
}

// JudgeStored judges a stored event and its targets again under the rules
// in force (dispatch before it creates, replay before it queues): the caller
// is rebuilt from the event's identity and principal, every target must
// still lie inside its app's grant, and then Judge. Work carries no
// payload, so params are judged as rendered.
func JudgeStored(rules *routing.Rules, source string, ev *event.Event, targets []routing.Target) error {
	ext := ev.Extensions()
	identity, _ := ext["identity"].(string)
	principal, _ := ext["principal"].(string)
	c, err := CallerOf(rules, identity, principal)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if err := rules.Admits(source, c.Identity, t); err != nil {
			return &Denial{Rule: "grant", Message: err.Error()}
		}
	}
	return Judge(rules, Request{Source: source, Caller: c, Event: ev, Targets: targets})
}

// Recheck is JudgeStored for one queued unit of work.
func Recheck(rules *routing.Rules, source string, ev *event.Event, t routing.Target) error {
	return JudgeStored(rules, source, ev, []routing.Target{t})
}
