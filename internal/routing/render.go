package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// renderResources resolves the template for one event with Tekton
// Triggers' resolver and returns one target per rendered run, each held to
// the grant. One $(uid) serves every run of the event, as in Triggers.
func (t *trigger) renderResources(st *routeState, base Target) ([]Target, error) {
	ev := st.in.Event
	ext, err := t.extensions(st)
	if err != nil {
		return nil, err
	}
	params, err := template.ResolveParams(
		template.ResolvedTrigger{BindingParams: t.bindingParams, TriggerTemplate: t.template},
		t.bindingBody(st), st.headers(), ext, template.NewTriggerContext(ev.ID()))
	if err != nil {
		return nil, fmt.Errorf("render bindings: %w", err)
	}
	tt := t.template
	if t.templateUID {
		uid := uuid.NewSHA1(uuid.NameSpaceURL, []byte(base.Name)).String()
		cp := *tt
		cp.Spec.ResourceTemplates = make([]triggersv1.TriggerResourceTemplate, len(tt.Spec.ResourceTemplates))
		for i, rt := range tt.Spec.ResourceTemplates {
			cp.Spec.ResourceTemplates[i].Raw = bytes.ReplaceAll(rt.Raw, uidVariable, []byte(uid))
		}
		tt = &cp
	}
	raws := template.ResolveResources(tt, params)
	out := make([]Target, 0, len(raws))
	for i, raw := range raws {
		target := base
		target.Index = i
		target.Name = RunName(base.App, base.Trigger, st.in.Source, ev.ID(), i)
		if err := t.holdRun(raw, &target); err != nil {
			if len(raws) > 1 {
				return nil, fmt.Errorf("template %q: resource %d: %w", t.template.Name, i, err)
			}
			return nil, fmt.Errorf("template %q: %w", t.template.Name, err)
		}
		out = append(out, target)
	}
	return out, nil
}

// holdRun decodes one rendered run, holds it to the grant, names it and
// stores it in target.
func (t *trigger) holdRun(raw []byte, target *Target) error {
	run, err := decodeRun(raw)
	if err != nil {
		return err
	}
	a := t.app
	meta := run.meta()
	ns := meta.Namespace
	if ns == "" {
		ns = t.namespace
	} else if !slices.Contains(a.namespaces, ns) {
		return fmt.Errorf("namespace %q exceeds the grant of app %q (namespaces: %s)", ns, a.name, strings.Join(a.namespaces, ", "))
	}
	for _, s := range run.accounts() {
		if s != "" && !slices.Contains(a.serviceAccounts, s) {
			return fmt.Errorf("service account %q exceeds the grant of app %q (serviceAccounts: %s)", s, a.name, strings.Join(a.serviceAccounts, ", "))
		}
	}
	for _, m := range []map[string]string{meta.Labels, meta.Annotations} {
		for k := range m {
			if msg := reservedKeyProblem(k); msg != "" {
				return errors.New(msg)
			}
		}
	}
	meta.Name, meta.GenerateName, meta.Namespace = target.Name, "", ns
	sa := run.setAccount(t.serviceAccount)
	if run.tr != nil {
		target.Kind = KindTaskRun // PipelineRuns keep the empty Kind of pipelineRef runs
	}
	target.Namespace, target.ServiceAccount, target.PipelineRef = ns, sa, run.ref()
	if target.Resource, err = json.Marshal(run.object()); err != nil {
		return err
	}
	return nil
}

// tektonRun is a rendered PipelineRun or TaskRun, as tekton.dev/v1; one of
// the two is set.
type tektonRun struct {
	pr *pipelinev1.PipelineRun
	tr *pipelinev1.TaskRun
}

func (r tektonRun) kind() string {
	if r.tr != nil {
		return KindTaskRun
	}
	return KindPipelineRun
}

func (r tektonRun) object() any {
	if r.tr != nil {
		return r.tr
	}
	return r.pr
}

func (r tektonRun) meta() *metav1.ObjectMeta {
	if r.tr != nil {
		return &r.tr.ObjectMeta
	}
	return &r.pr.ObjectMeta
}

// accounts lists the service accounts the run runs as ("" when unset).
func (r tektonRun) accounts() []string {
	if r.tr != nil {
		return []string{r.tr.Spec.ServiceAccountName}
	}
	return pipelineRunAccounts(r.pr)
}

