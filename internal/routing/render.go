package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	pipelinev1beta1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"github.com/tektoncd/triggers/pkg/template"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rendering a matched trigger for one event: params and concurrency groups
// through Tekton Triggers' resolver, templates into one PipelineRun held to
// the grant.

// uidVariable is Tekton Triggers' $(uid), random per event in Triggers;
// here derived from the event so a redelivery renders the same object.
var uidVariable = []byte("$(uid)")

// renderResource resolves the template for one event with Tekton Triggers'
// resolver and holds the PipelineRun to the grant.
func (t *trigger) renderResource(st *routeState, target *Target) error {
	ev := st.in.Event
	params, err := template.ResolveParams(
		template.ResolvedTrigger{BindingParams: t.bindingParams, TriggerTemplate: t.template},
		t.bindingBody(st), st.headers(), st.ext, template.NewTriggerContext(ev.ID()))
	if err != nil {
		return fmt.Errorf("render bindings: %w", err)
	}
	tt := t.template
	if t.templateUID {
		uid := uuid.NewSHA1(uuid.NameSpaceURL, []byte(target.Name)).String()
		cp := *tt
		cp.Spec.ResourceTemplates = []triggersv1.TriggerResourceTemplate{{}}
		cp.Spec.ResourceTemplates[0].Raw = bytes.ReplaceAll(t.templateRaw, uidVariable, []byte(uid))
		tt = &cp
	}
	raw := template.ResolveResources(tt, params)[0]
	pr, err := decodePipelineRun(raw)
	if err != nil {
		return fmt.Errorf("template %q: %w", t.template.Name, err)
	}
	a := t.app
	ns := pr.Namespace
	if ns == "" {
		ns = t.namespace
	} else if !slices.Contains(a.namespaces, ns) {
		return fmt.Errorf("template %q: namespace %q exceeds the grant of app %q (namespaces: %s)", t.template.Name, ns, a.name, strings.Join(a.namespaces, ", "))
	}
	sa := pr.Spec.TaskRunTemplate.ServiceAccountName
	if sa == "" {
		sa = t.serviceAccount
	}
	for _, s := range pipelineRunAccounts(pr) {
		if s != "" && !slices.Contains(a.serviceAccounts, s) {
			return fmt.Errorf("template %q: service account %q exceeds the grant of app %q (serviceAccounts: %s)", t.template.Name, s, a.name, strings.Join(a.serviceAccounts, ", "))
		}
	}
	for _, m := range []map[string]string{pr.Labels, pr.Annotations} {
		for k := range m {
			if msg := reservedKeyProblem(k); msg != "" {
				return fmt.Errorf("template %q: %s", t.template.Name, msg)
			}
		}
	}
	pr.Name, pr.GenerateName, pr.Namespace = target.Name, "", ns
	pr.Spec.TaskRunTemplate.ServiceAccountName = sa
	target.Namespace, target.ServiceAccount = ns, sa
	if pr.Spec.PipelineRef != nil {
		target.PipelineRef = pr.Spec.PipelineRef.Name
	}
	if target.Resource, err = json.Marshal(pr); err != nil {
		return fmt.Errorf("template %q: %w", t.template.Name, err)
	}
	return nil
}

// decodePipelineRun decodes a rendered resource template into a
// tekton.dev/v1 PipelineRun, converting v1beta1.
func decodePipelineRun(raw []byte) (*pipelinev1.PipelineRun, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, fmt.Errorf("rendered resource is not JSON (a param value broke it?): %v", err)
	}
	if tm.Kind != "PipelineRun" || !slices.Contains(allowedPipelineRunVersions, tm.APIVersion) {
		return nil, fmt.Errorf("renders %s %s: only tekton.dev PipelineRuns are allowed", tm.APIVersion, tm.Kind)
	}
	strict := func(v any) error {
		if _, err := strictJSON(raw, v); err != nil {
			return fmt.Errorf("rendered %s: %v", tm.APIVersion, err)
		}
		return nil
	}
	pr := &pipelinev1.PipelineRun{}
	if tm.APIVersion == "tekton.dev/v1beta1" {
		//lint:ignore SA1019 v1beta1 templates are accepted, and converted to v1.
		var old pipelinev1beta1.PipelineRun
		if err := strict(&old); err != nil {
			return nil, err
		}
		if err := old.ConvertTo(context.Background(), pr); err != nil {
			return nil, fmt.Errorf("convert v1beta1 PipelineRun to v1: %w", err)
		}
	} else if err := strict(pr); err != nil {
		return nil, err
	}
	pr.TypeMeta = metav1.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "PipelineRun"}
	return pr, nil
}

