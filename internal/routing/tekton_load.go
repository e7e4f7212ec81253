package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	triggersv1alpha1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1alpha1"
	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	kjson "sigs.k8s.io/json"
)

// Tekton Triggers compatibility: an app lists TriggerBinding,
// ClusterTriggerBinding and TriggerTemplate files (kubectl-ready YAML,
// unchanged) in its resources, and a trigger runs a template with bindings
// as a Tekton Trigger does. Switchyard renders the template's tekton.dev
// PipelineRuns and TaskRuns and holds each to the app's grant.

// The Tekton Triggers API versions resources may use: v1alpha1 objects are
// converted to v1beta1 (see convertV1alpha1).
const (
	triggersGroup      = "triggers.tekton.dev"
	triggersAPIVersion = triggersGroup + "/v1beta1"
	triggersV1alpha1   = triggersGroup + "/v1alpha1"
)

// Kinds of Tekton Triggers objects resources hold.
const (
	kindTriggerBinding        = "TriggerBinding"
	kindClusterTriggerBinding = "ClusterTriggerBinding"
	kindTriggerTemplate       = "TriggerTemplate"
)

// tektonContext is what Tekton's defaulting and validation read: its
// built-in defaults and feature flags, built once (config.FromContextOrDefaults
// builds a fresh copy on every call).
var tektonContext = config.ToContext(context.Background(), config.FromContextOrDefaults(context.Background()))

// isTektonKind reports whether an object is a binding or template of
// Tekton Triggers, whatever its version.
func isTektonKind(apiVersion, kind string) bool {
	if !strings.HasPrefix(apiVersion, triggersGroup+"/") {
		return false
	}
	switch kind {
	case kindTriggerBinding, kindClusterTriggerBinding, kindTriggerTemplate:
		return true
	}
	return false
}

// isTektonFile reports whether a file starting with an object of
// apiVersion is a Tekton file (Triggers or Pipelines), not an App manifest.
func isTektonFile(apiVersion string) bool {
	group, _, _ := strings.Cut(apiVersion, "/")
	return group == triggersGroup || group == "tekton.dev"
}

// tektonObjects are the Tekton Triggers objects an app's resources declare.
type tektonObjects struct {
	// bindings holds each binding's params by "<kind>/<name>".
	bindings  map[string][]triggersv1.Param
	templates map[string]*triggersv1.TriggerTemplate
	// where says where each object was declared, for duplicates.
	where map[string]string
}

func newTektonObjects() *tektonObjects {
	return &tektonObjects{
		bindings:  map[string][]triggersv1.Param{},
		templates: map[string]*triggersv1.TriggerTemplate{},
		where:     map[string]string{},
	}
}

// decodeTektonFile decodes every document of a resources file.
func (l *loader) decodeTektonFile(name string, data []byte, objs *tektonObjects) {
	file := l.display(name)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			l.addYAMLError(file, err)
			return
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		l.decodeTektonObject(file, doc.Content[0], objs)
	}
}

