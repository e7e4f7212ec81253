package tektonimport

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Note is something the import did not translate: where, why, and the
// manual step that finishes the migration.
type Note struct {
	Where  string
	Reason string
	Step   string
}

func (n Note) String() string { return n.Where + ": " + n.Reason + "; " + n.Step }

// Result is a translated configuration, ready to be written by Write.
type Result struct {
	root root
	apps []*appOut
	// Notes list what was not translated; Ignored the objects of other
	// kinds in the input (Pipelines, RBAC, Secrets...).
	Notes   []Note
	Ignored []string
	// Triggers counts the triggers written.
	Triggers int
}

// appOut is one app: its manifest and the files copied next to it.
type appOut struct {
	manifest app
	files    []*File
}

// Apps counts the apps translated: one per EventListener with at least
// one trigger that could be.
func (r *Result) Apps() int { return len(r.apps) }

// The event header each Git interceptor checks its eventTypes against, as
// Tekton Triggers' interceptors do.
var eventHeaders = map[string]string{
	"github":    "X-GitHub-Event",
	"gitlab":    "X-Gitlab-Event",
	"bitbucket": "X-Event-Key",
}

// sourceKinds maps an interceptor to the Switchyard source kind that
// verifies the same signature. Tekton's bitbucket interceptor checks
// Bitbucket Server's X-Hub-Signature.
var sourceKinds = map[string]string{"github": "github", "gitlab": "gitlab", "bitbucket": "bitbucket-server"}

// Translate turns the configuration into a rules directory: one app per
// EventListener.
func Translate(c *Config) (*Result, error) {
	if len(c.EventListeners) == 0 {
		return nil, fmt.Errorf("import: no EventListener in the input: an EventListener says which triggers run")
	}
	t := &translator{c: c, res: &Result{Ignored: c.Ignored}, sources: map[string]*source{}}
	t.res.root = root{APIVersion: "switchyard.dev/v1alpha1", Kind: "Root"}
	names := map[string]bool{}
	for _, el := range c.EventListeners {
		name := uniqueName(dnsLabel(el.Object.Name, "app"), names)
		t.app(name, el.Object)
	}
	for _, key := range slices.Sorted(maps.Keys(t.sources)) {
		t.res.root.Sources = append(t.res.root.Sources, *t.sources[key])
	}
	return t.res, nil
}

type translator struct {
	c       *Config
	res     *Result
	sources map[string]*source // by kind and secret
}

// elTrigger is a trigger as an EventListener runs it: its own spec, with
// the interceptors of its group first.
type elTrigger struct {
	name string
	spec triggersv1.TriggerSpec
	// where names it in notes.
	where string
	// namespace is where Tekton Triggers creates its resources when the
	// template does not say: the Trigger's namespace, else the
	// EventListener's.
	namespace string
}

// app translates one EventListener.
func (t *translator) app(name string, el triggersv1.EventListener) {
	out := &appOut{manifest: app{APIVersion: "switchyard.dev/v1alpha1", Kind: "App", Name: name}}
	g := &grant{Name: name, Manifest: "apps/" + name + "/app.yaml"}
	sas := map[string]bool{}
	files := map[*File]bool{}
	names := map[string]bool{}
	for _, et := range t.triggers(el) {
		tr, srcs, used, ok := t.trigger(et)
		if !ok {
			continue
		}
		tr.Name = uniqueName(dnsLabel(et.name, "trigger"), names)
		out.manifest.Triggers = append(out.manifest.Triggers, tr)
		t.res.Triggers++
		for _, s := range srcs {
			if !slices.Contains(g.Sources, s) {
				g.Sources = append(g.Sources, s)
			}
		}
		for _, f := range used {
			files[f] = true
		}
		t.runIdentity(et, g, sas)
	}
	if len(out.manifest.Triggers) == 0 {
		t.res.Notes = append(t.res.Notes, Note{Where: "EventListener " + el.Name, Reason: "no trigger could be translated", Step: "see the notes above; no app was written for it"})
		return
	}
	for _, f := range t.c.Files {
		if files[f] {
			out.files = append(out.files, f)
		}
	}
	if len(g.Namespaces) == 0 {
		g.Namespaces = []string{cmp.Or(el.Namespace, "default")}
	}
	// "default" first: it is what a run that names no service account
	// gets, in Tekton and in Switchyard (the grant's first).
	delete(sas, "default")
	g.ServiceAccounts = append([]string{"default"}, slices.Sorted(maps.Keys(sas))...)
	t.res.root.Apps = append(t.res.root.Apps, *g)
	t.res.apps = append(t.res.apps, out)
}

