package routing

import (
	"fmt"
	"slices"
	"strings"

	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"go.yaml.in/yaml/v3"
)

// Compiling an app's triggers: match conditions, pipelineRef runs, param
// expressions, concurrency, all held to the app's grant.

func (l *loader) compileTrigger(file string, node *yaml.Node, i int, ts triggerSpec, a *app, objs *tektonObjects) *trigger {
	at := func(path ...any) int { return lineOf(node, append([]any{"triggers", i}, path...)...) }
	before := len(l.problems)
	if !nameRE.MatchString(ts.Name) {
		l.addf(file, at("name"), "trigger name %q must be a DNS label (lowercase letters, digits, '-')", ts.Name)
	}
	t := &trigger{app: a, name: ts.Name, file: file, line: at()}
	l.compileMatch(file, at, ts, a, t)
	l.compileOverlays(file, at, ts, t)
	run := ts.Run
	if run.Template != nil || len(run.Bindings) > 0 {
		l.compileTemplateRun(file, at, ts, a, t, objs)
	} else {
		l.compilePipelineRun(file, at, ts, a, t)
	}
	if c := ts.Concurrency; c != nil {
		l.compileConcurrency(file, at, ts.Name, c, t)
		if t.template != nil && rendersTaskRun(t.template) {
			l.addf(file, at("concurrency"), "trigger %q: concurrency groups hold PipelineRuns, and template %q renders a TaskRun: drop concurrency or render PipelineRuns only", ts.Name, t.template.Name)
		} else if t.template != nil && c.CancelInProgress && len(t.template.Spec.ResourceTemplates) > 1 {
			l.addf(file, at("concurrency", "cancelInProgress"), "trigger %q: template %q renders %d PipelineRuns per event, and cancelInProgress would cancel each with the next: use a limit", ts.Name, t.template.Name, len(t.template.Spec.ResourceTemplates))
		}
	}
	if len(l.problems) == before {
		l.checkExtensions(file, at("run"), t, a.openExtensions, t.expressionValues())
	}
	if len(l.problems) > before {
		return nil
	}
	return t
}

// compileConcurrency checks a trigger's concurrency block. The group's
// expressions are checked like a param's.
func (l *loader) compileConcurrency(file string, at func(...any) int, trigger string, c *concurrencySpec, t *trigger) {
	if c.Limit < 0 {
		l.addf(file, at("concurrency", "limit"), "trigger %q: concurrency.limit %d must not be negative", trigger, c.Limit)
	}
	if !c.CancelInProgress && c.Limit == 0 {
		l.addf(file, at("concurrency"), "trigger %q: concurrency needs cancelInProgress: true or a limit above 0", trigger)
	}
	group := c.Group
	if group == "" {
		group = t.app.name + "/" + t.name
	}
	l.checkExpressions(file, at("concurrency", "group"), "concurrency.group", group)
	t.concurrency = &Concurrency{Group: group, CancelInProgress: c.CancelInProgress, Limit: c.Limit}
}