func (l *loader) decodeTektonObject(file string, n *yaml.Node, objs *tektonObjects) {
	var h header
	_ = n.Decode(&h) // a malformed header is reported below
	if !isTektonKind(h.APIVersion, h.Kind) {
		l.ignoreObject(file, n, h)
		return
	}
	if h.APIVersion != triggersAPIVersion && h.APIVersion != triggersV1alpha1 {
		l.addf(file, lineOf(n, "apiVersion"), "%s: apiVersion must be %q or %q, got %q", h.Kind, triggersAPIVersion, triggersV1alpha1, h.APIVersion)
		return
	}
	var (
		meta   metav1.ObjectMeta
		params []triggersv1.Param
		tt     *triggersv1.TriggerTemplate
		ferr   *apis.FieldError
	)
	switch h.Kind {
	case kindTriggerBinding:
		var tb triggersv1.TriggerBinding
		if !l.decodeTriggers(file, n, h.APIVersion, &triggersv1alpha1.TriggerBinding{}, &tb) {
			return
		}
		meta, params, ferr = tb.ObjectMeta, tb.Spec.Params, tb.Validate(context.Background())
	case kindClusterTriggerBinding:
		var ctb triggersv1.ClusterTriggerBinding
		if !l.decodeTriggers(file, n, h.APIVersion, &triggersv1alpha1.ClusterTriggerBinding{}, &ctb) {
			return
		}
		meta, params, ferr = ctb.ObjectMeta, ctb.Spec.Params, ctb.Validate(context.Background())
	default: // kindTriggerTemplate, as isTektonKind says
		tt = &triggersv1.TriggerTemplate{}
		if !l.decodeTriggers(file, n, h.APIVersion, &triggersv1alpha1.TriggerTemplate{}, tt) {
			return
		}
		meta, ferr = tt.ObjectMeta, tt.Validate(context.Background())
	}
	if meta.Name == "" {
		l.addf(file, lineOf(n, "metadata"), "%s: metadata.name is required", h.Kind)
		return
	}
	if ferr != nil {
		l.addf(file, n.Line, "%s %q: %s", h.Kind, meta.Name, oneLine(ferr))
		return
	}
	for i, p := range params {
		l.checkExpressions(file, lineOf(n, "spec", "params", i, "value"), p.Name, p.Value)
	}
	if tt != nil {
		for _, p := range l.checkTemplateBody(tt) {
			l.addf(file, lineOf(n, append([]any{"spec"}, p.path...)...), "%s %q: %s", h.Kind, meta.Name, p.msg)
		}
	}
	key := h.Kind + "/" + meta.Name
	if h.Kind == kindTriggerTemplate {
		key = meta.Name
	}
	where := fmt.Sprintf("%s:%d", file, n.Line)
	if prev, dup := objs.where[h.Kind+"/"+meta.Name]; dup {
		l.addf(file, n.Line, "%s %q declared twice (first at %s)", h.Kind, meta.Name, prev)
		return
	}
	objs.where[h.Kind+"/"+meta.Name] = where
	if tt != nil {
		objs.templates[key] = tt
	} else {
		objs.bindings[key] = params
	}
}

// decodeTriggers decodes a Tekton Triggers object of apiVersion into its
// v1beta1 type v1beta1. A v1alpha1 object is first decoded strictly into
// Tekton Triggers' own v1alpha1 type (alpha), then converted (see
// convertV1alpha1).
func (l *loader) decodeTriggers(file string, n *yaml.Node, apiVersion string, alpha, v1beta1 any) bool {
	if apiVersion == triggersAPIVersion {
		return l.decodeKube(file, n, v1beta1)
	}
	if !l.decodeKube(file, n, alpha) {
		return false
	}
	if err := convertV1alpha1(alpha, v1beta1); err != nil {
		l.addf(file, n.Line, "convert %s to %s: %v", triggersV1alpha1, triggersAPIVersion, err)
		return false
	}
	return true
}

// convertV1alpha1 converts a Tekton Triggers v1alpha1 binding or template
// into its v1beta1 type. Tekton Triggers v0.37 no longer ships ConvertTo
// for these kinds (its conversion webhook is gone); their v1alpha1 and
// v1beta1 schemas are field for field the same, which is what its old
// ConvertTo did too, so the conversion is a strict JSON round trip through
// Tekton Triggers' own types of both versions: a field v1beta1 lacks is an
// error, never dropped.
func convertV1alpha1(alpha, v1beta1 any) error {
	b, err := json.Marshal(alpha)
	if err != nil {
		return err
	}
	_, err = strictJSON(b, v1beta1)
	return err
}

// ignoreObject records, as a warning, an object of a resources file that
// Switchyard does not read, saying what replaces it where something does.
func (l *loader) ignoreObject(file string, n *yaml.Node, h header) {
	var meta struct {
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
	}
	_ = n.Decode(&meta) // only for the message
	what := fmt.Sprintf("%s %q (%s)", h.Kind, meta.Metadata.Name, h.APIVersion)
	group, _, _ := strings.Cut(h.APIVersion, "/")
	switch {
	case h.Kind == "" || h.APIVersion == "":
		l.addf(file, n.Line, "an object without apiVersion and kind: resources hold Kubernetes objects such as TriggerBindings and TriggerTemplates")
	case group == triggersGroup && h.Kind == "EventListener":
		l.warnf(file, n.Line, "ignored %s: the Switchyard manifest replaces EventListeners (the root's sources receive the webhooks; the app's triggers say what runs)", what)
	case group == triggersGroup && (h.Kind == "Trigger" || h.Kind == "TriggerGroup"):
		l.warnf(file, n.Line, "ignored %s: Switchyard's triggers are declared in the app manifest (triggers[], with run.bindings and run.template)", what)
	case group == triggersGroup && (h.Kind == "Interceptor" || h.Kind == "ClusterInterceptor"):
		l.warnf(file, n.Line, "ignored %s: sources verify webhooks, and match conditions and CEL overlays do the interceptors' work", what)
	case h.APIVersion == "v1" && h.Kind == "Secret":
		l.warnf(file, n.Line, "ignored %s: a webhook secret is read from the file or environment variable a root source names (secret: {file: ...} or {env: ...}), never from the rules", what)
	default:
		l.warnf(file, n.Line, "ignored %s: Switchyard reads only TriggerBindings, ClusterTriggerBindings and TriggerTemplates from resources (apply the rest with kubectl)", what)
	}
}

