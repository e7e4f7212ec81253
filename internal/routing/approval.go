package routing

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Approval gates, declared in the root only: on an endpoint (what its
// callers request waits for a person) and on an app grant (what any event,
// a webhook's too, starts waits). An app manifest can neither name
// approvers nor lift a gate.

// approvalSpec is `approval:` on an endpoint or an app grant.
type approvalSpec struct {
	// Environments gate targets whose rendered environment param (or the
	// event's environment extension) is one of these.
	Environments []string `yaml:"environments"`
	// Triggers gate these triggers: "app/trigger" on an endpoint, trigger
	// names on an app grant.
	Triggers []string `yaml:"triggers"`
	// Approvers are "endpoint:<name>" (any principal of the endpoint),
	// "endpoint:<name>/<principal>", or "source:<name>/<login>" (a Git
	// host user, approving with an /approve comment).
	Approvers []string `yaml:"approvers"`
	// Timeout is how long a request waits; default DefaultApprovalTimeout.
	Timeout string `yaml:"timeout"`
}

// Approval timeouts: the default, and the most a gate may set (the status
// and the accepted event are kept for seven days).
const (
	DefaultApprovalTimeout = 24 * time.Hour
	MaxApprovalTimeout     = 7 * 24 * time.Hour
)

// Approval is a compiled approval gate.
type Approval struct {
	// Rule names the gate in refusals and records: "endpoints[ops].approval"
	// or "apps[web].approval".
	Rule string
	// Environments and Triggers ("app/trigger") select the gated targets;
	// both empty gate every target.
	Environments []string
	Triggers     []string
	Approvers    []Approver
	Timeout      time.Duration
}

// Approver is one approvers entry: the principals of an endpoint, or one
// user of a webhook source (a comment's author).
type Approver struct {
	// Source is set for a source's user; Endpoint otherwise.
	Source   string
	Endpoint string
	// Principal is the one principal allowed; empty allows every principal
	// the endpoint authenticates.
	Principal string
}

// Selects reports whether the gate holds target app/trigger, run with the
// given environments (its rendered environment param values and the
// event's environment extension).
func (a *Approval) Selects(app, trigger string, envs []string) bool {
	if len(a.Environments) == 0 && len(a.Triggers) == 0 {
		return true
	}
	if slices.Contains(a.Triggers, app+"/"+trigger) {
		return true
	}
	return slices.ContainsFunc(envs, func(e string) bool { return slices.Contains(a.Environments, e) })
}

// IsApprover reports whether principal, authenticated by endpoint
// identity ("endpoint:<name>"), is one of the gate's approvers.
func (a *Approval) IsApprover(identity, principal string) bool {
	if principal == "" {
		return false
	}
	if src, ok := strings.CutPrefix(identity, identitySourcePrefix); ok {
		return slices.ContainsFunc(a.Approvers, func(ap Approver) bool {
			return ap.Source == src && strings.EqualFold(ap.Principal, principal) // logins are case-insensitive
		})
	}
	name, ok := strings.CutPrefix(identity, endpointIdentityPrefix)
	return ok && slices.ContainsFunc(a.Approvers, func(ap Approver) bool {
		return ap.Source == "" && ap.Endpoint == name && (ap.Principal == "" || ap.Principal == principal)
	})
}

// Gate returns the gate rule names (Approval.Rule), or nil: the one the
// approvals of a held event are judged by, under the rules in force.
func (r *Rules) Gate(rule string) *Approval {
	for _, e := range r.endpoints {
		if e.Approval != nil && e.Approval.Rule == rule {
			return e.Approval
		}
	}
	for _, a := range r.apps {
		if a.approval != nil && a.approval.Rule == rule {
			return a.approval
		}
	}
	return nil
}

// AppApproval returns the gate of app name's grant, or nil.
func (r *Rules) AppApproval(name string) *Approval {
	// Apps are sorted by name at load.
	if i, ok := slices.BinarySearchFunc(r.apps, name, func(a *app, n string) int { return strings.Compare(a.name, n) }); ok {
		return r.apps[i].approval
	}
	return nil
}

// compileApproval compiles an approval block owned by owner; app is the
// app name for a grant's gate (triggers are names there), "" for an
// endpoint's. Approvers are checked once endpoints exist (checkApprovers).
func (l *loader) compileApproval(file string, at func(path ...any) int, rule, owner, app string, s *approvalSpec) *Approval {
	if s == nil {
		return nil
	}
	a := &Approval{Rule: rule, Environments: s.Environments, Timeout: DefaultApprovalTimeout}
	for j, tr := range s.Triggers {
		if app != "" {
			if strings.Contains(tr, "/") {
				l.addf(file, at("triggers", j), "%s: approval trigger %q: write the trigger's name (the app is %q)", owner, tr, app)
			}
			tr = app + "/" + tr
		} else if !strings.Contains(tr, "/") {
			l.addf(file, at("triggers", j), "%s: approval trigger %q must be written app/trigger", owner, tr)
		}
		a.Triggers = append(a.Triggers, tr)
	}
	if len(s.Approvers) == 0 {
		l.addf(file, at(), "%s: approval needs approvers: the identities (endpoint:<name>, endpoint:<name>/<principal>, source:<name>/<login>) that may approve", owner)
	}
	for j, id := range s.Approvers {
		if rest, ok := strings.CutPrefix(id, identitySourcePrefix); ok {
			name, login, _ := strings.Cut(rest, "/")
			if name == "" || login == "" {
				l.addf(file, at("approvers", j), "%s: approver %q must be source:<name>/<login>: a source's approvers are named users", owner, id)
				continue
			}
			a.Approvers = append(a.Approvers, Approver{Source: name, Principal: login})
			continue
		}
		rest, ok := strings.CutPrefix(id, endpointIdentityPrefix)
		name, principal, _ := strings.Cut(rest, "/")
		if !ok || name == "" || (strings.Contains(rest, "/") && principal == "") {
			l.addf(file, at("approvers", j), "%s: approver %q must be endpoint:<name>, endpoint:<name>/<principal> or source:<name>/<login>", owner, id)
			continue
		}
		a.Approvers = append(a.Approvers, Approver{Endpoint: name, Principal: principal})
	}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		switch {
		case err != nil:
			l.addf(file, at("timeout"), "%s: approval timeout %q: %v", owner, s.Timeout, err)
		case d <= 0 || d > MaxApprovalTimeout:
			l.addf(file, at("timeout"), "%s: approval timeout %s must be positive and at most %s", owner, d, MaxApprovalTimeout)
		default:
			a.Timeout = d
		}
	}
	return a
}