func (l *loader) compileMatch(file string, at func(...any) int, ts triggerSpec, a *app, t *trigger) {
	m := ts.Match
	var err error
	if t.types, err = compileGlobs(m.Types); err != nil {
		l.addf(file, at("match", "types"), "types: %v", err)
	}
	l.warnUnproducedTypes(file, func(j int) int { return at("match", "types", j) }, fmt.Sprintf("trigger %q", ts.Name), m.Types)
	if !a.eventTypes.empty() {
		if len(m.Types) == 0 {
			l.addf(file, at("match"), "trigger %q: app %q is granted only event types %s: list the types this trigger matches", ts.Name, a.name, strings.Join(a.eventTypes.patterns(), ", "))
		}
		for j, typ := range m.Types {
			if !a.eventTypes.match(typ) {
				l.addf(file, at("match", "types", j), "trigger %q: event type %q exceeds the grant of app %q (eventTypes: %s)", ts.Name, typ, a.name, strings.Join(a.eventTypes.patterns(), ", "))
			}
		}
	}
	for j, s := range m.Sources {
		if !a.grantsSource(s) {
			l.addf(file, at("match", "sources", j), "trigger %q: source %q exceeds the grant of app %q (%s)", ts.Name, s, a.name, a.grantSummary())
		}
	}
	for j, id := range m.Identities {
		if !a.grantsIdentity(id) {
			l.addf(file, at("match", "identities", j), "trigger %q: identity %q exceeds the grant of app %q (%s)", ts.Name, id, a.name, a.grantSummary())
		}
	}
	t.sources, t.identities = m.Sources, m.Identities
	if t.repositories, err = compileGlobs(m.Repositories); err != nil {
		l.addf(file, at("match", "repositories"), "repositories: %v", err)
	}
	if t.branches, err = compileGlobs(m.Branches); err != nil {
		l.addf(file, at("match", "branches"), "branches: %v", err)
	}
	if t.tags, err = compileGlobs(m.Tags); err != nil {
		l.addf(file, at("match", "tags"), "tags: %v", err)
	}
	if t.paths, err = compileGlobs(m.Paths); err != nil {
		l.addf(file, at("match", "paths"), "paths: %v", err)
	}
	for j, actor := range m.Actors {
		name, deny := strings.CutPrefix(actor, "!")
		if strings.TrimSpace(name) == "" {
			l.addf(file, at("match", "actors", j), "actors: empty name")
			continue
		}
		if deny {
			t.actorsDeny = append(t.actorsDeny, name)
		} else {
			t.actorsAllow = append(t.actorsAllow, name)
		}
	}
	if m.When != "" {
		c, err := l.compileCondition(m.When)
		if err != nil {
			l.addf(file, at("match", "when"), "trigger %q: when: %v", ts.Name, err)
		} else {
			for _, h := range c.headers {
				if l.isCredential(h) {
					l.addf(file, at("match", "when"), "trigger %q: when reads credential header %q: conditions never see the caller's credentials (the source already verified them)", ts.Name, h)
				}
			}
		}
		t.when = c
	}
}

func (l *loader) compilePipelineRun(file string, at func(...any) int, ts triggerSpec, a *app, t *trigger) {
	run := ts.Run
	before := len(l.problems)
	if run.PipelineRef == "" {
		l.addf(file, at("run"), "trigger %q: run.pipelineRef is required", ts.Name)
	}
	t.pipelineRef = run.PipelineRef
	t.namespace = l.grantedNamespace(file, at("run", "namespace"), ts.Name, a, run.Namespace)
	t.serviceAccount = l.grantedServiceAccount(file, at("run", "serviceAccount"), ts.Name, a, run.ServiceAccount)

	t.timeout = run.Timeout
	if run.Timeout != "" {
		l.checkDuration(file, at("run", "timeout"), ts.Name, "timeout", run.Timeout)
	}
	if to := run.Timeouts; to != nil {
		if run.Timeout != "" {
			l.addf(file, at("run", "timeouts"), "trigger %q: set timeout or timeouts.pipeline, not both", ts.Name)
		}
		for _, d := range []struct{ field, value string }{{"pipeline", to.Pipeline}, {"tasks", to.Tasks}, {"finally", to.Finally}} {
			if d.value != "" {
				l.checkDuration(file, at("run", "timeouts", d.field), ts.Name, "timeouts."+d.field, d.value)
			}
		}
		if to.Pipeline != "" {
			t.timeout = to.Pipeline
		}
		t.tasksTimeout, t.finallyTimeout = to.Tasks, to.Finally
	}

	seen := map[string]bool{}
	for j, p := range run.Params {
		if !paramNameRE.MatchString(p.Name) {
			l.addf(file, at("run", "params", j, "name"), "param name %q is not a valid Tekton parameter name", p.Name)
		}
		if seen[p.Name] {
			l.addf(file, at("run", "params", j, "name"), "param %q set twice", p.Name)
		}
		seen[p.Name] = true
		l.checkExpressions(file, at("run", "params", j, "value"), p.Name, p.Value)
		t.params = append(t.params, p)
		if strings.Contains(p.Value, "$(") {
			t.paramsBound = true
		}
	}
	if t.paramsBound {
		for _, p := range t.params {
			t.bindingParams = append(t.bindingParams, triggersv1.Param{Name: p.Name, Value: p.Value})
			t.bindsBody = t.bindsBody || strings.Contains(p.Value, "$(body")
		}
	}
	for j := range run.Workspaces {
		l.compileWorkspace(file, at("run", "workspaces", j), &run.Workspaces[j], t)
	}
	// Tekton's own PipelineRun validation, on what is known at load: the
	// timeouts against each other, the workspaces, the parameter names.
	if len(l.problems) == before {
		if err := t.checkPipelineRunSpec(); err != nil {
			l.addf(file, at("run"), "trigger %q: %v", ts.Name, err)
		}
	}
}

