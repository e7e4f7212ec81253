package tektonimport

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"go.yaml.in/yaml/v3"
)

// interceptorParams are the params the core interceptors take, decoded.
type interceptorParams struct {
	SecretRef *struct {
		SecretName string `json:"secretName"`
		SecretKey  string `json:"secretKey"`
	} `json:"secretRef"`
	EventTypes      []string `json:"eventTypes"`
	AddChangedFiles *struct {
		Enabled bool `json:"enabled"`
	} `json:"addChangedFiles"`
	GitHubOwners *struct {
		Enabled bool `json:"enabled"`
	} `json:"githubOwners"`
	Filter   string    `json:"filter"`
	Overlays []overlay `json:"overlays"`
}

func decodeParams(ic *triggersv1.TriggerInterceptor) (interceptorParams, error) {
	obj := map[string]json.RawMessage{}
	for _, p := range ic.Params {
		obj[p.Name] = p.Value.Raw
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return interceptorParams{}, err
	}
	var ps interceptorParams
	err = json.Unmarshal(data, &ps)
	return ps, err
}

// trigger translates one trigger: its interceptors become the match (the
// source that verifies the signature, the event header check, the CEL
// filters) and overlays, its bindings and template the run. ok is false
// when it cannot be translated faithfully; a note says why.
func (t *translator) trigger(et elTrigger) (tr trigger, sources []string, files []*File, ok bool) {
	var conds []string
	for i, ic := range et.spec.Interceptors {
		if ic == nil {
			continue
		}
		name := ic.Ref.Name
		where := fmt.Sprintf("%s, interceptor %d", et.where, i+1)
		if ic.Webhook != nil {
			t.note(where, "a webhook interceptor calls a service Switchyard does not call", "move its check into match.when (CEL) or into the pipeline, then add the trigger by hand")
			return trigger{}, nil, nil, false
		}
		ps, err := decodeParams(ic)
		if err != nil {
			t.note(where, "params: "+err.Error(), "fix the interceptor's params")
			return trigger{}, nil, nil, false
		}
		switch {
		case name == "cel" && (strings.Contains(ps.Filter, "compareSecret") || overlaysCall(ps.Overlays, "compareSecret")):
			t.note(where, "compareSecret checks a shared secret inside CEL; Switchyard verifies the sender on the source instead, and refuses compareSecret", "configure that secret on the source (secret:), remove the compareSecret call, then add the trigger by hand")
			return trigger{}, nil, nil, false
		case name == "cel":
			if ps.Filter != "" {
				conds = append(conds, ps.Filter)
			}
			tr.Overlays = append(tr.Overlays, ps.Overlays...)
		case eventHeaders[name] != "":
			if ps.GitHubOwners != nil && ps.GitHubOwners.Enabled {
				t.note(where, "githubOwners reads an OWNERS file through the GitHub API on each event", "grant who may run pull requests in the root (docs/approvals.md: /ok-to-test), then add the trigger by hand")
				return trigger{}, nil, nil, false
			}
			sources = append(sources, t.source(name, ps))
			if c := eventCondition(eventHeaders[name], ps.EventTypes); c != "" {
				conds = append([]string{c}, conds...)
			}
		default:
			t.note(where, fmt.Sprintf("interceptor %q is not one of Tekton's core interceptors (github, gitlab, bitbucket, cel)", name), "reproduce its check in match.when (CEL) or in the pipeline, then add the trigger by hand")
			return trigger{}, nil, nil, false
		}
	}
	if len(sources) == 0 {
		// The EventListener accepted unauthenticated requests; Switchyard
		// never does.
		sources = append(sources, t.source("", interceptorParams{}))
	}
	tr.Match = match{Sources: sources, When: joinConditions(conds)}
	tr.Run.Namespace = et.namespace
	used, ok := t.run(et, &tr)
	if kind := t.otherKind(et); ok && kind != "" {
		t.note(et.where, "its template creates a "+kind+": Switchyard creates only Tekton PipelineRuns and TaskRuns", "create that object from a step of the pipeline, then add the trigger by hand")
		return trigger{}, nil, nil, false
	}
	return tr, sources, used, ok
}

func overlaysCall(os []overlay, fn string) bool {
	return slices.ContainsFunc(os, func(o overlay) bool { return strings.Contains(o.Expression, fn) })
}