// decodeKube decodes a YAML node into a Kubernetes API type the way the API
// server does: as JSON, rejecting unknown fields. Problems point at the
// offending field's line when it can be found.
func (l *loader) decodeKube(file string, n *yaml.Node, v any) bool {
	if line, err := decodeKube(n, v); err != nil {
		l.addf(file, line, "%v", err)
		return false
	}
	return true
}

// jsonFieldRE finds the field a json decoding error names.
var jsonFieldRE = regexp.MustCompile(`(unknown|duplicate) field "(?:[^"]*\.)?([^".]+)"`)

func decodeKube(n *yaml.Node, v any) (int, error) {
	var tree any
	if err := n.Decode(&tree); err != nil {
		return n.Line, err
	}
	data, err := json.Marshal(tree)
	if err != nil {
		return n.Line, fmt.Errorf("not a JSON-compatible object: %v", err)
	}
	line, err := strictJSON(data, v)
	if err == nil {
		return 0, nil
	}
	if l := findKey(n, line); l > 0 {
		return l, err
	}
	return n.Line, err
}

// strictJSON decodes like the API server: field names are case-sensitive,
// unknown and duplicate fields are errors. On error it also returns the
// field name at fault, when known.
func strictJSON(data []byte, v any) (string, error) {
	strictErrs, err := kjson.UnmarshalStrict(data, v)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return te.Field[strings.LastIndex(te.Field, ".")+1:], fmt.Errorf("%s: cannot be a JSON %s", te.Field, te.Value)
		}
		return "", errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if len(strictErrs) > 0 {
		msg := strictErrs[0].Error()
		field := ""
		if m := jsonFieldRE.FindStringSubmatch(msg); m != nil {
			field = m[2]
			msg = fmt.Sprintf("field %s not found", m[2])
			if m[1] == "duplicate" {
				msg = fmt.Sprintf("field %s set twice", m[2])
			}
		}
		return field, errors.New(msg)
	}
	return "", nil
}