func (l *loader) checkDuration(file string, line int, trigger, field, value string) {
	if d, err := parseDuration(value); err != nil || d < 0 {
		l.addf(file, line, "trigger %q: %s %q is not a duration such as 1h30m", trigger, field, value)
	}
}

func (l *loader) checkExpressions(file string, line int, param, value string) {
	for _, m := range expressionRE.FindAllStringSubmatch(value, -1) {
		if !validExpression(m[1]) {
			l.addf(file, line, "param %q: %q is not a binding expression: use $(body.<path>), $(header.<name>), $(extensions.<name>) or $(context.eventID)", param, m[0])
		}
	}
	// Split as Tekton's resolver splits, which a nested $( cannot fool.
	for _, expr := range tektonExpressions(value) {
		if msg := headerProblem(expr, l.isCredential); msg != "" {
			l.addf(file, line, "param %q: %s", param, msg)
		}
	}
}

// grantedNamespace returns the namespace a trigger runs in: its own, which
// must be granted, or the app's first.
func (l *loader) grantedNamespace(file string, line int, trigger string, a *app, ns string) string {
	if ns == "" {
		if len(a.namespaces) > 0 {
			return a.namespaces[0]
		}
		return ""
	}
	if !slices.Contains(a.namespaces, ns) {
		l.addf(file, line, "trigger %q: namespace %q exceeds the grant of app %q (namespaces: %s)", trigger, ns, a.name, strings.Join(a.namespaces, ", "))
	}
	return ns
}

// grantedServiceAccount returns the service account a trigger runs as: its
// own, which must be granted, or the app's first (none: Tekton's default).
func (l *loader) grantedServiceAccount(file string, line int, trigger string, a *app, sa string) string {
	if sa == "" {
		if len(a.serviceAccounts) > 0 {
			return a.serviceAccounts[0]
		}
		return ""
	}
	if !slices.Contains(a.serviceAccounts, sa) {
		l.addf(file, line, "trigger %q: service account %q exceeds the grant of app %q (serviceAccounts: %s)", trigger, sa, a.name, strings.Join(a.serviceAccounts, ", "))
	}
	return sa
}

// validExpression accepts the roots Tekton Triggers resolves in bindings.
func validExpression(expr string) bool {
	for _, root := range []string{"body", "header", "extensions", "context"} {
		if expr == root || strings.HasPrefix(expr, root+".") || strings.HasPrefix(expr, root+"[") {
			return true
		}
	}
	return false
}

// normalizedAway are provider types no delivery keeps: the providers
// always normalize these events (internal/ingest), to the type given.
var normalizedAway = map[string]string{
	"com.github.pull_request":  "dev.switchyard.git.pullrequest",
	"com.gitlab.merge_request": "dev.switchyard.git.pullrequest",
	"com.gitlab.push":          "dev.switchyard.git.push (dev.switchyard.git.branch.deleted for a deletion)",
	"com.gitlab.tag_push":      "dev.switchyard.git.tag (dev.switchyard.git.tag.deleted for a deletion)",
}

// warnUnproducedTypes warns of literal types that no source produces: in
// the router's namespace (dev.switchyard.), where a typo loads fine and the
// trigger never fires, and provider types whose events are always
// normalized (a Tekton user's com.github.pull_request).
func (l *loader) warnUnproducedTypes(file string, at func(j int) int, owner string, types []string) {
	if l.opts.EventTypes == nil {
		return
	}
	for j, typ := range types {
		if instead, ok := normalizedAway[typ]; ok {
			l.warnf(file, at(j), "%s: no source produces event type %q, so nothing fires on it: those deliveries become %s", owner, typ, instead)
			continue
		}
		if !strings.HasPrefix(typ, reservedTypePrefix) || strings.ContainsAny(typ, "*?[{!") || slices.Contains(l.opts.EventTypes, typ) {
			continue
		}
		msg := fmt.Sprintf("%s: no source produces event type %q, so nothing fires on it", owner, typ)
		if s := Suggest(typ, l.opts.EventTypes); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		} else {
			msg += "; the router's types are " + strings.Join(l.opts.EventTypes, ", ")
		}
		l.warnf(file, at(j), "%s", msg)
	}
}