// eventCondition is the interceptor's eventTypes check in CEL, with the
// header function Tekton's CEL environment provides.
func eventCondition(header string, types []string) string {
	var or []string
	for _, ty := range types {
		or = append(or, fmt.Sprintf("header.match(%q, %q)", header, ty))
	}
	return strings.Join(or, " || ")
}

// joinConditions is every condition, all of which must hold, as Tekton's
// interceptor chain requires.
func joinConditions(conds []string) string {
	if len(conds) == 1 {
		return conds[0]
	}
	var and []string
	for _, c := range conds {
		and = append(and, "("+strings.TrimSpace(c)+")")
	}
	return strings.Join(and, " && ")
}

// source returns the name of the source that verifies an interceptor's
// secret, adding it at the first use. An empty interceptor is the generic
// HMAC source that replaces an unauthenticated EventListener.
func (t *translator) source(interceptor string, ps interceptorParams) string {
	kind, name := sourceKinds[interceptor], interceptor
	if interceptor == "" {
		kind, name = "generic-hmac", "generic"
	}
	var ref secretRef
	key := kind
	if s := ps.SecretRef; s != nil && s.SecretName != "" {
		// The Kubernetes Secret the interceptor read, mounted as a volume.
		ref.File = "/etc/switchyard/secrets/" + s.SecretName + "/" + s.SecretKey
		key += "/" + s.SecretName + "/" + s.SecretKey
	} else {
		ref.Env = strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_WEBHOOK_SECRET"
	}
	if s, ok := t.sources[key]; ok {
		return s.Name
	}
	switch {
	case ref.Env == "":
	case interceptor != "":
		t.note("source "+name, "the "+interceptor+" interceptor had no secretRef, so Tekton Triggers did not verify these deliveries", "set a webhook secret on the sender and in "+ref.Env)
	default:
		t.note("source "+name, "triggers without a github, gitlab or bitbucket interceptor accepted unauthenticated requests", "senders must now sign the body (docs/sources/generic-hmac.md: X-Signature: sha256=<HMAC>, or Standard Webhooks) with the secret in "+ref.Env)
	}
	for n := 2; t.nameTaken(name); n++ {
		name = fmt.Sprintf("%s-%d", interceptor, n)
	}
	t.sources[key] = &source{Name: name, Kind: kind, Secret: ref}
	return name
}

func (t *translator) nameTaken(name string) bool {
	for _, s := range t.sources {
		if s.Name == name {
			return true
		}
	}
	return false
}

// run translates the bindings and the template, and returns the files
// that declare the ones referenced by name.
func (t *translator) run(et elTrigger, tr *trigger) ([]*File, bool) {
	var files []*File
	for _, b := range et.spec.Bindings {
		if b == nil {
			continue
		}
		if b.Ref == "" {
			tr.Run.Bindings = append(tr.Run.Bindings, binding{Name: b.Name, Value: b.Value})
			continue
		}
		decls, kind := t.c.Bindings, ""
		if b.Kind == triggersv1.ClusterTriggerBindingKind {
			decls, kind = t.c.ClusterBindings, string(b.Kind)
		}
		f, found := decls[b.Ref]
		if !found {
			t.note(et.where, fmt.Sprintf("binding %q: no %s of that name in the input", b.Ref, cmp.Or(kind, "TriggerBinding")), "add the file that declares it to the import")
			return nil, false
		}
		files = append(files, f)
		tr.Run.Bindings = append(tr.Run.Bindings, binding{Ref: b.Ref, Kind: kind})
	}
	tmpl := et.spec.Template
	switch {
	case tmpl.Ref != nil && *tmpl.Ref != "":
		f, found := t.c.Templates[*tmpl.Ref]
		if !found {
			t.note(et.where, fmt.Sprintf("template %q: no TriggerTemplate of that name in the input", *tmpl.Ref), "add the file that declares it to the import")
			return nil, false
		}
		files = append(files, f)
		tr.Run.Template.Ref = *tmpl.Ref
	case tmpl.Spec != nil:
		node, err := toNode(tmpl.Spec)
		if err != nil {
			t.note(et.where, "template spec: "+err.Error(), "write the template by hand")
			return nil, false
		}
		tr.Run.Template.Spec = node
	default:
		t.note(et.where, "the trigger has no template", "add one; a trigger without a template creates nothing")
		return nil, false
	}
	return files, true
}

// toNode converts a Tekton object to YAML through its JSON form, so the
// written manifest has Tekton's field names.
func toNode(v any) (*yaml.Node, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return n.Content[0], nil
	}
	return &n, nil
}