// target renders the trigger's run for one event. Parameter bindings are
// resolved by Tekton Triggers' own resolver, so $(body.x), $(header.x) and
// $(extensions.x) behave exactly as in a TriggerBinding.
func (t *trigger) target(st *routeState) (Target, error) {
	ev := st.in.Event
	target := Target{
		App:            t.app.name,
		Trigger:        t.name,
		Namespace:      t.namespace,
		Name:           PipelineRunName(t.app.name, t.name, st.in.Source, ev.ID()),
		ServiceAccount: t.serviceAccount,
		PipelineRef:    t.pipelineRef,
		Timeout:        t.timeout,
		TasksTimeout:   t.tasksTimeout,
		FinallyTimeout: t.finallyTimeout,
		Workspaces:     slices.Clone(t.workspaces),
		RulesRevision:  st.rules.revision,
	}
	if t.concurrency != nil {
		c, err := t.resolveConcurrency(st)
		if err != nil {
			return Target{}, err
		}
		target.Concurrency = c
	}
	if t.template != nil {
		if err := t.renderResource(st, &target); err != nil {
			return Target{}, err
		}
		return target, nil
	}
	if len(t.params) == 0 {
		return target, nil
	}
	target.Params = make([]Param, len(t.params))
	if !t.paramsBound {
		for i, p := range t.params {
			target.Params[i] = Param(p)
		}
		return target, nil
	}
	bindings := t.bindingParams
	if bindings == nil {
		bindings = make([]triggersv1.Param, len(t.params))
		for i, p := range t.params {
			bindings[i] = triggersv1.Param{Name: p.Name, Value: p.Value}
		}
	}
	resolved, err := template.ResolveParams(template.ResolvedTrigger{BindingParams: bindings},
		t.bindingBody(st), st.headers(), st.ext, template.NewTriggerContext(ev.ID()))
	if err != nil {
		return Target{}, fmt.Errorf("render params: %w", err)
	}
	// The resolver returns params in map order; keep the manifest's order
	// so the rendered PipelineRun is deterministic.
	values := make(map[string]string, len(resolved))
	for _, p := range resolved {
		values[p.Name] = p.Value
	}
	for i, p := range t.params {
		target.Params[i] = Param{Name: p.Name, Value: values[p.Name]}
	}
	return target, nil
}

// resolveConcurrency resolves the group template for one event.
func (t *trigger) resolveConcurrency(st *routeState) (*Concurrency, error) {
	c := *t.concurrency
	if !strings.Contains(c.Group, "$(") {
		return &c, nil
	}
	ev := st.in.Event
	var body []byte
	if strings.Contains(c.Group, "$(body") {
		body = st.bodyFor(t.groupPaths)
	}
	resolved, err := template.ResolveParams(template.ResolvedTrigger{BindingParams: []triggersv1.Param{{Name: "group", Value: c.Group}}},
		body, st.headers(), st.ext, template.NewTriggerContext(ev.ID()))
	if err != nil {
		return nil, fmt.Errorf("render concurrency group: %w", err)
	}
	for _, p := range resolved {
		if p.Name == "group" {
			c.Group = p.Value
		}
	}
	return &c, nil
}

// bindingBody is the payload the binding resolver gets: none when no
// binding reads the body, which spares the resolver a parse, and only the
// part the bindings read when that is known.
func (t *trigger) bindingBody(st *routeState) []byte {
	if !t.bindsBody {
		return nil
	}
	return st.bodyFor(t.bodyPaths)
}