// checkApprovers reports approvers naming no endpoint and gated triggers
// that do not exist, once apps and endpoints are compiled.
func (l *loader) checkApprovers(file string, node *yaml.Node, root rootFile, rules *Rules) {
	triggers := map[string]bool{}
	for _, a := range rules.apps {
		for _, t := range a.triggers {
			triggers[a.name+"/"+t.name] = true
		}
	}
	check := func(a *Approval, path ...any) {
		if a == nil {
			return
		}
		for j, ap := range a.Approvers {
			if ap.Source != "" {
				if rules.sources[ap.Source] == nil {
					l.addf(file, lineOf(node, append(path, "approvers", j)...), "%s: approver names no source %q", a.Rule, ap.Source)
				}
				continue
			}
			if rules.endpoints[ap.Endpoint] == nil {
				l.addf(file, lineOf(node, append(path, "approvers", j)...), "%s: approver names no endpoint %q", a.Rule, ap.Endpoint)
			}
		}
		for j, tr := range a.Triggers {
			if !triggers[tr] {
				l.addf(file, lineOf(node, append(path, "triggers", j)...), "%s: no trigger %q", a.Rule, tr)
			}
		}
	}
	for i, s := range root.Endpoints {
		if e := rules.endpoints[s.Name]; e != nil {
			check(e.Approval, "endpoints", i, "approval")
		}
	}
	for i, g := range root.Apps {
		for _, a := range rules.apps {
			if a.name == g.Name {
				check(a.approval, "apps", i, "approval")
			}
		}
	}
}

// approvalRule names a gate.
func approvalRule(kind, name string) string { return fmt.Sprintf("%s[%s].approval", kind, name) }