// setAccount sets the run's own service account to fallback when the
// template left it unset, and returns it.
func (r tektonRun) setAccount(fallback string) string {
	var sa *string
	if r.tr != nil {
		sa = &r.tr.Spec.ServiceAccountName
	} else {
		sa = &r.pr.Spec.TaskRunTemplate.ServiceAccountName
	}
	if *sa == "" {
		*sa = fallback
	}
	return *sa
}

// ref names what the run runs, for display: its pipelineRef or taskRef.
func (r tektonRun) ref() string {
	switch {
	case r.tr != nil && r.tr.Spec.TaskRef != nil:
		return r.tr.Spec.TaskRef.Name
	case r.pr != nil && r.pr.Spec.PipelineRef != nil:
		return r.pr.Spec.PipelineRef.Name
	}
	return ""
}

// decodeRun decodes a rendered resource template into a tekton.dev/v1
// PipelineRun or TaskRun, converting v1beta1 with Tekton's own conversion.
func decodeRun(raw []byte) (tektonRun, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return tektonRun{}, fmt.Errorf("rendered resource is not JSON (a param value broke it?): %v", err)
	}
	if !slices.Contains(allowedRunKinds, tm.Kind) || !slices.Contains(allowedRunVersions, tm.APIVersion) {
		return tektonRun{}, fmt.Errorf("renders %s %s: %s", tm.APIVersion, tm.Kind, allowedRunsText)
	}
	if tm.Kind == KindTaskRun {
		tr, err := decodeTaskRun(raw, tm.APIVersion)
		return tektonRun{tr: tr}, err
	}
	pr, err := decodePipelineRun(raw)
	return tektonRun{pr: pr}, err
}

// decodeTaskRun decodes a rendered TaskRun of apiVersion into tekton.dev/v1.
func decodeTaskRun(raw []byte, apiVersion string) (*pipelinev1.TaskRun, error) {
	tr := &pipelinev1.TaskRun{}
	if apiVersion == "tekton.dev/v1beta1" {
		//lint:ignore SA1019 v1beta1 templates are accepted, and converted to v1.
		var old pipelinev1beta1.TaskRun
		if _, err := strictJSON(raw, &old); err != nil {
			return nil, fmt.Errorf("rendered %s: %v", apiVersion, err)
		}
		if err := old.ConvertTo(context.Background(), tr); err != nil {
			return nil, fmt.Errorf("convert v1beta1 TaskRun to v1: %w", err)
		}
	} else if _, err := strictJSON(raw, tr); err != nil {
		return nil, fmt.Errorf("rendered %s: %v", apiVersion, err)
	}
	tr.TypeMeta = metav1.TypeMeta{APIVersion: "tekton.dev/v1", Kind: KindTaskRun}
	return tr, nil
}

// decodePipelineRun decodes a rendered resource template into a
// tekton.dev/v1 PipelineRun, converting v1beta1.
func decodePipelineRun(raw []byte) (*pipelinev1.PipelineRun, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, fmt.Errorf("rendered resource is not JSON (a param value broke it?): %v", err)
	}
	if tm.Kind != KindPipelineRun || !slices.Contains(allowedRunVersions, tm.APIVersion) {
		return nil, fmt.Errorf("renders %s %s: want a tekton.dev PipelineRun", tm.APIVersion, tm.Kind)
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

// targets renders the trigger's runs for one event: one for a pipelineRef
// run, one per rendered resource for a template.
func (t *trigger) targets(st *routeState) ([]Target, error) {
	target, err := t.target(st)
	if err != nil {
		return nil, err
	}
	if t.template != nil {
		return t.renderResources(st, target)
	}
	return []Target{target}, nil
}

// target renders the trigger's run for one event (the common part of a
// template's). Parameter bindings are resolved by Tekton Triggers' own
// resolver, so $(body.x), $(header.x) and $(extensions.x) behave exactly
// as in a TriggerBinding.
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
	if t.template != nil || len(t.params) == 0 {
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
	ext, err := t.extensions(st)
	if err != nil {
		return Target{}, err
	}
	resolved, err := template.ResolveParams(template.ResolvedTrigger{BindingParams: bindings},
		t.bindingBody(st), st.headers(), ext, template.NewTriggerContext(ev.ID()))
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
	ext, err := t.extensions(st)
	if err != nil {
		return nil, err
	}
	resolved, err := template.ResolveParams(template.ResolvedTrigger{BindingParams: []triggersv1.Param{{Name: "group", Value: c.Group}}},
		body, st.headers(), ext, template.NewTriggerContext(ev.ID()))
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
