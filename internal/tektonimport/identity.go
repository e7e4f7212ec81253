package tektonimport

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"

	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
)

// runIdentity adds to the grant the namespaces and service accounts the
// trigger's template creates its runs with: a literal metadata.namespace
// (else the EventListener's namespace, where Tekton Triggers creates them)
// and the runs' service accounts (v1 taskRunTemplate.serviceAccountName,
// v1beta1 serviceAccountName). A value taken from a parameter cannot be
// granted from the files: a note says so.
func (t *translator) runIdentity(et elTrigger, g *grant, sas map[string]bool) {
	for _, rt := range t.resourceTemplates(et) {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Spec struct {
				ServiceAccountName string `json:"serviceAccountName"`
				TaskRunTemplate    struct {
					ServiceAccountName string `json:"serviceAccountName"`
				} `json:"taskRunTemplate"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(rt.Raw, &obj); err != nil {
			continue // Switchyard's own load reports it
		}
		ns := cmp.Or(obj.Metadata.Namespace, et.namespace)
		if t.literal(et, "namespace", ns) && !slices.Contains(g.Namespaces, ns) {
			g.Namespaces = append(g.Namespaces, ns)
		}
		sa := cmp.Or(obj.Spec.ServiceAccountName, obj.Spec.TaskRunTemplate.ServiceAccountName)
		if t.literal(et, "service account", cmp.Or(sa, "default")) {
			// Tekton runs a resource that names none as "default".
			sas[cmp.Or(sa, "default")] = true
		}
	}
}

// literal reports whether v is a fixed value; a value with a $(...)
// expression is noted: only the operator knows the values it may take.
func (t *translator) literal(et elTrigger, what, v string) bool {
	if !strings.Contains(v, "$(") {
		return true
	}
	t.note(et.where, "the "+what+" comes from a parameter ("+v+")", "grant each value it may take in root.yaml (the import granted none)")
	return false
}

// resourceTemplates are what the trigger's template creates.
func (t *translator) resourceTemplates(et elTrigger) []triggersv1.TriggerResourceTemplate {
	spec := et.spec.Template.Spec
	if ref := et.spec.Template.Ref; ref != nil {
		s, ok := t.c.TemplateSpecs[*ref]
		if !ok {
			return nil
		}
		spec = &s
	}
	if spec == nil {
		return nil
	}
	return spec.ResourceTemplates
}

// otherKind names a resource the trigger's template creates that is not a
// tekton.dev PipelineRun or TaskRun ("v1 ConfigMap"), or is empty.
func (t *translator) otherKind(et elTrigger) string {
	for _, rt := range t.resourceTemplates(et) {
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if json.Unmarshal(rt.Raw, &obj) != nil {
			continue
		}
		group, _, _ := strings.Cut(obj.APIVersion, "/")
		if group != "tekton.dev" || (obj.Kind != "PipelineRun" && obj.Kind != "TaskRun") {
			return obj.APIVersion + " " + obj.Kind
		}
	}
	return ""
}