// triggers lists what the EventListener runs: its own triggers (inline or
// by triggerRef), its trigger groups' triggers, and the Triggers its label
// selector picks, from the input files.
func (t *translator) triggers(el triggersv1.EventListener) []elTrigger {
	out := t.listed(el)
	for i := range out {
		if out[i].namespace == "" {
			out[i].namespace = cmp.Or(el.Namespace, "default")
		}
	}
	return out
}

func (t *translator) listed(el triggersv1.EventListener) []elTrigger {
	var out []elTrigger
	for i, tr := range el.Spec.Triggers {
		where := fmt.Sprintf("EventListener %s, trigger %d", el.Name, i+1)
		if tr.TriggerRef != "" {
			found, ok := t.trigger1(tr.TriggerRef)
			if !ok {
				t.note(where, fmt.Sprintf("triggerRef %q: no Trigger of that name in the input", tr.TriggerRef), "add the file that declares it to the import")
				continue
			}
			out = append(out, elTrigger{name: found.Name, spec: found.Spec, where: "Trigger " + found.Name, namespace: found.Namespace})
			continue
		}
		name := tr.Name
		if name == "" {
			name = fmt.Sprintf("%s-%d", el.Name, i+1)
		}
		out = append(out, elTrigger{name: name, where: fmt.Sprintf("EventListener %s, trigger %s", el.Name, name),
			spec: triggersv1.TriggerSpec{Bindings: tr.Bindings, Template: derefTemplate(tr.Template), Interceptors: tr.Interceptors, ServiceAccountName: tr.ServiceAccountName}})
	}
	for _, grp := range el.Spec.TriggerGroups {
		sel := grp.TriggerSelector
		for _, tr := range t.selected(fmt.Sprintf("EventListener %s, triggerGroup %s", el.Name, grp.Name), el.Namespace, sel.NamespaceSelector.MatchNames, sel.LabelSelector) {
			spec := tr.Spec
			spec.Interceptors = append(slices.Clone(grp.Interceptors), spec.Interceptors...)
			out = append(out, elTrigger{name: tr.Name, spec: spec, where: "Trigger " + tr.Name + " (group " + grp.Name + ")", namespace: tr.Namespace})
		}
	}
	if el.Spec.LabelSelector != nil || len(el.Spec.NamespaceSelector.MatchNames) > 0 {
		for _, tr := range t.selected("EventListener "+el.Name, el.Namespace, el.Spec.NamespaceSelector.MatchNames, el.Spec.LabelSelector) {
			out = append(out, elTrigger{name: tr.Name, spec: tr.Spec, where: "Trigger " + tr.Name, namespace: tr.Namespace})
		}
	}
	return out
}

func derefTemplate(p *triggersv1.EventListenerTemplate) triggersv1.TriggerSpecTemplate {
	if p == nil {
		return triggersv1.TriggerSpecTemplate{}
	}
	return *p
}

// trigger1 finds a Trigger of the input by name.
func (t *translator) trigger1(name string) (triggersv1.Trigger, bool) {
	for _, tr := range t.c.Triggers {
		if tr.Object.Name == name {
			return tr.Object, true
		}
	}
	return triggersv1.Trigger{}, false
}

// selected returns the input's Triggers that a selector picks: in the
// namespaces named ("*": any; none: the EventListener's, where a Trigger
// without a namespace is taken to be), with the labels sel matches
// (matchLabels and matchExpressions, as Kubernetes evaluates them; nil
// matches all).
func (t *translator) selected(where, elNamespace string, namespaces []string, sel *metav1.LabelSelector) []triggersv1.Trigger {
	s := labels.Everything()
	if sel != nil {
		var err error
		if s, err = metav1.LabelSelectorAsSelector(sel); err != nil {
			t.note(where, "label selector: "+err.Error(), "list the triggers in the EventListener instead")
			return nil
		}
	}
	if len(namespaces) == 0 {
		namespaces = []string{cmp.Or(elNamespace, "default")}
	}
	var out []triggersv1.Trigger
	for _, tr := range t.c.Triggers {
		ns := cmp.Or(cmp.Or(tr.Object.Namespace, elNamespace), "default")
		if (slices.Contains(namespaces, "*") || slices.Contains(namespaces, ns)) && s.Matches(labels.Set(tr.Object.Labels)) {
			out = append(out, tr.Object)
		}
	}
	if len(out) == 0 {
		t.note(where, "its selector picks no Trigger of the input", "add the files of the Triggers it selects to the import")
	}
	return out
}

func (t *translator) note(where, reason, step string) {
	t.res.Notes = append(t.res.Notes, Note{Where: where, Reason: reason, Step: step})
}