// findKey returns the line of the first mapping key named key in n, depth
// first, or 0.
func findKey(n *yaml.Node, key string) int {
	if n == nil || key == "" {
		return 0
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	for _, c := range n.Content {
		if line := findKey(c, key); line > 0 {
			return line
		}
	}
	return 0
}

func parseDuration(s string) (time.Duration, error) { return time.ParseDuration(s) }

// compileWorkspace decodes one workspace with Tekton's type and validates it
// with Tekton's rules.
func (l *loader) compileWorkspace(file string, line int, n *yaml.Node, t *trigger) {
	var wb pipelinev1.WorkspaceBinding
	if fl, err := decodeKube(n, &wb); err != nil {
		l.addf(file, fl, "trigger %q: workspace: %v", t.name, err)
		return
	}
	if wb.Name == "" {
		l.addf(file, line, "trigger %q: workspace: name is required", t.name)
		return
	}
	if ferr := wb.Validate(tektonContext); ferr != nil {
		l.addf(file, line, "trigger %q: workspace %q: %s", t.name, wb.Name, oneLine(ferr))
		return
	}
	if slices.ContainsFunc(t.workspaces, func(w pipelinev1.WorkspaceBinding) bool { return w.Name == wb.Name }) {
		l.addf(file, line, "trigger %q: workspace %q bound twice", t.name, wb.Name)
		return
	}
	t.workspaces = append(t.workspaces, wb)
}

// checkPipelineRunSpec runs Tekton's PipelineRun spec validation on what a
// pipelineRef trigger fixes at load: timeouts, workspaces, params.
func (t *trigger) checkPipelineRunSpec() error {
	spec := pipelinev1.PipelineRunSpec{
		PipelineRef: &pipelinev1.PipelineRef{Name: t.pipelineRef},
		Workspaces:  t.workspaces,
	}
	for _, p := range t.params {
		spec.Params = append(spec.Params, pipelinev1.Param{Name: p.Name, Value: *pipelinev1.NewStructuredValues(p.Value)})
	}
	to, err := t.timeouts()
	if err != nil {
		return err
	}
	spec.Timeouts = to
	if ferr := spec.Validate(apis.WithinCreate(tektonContext)); ferr != nil {
		return fmt.Errorf("tekton rejects this PipelineRun: %s", oneLine(ferr))
	}
	return nil
}

// timeouts returns the trigger's spec.timeouts, nil when none is set.
func (t *trigger) timeouts() (*pipelinev1.TimeoutFields, error) {
	if t.timeout == "" && t.tasksTimeout == "" && t.finallyTimeout == "" {
		return nil, nil
	}
	to := &pipelinev1.TimeoutFields{}
	for _, f := range []struct {
		value string
		dst   **metav1.Duration
	}{{t.timeout, &to.Pipeline}, {t.tasksTimeout, &to.Tasks}, {t.finallyTimeout, &to.Finally}} {
		if f.value == "" {
			continue
		}
		d, err := parseDuration(f.value)
		if err != nil {
			return nil, err
		}
		*f.dst = &metav1.Duration{Duration: d}
	}
	return to, nil
}

// compileTemplateRun compiles a Tekton Triggers-style run: bindings and a
// template that renders one PipelineRun.
func (l *loader) compileTemplateRun(file string, at func(...any) int, ts triggerSpec, a *app, t *trigger, objs *tektonObjects) {
	run := ts.Run
	if run.PipelineRef != "" || len(run.Params) > 0 || run.Timeout != "" || run.Timeouts != nil || len(run.Workspaces) > 0 {
		l.addf(file, at("run"), "trigger %q: a template run takes no pipelineRef, params, timeout(s) or workspaces: the template's PipelineRun says what to run", ts.Name)
	}
	t.namespace = l.grantedNamespace(file, at("run", "namespace"), ts.Name, a, run.Namespace)
	t.serviceAccount = l.grantedServiceAccount(file, at("run", "serviceAccount"), ts.Name, a, run.ServiceAccount)

	bound := l.compileBindings(file, at, ts, t, objs)

	tmpl := run.Template
	var tt *triggersv1.TriggerTemplate
	switch {
	case tmpl == nil:
		l.addf(file, at("run"), "trigger %q: bindings need a template (template.ref or template.spec)", ts.Name)
		return
	case tmpl.Ref != "" && tmpl.Spec.Kind != 0:
		l.addf(file, at("run", "template"), "trigger %q: template has a ref or a spec, not both", ts.Name)
		return
	case tmpl.Ref != "":
		if tt = objs.templates[tmpl.Ref]; tt == nil {
			l.addf(file, at("run", "template", "ref"), "trigger %q: no TriggerTemplate %q in the app's resources", ts.Name, tmpl.Ref)
			return
		}
	case tmpl.Spec.Kind != 0:
		tt = &triggersv1.TriggerTemplate{ObjectMeta: metav1.ObjectMeta{Name: ts.Name}}
		if line, err := decodeKube(&tmpl.Spec, &tt.Spec); err != nil {
			l.addf(file, line, "trigger %q: template.spec: %v", ts.Name, err)
			return
		}
		if ferr := tt.Validate(context.Background()); ferr != nil {
			l.addf(file, at("run", "template", "spec"), "trigger %q: template.spec: %s", ts.Name, oneLine(ferr))
			return
		}
		for _, p := range l.checkTemplateBody(tt) {
			l.addf(file, lineOf(&tmpl.Spec, p.path...), "trigger %q: template.spec: %s", ts.Name, p.msg)
		}
	default:
		l.addf(file, at("run", "template"), "trigger %q: template needs a ref or a spec", ts.Name)
		return
	}
	name := tt.Name
	for _, msg := range checkTemplate(tt, a, bound) {
		l.addf(file, at("run", "template"), "trigger %q: template %q: %s", ts.Name, name, msg)
	}
	t.bindsBody = slices.ContainsFunc(t.bindingParams, func(p triggersv1.Param) bool { return strings.Contains(p.Value, "$(body") })
	t.template = tt
	t.pipelineRef = staticRef(tt.Spec.ResourceTemplates[0].Raw)
	t.templateUID = slices.ContainsFunc(tt.Spec.ResourceTemplates, func(rt triggersv1.TriggerResourceTemplate) bool {
		return bytes.Contains(rt.Raw, uidVariable)
	})
}

// compileBindings resolves a template run's bindings into t.bindingParams
// and returns the names they bind.
func (l *loader) compileBindings(file string, at func(...any) int, ts triggerSpec, t *trigger, objs *tektonObjects) map[string]bool {
	bound := map[string]bool{}
	for j, b := range ts.Run.Bindings {
		line := at("run", "bindings", j)
		switch {
		case b.Ref != "" && (b.Name != "" || b.Value != nil):
			l.addf(file, line, "trigger %q: a binding has a ref, or a name and a value, not both", ts.Name)
		case b.Ref != "":
			kind := b.Kind
			if kind == "" {
				kind = kindTriggerBinding
			}
			if kind != kindTriggerBinding && kind != kindClusterTriggerBinding {
				l.addf(file, line, "trigger %q: binding kind %q: want TriggerBinding or ClusterTriggerBinding", ts.Name, b.Kind)
				continue
			}
			params, ok := objs.bindings[kind+"/"+b.Ref]
			if !ok {
				l.addf(file, line, "trigger %q: no %s %q in the app's resources", ts.Name, kind, b.Ref)
				continue
			}
			for _, p := range params {
				if bound[p.Name] {
					l.addf(file, line, "trigger %q: param %q is bound twice", ts.Name, p.Name)
				}
				bound[p.Name] = true
			}
			t.bindingParams = append(t.bindingParams, params...)
		case b.Name != "" && b.Value != nil:
			if !paramNameRE.MatchString(b.Name) {
				l.addf(file, line, "param name %q is not a valid Tekton parameter name", b.Name)
			}
			if bound[b.Name] {
				l.addf(file, line, "trigger %q: param %q is bound twice", ts.Name, b.Name)
			}
			bound[b.Name] = true
			l.checkExpressions(file, line, b.Name, *b.Value)
			t.bindingParams = append(t.bindingParams, triggersv1.Param{Name: b.Name, Value: *b.Value})
		default:
			l.addf(file, line, "trigger %q: a binding needs a ref, or a name and a value", ts.Name)
		}
	}
	return bound
}

// The runs a template may render: tekton.dev PipelineRuns and TaskRuns,
// v1 or v1beta1 (converted to v1). Nothing else: a root grants an app
// namespaces and service accounts to run pipelines and tasks in, not the
// right to create arbitrary objects there.
var (
	allowedRunKinds    = []string{KindPipelineRun, KindTaskRun}
	allowedRunVersions = []string{"tekton.dev/v1", "tekton.dev/v1beta1"}
)

const allowedRunsText = "templates render only tekton.dev PipelineRuns and TaskRuns (tekton.dev/v1 or v1beta1)"

// checkTemplate checks what can be known of a template before any event:
// each resource a PipelineRun or a TaskRun, namespace and service accounts
// within the grant where they are not templated, and every parameter
// without a default bound.
func checkTemplate(tt *triggersv1.TriggerTemplate, a *app, bound map[string]bool) []string {
	rts := tt.Spec.ResourceTemplates
	if len(rts) == 0 {
		return []string{"has no resource templates"}
	}
	var msgs []string
	for i, rt := range rts {
		prefix := ""
		if len(rts) > 1 {
			prefix = fmt.Sprintf("resource %d: ", i)
		}
		for _, m := range checkRunTemplate(rt.Raw, a) {
			msgs = append(msgs, prefix+m)
		}
	}
	for _, p := range tt.Spec.Params {
		if p.Default == nil && !bound[p.Name] {
			msgs = append(msgs, fmt.Sprintf("param %q has no default and no binding", p.Name))
		}
	}
	return msgs
}

// rendersTaskRun reports whether some resource of tt is a TaskRun.
func rendersTaskRun(tt *triggersv1.TriggerTemplate) bool {
	return slices.ContainsFunc(tt.Spec.ResourceTemplates, func(rt triggersv1.TriggerResourceTemplate) bool {
		var tm metav1.TypeMeta
		return json.Unmarshal(rt.Raw, &tm) == nil && tm.Kind == KindTaskRun
	})
}

// checkRunTemplate checks one resource template: its kind, and its
// namespace and service accounts where they are not templated.
func checkRunTemplate(raw []byte, a *app) []string {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return []string{fmt.Sprintf("resource template is not an object: %v", err)}
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if !slices.Contains(allowedRunKinds, kind) || !slices.Contains(allowedRunVersions, apiVersion) {
		return []string{fmt.Sprintf("renders %s %s: %s", apiVersion, kind, allowedRunsText)}
	}
	var msgs []string
	if ns := staticString(obj, "metadata", "namespace"); ns != "" && !slices.Contains(a.namespaces, ns) {
		msgs = append(msgs, fmt.Sprintf("namespace %q exceeds the grant of app %q (namespaces: %s)", ns, a.name, strings.Join(a.namespaces, ", ")))
	}
	// A TaskRun's spec.serviceAccountName; a PipelineRun's (v1beta1
	// spec.serviceAccountName, v1 taskRunTemplate, and per task).
	sas := []string{staticString(obj, "spec", "taskRunTemplate", "serviceAccountName"), staticString(obj, "spec", "serviceAccountName")}
	if spec, ok := obj["spec"].(map[string]any); ok {
		if trs, ok := spec["taskRunSpecs"].([]any); ok {
			for _, s := range trs {
				sas = append(sas, staticString(s, "serviceAccountName"), staticString(s, "taskServiceAccountName"))
			}
		}
	}
	for _, sa := range sas {
		if sa != "" && !slices.Contains(a.serviceAccounts, sa) {
			msgs = append(msgs, fmt.Sprintf("service account %q exceeds the grant of app %q (serviceAccounts: %s)", sa, a.name, strings.Join(a.serviceAccounts, ", ")))
		}
	}
	return msgs
}

// templateProblem is a problem of a TriggerTemplate's body, at a path
// under its spec.
type templateProblem struct {
	path []any
	msg  string
}

// checkTemplateBody refuses, in a TriggerTemplate's resource templates, a
// header expression that reads a credential (see headerProblem) and a
// label or annotation key that is Switchyard's own or templated: dispatch
// and the run watcher trust those keys.
func (l *loader) checkTemplateBody(tt *triggersv1.TriggerTemplate) []templateProblem {
	var out []templateProblem
	for i, rt := range tt.Spec.ResourceTemplates {
		at := func(path ...any) []any { return append([]any{"resourcetemplates", i}, path...) }
		for _, expr := range tektonExpressions(string(rt.Raw)) {
			if msg := headerProblem(expr, l.isCredential); msg != "" {
				out = append(out, templateProblem{at(), msg})
			}
		}
		var obj struct {
			Metadata struct {
				Labels      map[string]any `json:"labels"`
				Annotations map[string]any `json:"annotations"`
			} `json:"metadata"`
		}
		if json.Unmarshal(rt.Raw, &obj) != nil {
			continue // checkTemplate reports it
		}
		for _, f := range []struct {
			field string
			keys  map[string]any
		}{{"labels", obj.Metadata.Labels}, {"annotations", obj.Metadata.Annotations}} {
			for _, k := range slices.Sorted(maps.Keys(f.keys)) {
				if msg := reservedKeyProblem(k); msg != "" {
					out = append(out, templateProblem{at("metadata", f.field, k), fmt.Sprintf("metadata.%s: %s", f.field, msg)})
				}
			}
		}
	}
	return out
}

// managedByLabel is the label the run watcher selects Switchyard's runs by.
const managedByLabel = "app.kubernetes.io/managed-by"

// reservedKeyProblem says why a template may not set a label or annotation
// key, "" when it may.
func reservedKeyProblem(key string) string {
	switch {
	case strings.Contains(key, "$("):
		return fmt.Sprintf("key %q is templated: keys are fixed at load, so none can become Switchyard's", key)
	case strings.HasPrefix(strings.ToLower(key), "switchyard.dev/") || strings.EqualFold(key, managedByLabel):
		return fmt.Sprintf("key %q is Switchyard's: dispatch sets it, and a template that set it could pass for another app's run", key)
	}
	return ""
}

// staticString returns the string at a path of a decoded JSON object, ""
// when absent or templated.
func staticString(v any, path ...string) string {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	s, _ := v.(string)
	if strings.Contains(s, "$(") {
		return ""
	}
	return s
}

// staticRef returns spec.pipelineRef.name, or a TaskRun's
// spec.taskRef.name, of a resource template when it is not templated, for
// explain.
func staticRef(raw []byte) string {
	var obj map[string]any
	if json.Unmarshal(raw, &obj) != nil {
		return ""
	}
	if ref := staticString(obj, "spec", "pipelineRef", "name"); ref != "" {
		return ref
	}
	return staticString(obj, "spec", "taskRef", "name")
}

// oneLine makes a Tekton field error fit a file:line: message line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
