package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cloudevents/sdk-go/v2/event"
	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	triggerscel "github.com/tektoncd/triggers/pkg/interceptors/cel"
	"github.com/tektoncd/triggers/pkg/template"
	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// tektonExamplesDir holds the vendored tektoncd/triggers examples (see its
// README for the version).
const tektonExamplesDir = "../../test/testdata/tekton-triggers-examples"

// tektonExampleDifferences are the examples that do not render the same
// through Switchyard, each with a substring of why; docs/migrate-from-
// tekton-triggers.md lists them. Every other example must pass.
var tektonExampleDifferences = map[string]string{
	"v1beta1/create-configmap": "renders v1 ConfigMap",             // Switchyard creates only PipelineRuns and TaskRuns
	"v1beta1/slack":            "interceptor slack",                // form-encoded body made JSON by Tekton's Slack interceptor
	"v1beta1/github-owners":    "interceptor github: githubOwners", // an API call to GitHub on the request path
}

// TestTektonExamples renders every vendored tektoncd/triggers example for
// its own payload through Switchyard (its files, unchanged, as an app's
// resources; the EventListener's triggers written as Switchyard triggers)
// and through Tekton Triggers' own code, and compares what each creates:
// the kind, the refs and the params of every resource.
func TestTektonExamples(t *testing.T) {
	// The examples whose EventListener lists its triggers inline, which
	// this test writes as Switchyard triggers by hand. The others (Trigger
	// references, label and namespace selectors, trigger groups) go through
	// `router import`: internal/tektonimport's TestImportExamplesRoundTrip.
	dirs := []string{
		"v1alpha1/bitbucket-server",
		"v1alpha1/embedded-trigger",
		"v1alpha1/github",
		"v1alpha1/gitlab",
		"v1beta1/bitbucket-cloud",
		"v1beta1/bitbucket-server",
		"v1beta1/create-configmap",
		"v1beta1/embedded-trigger",
		"v1beta1/github",
		"v1beta1/github-add-changed-files-push-cel",
		"v1beta1/github-owners",
		"v1beta1/gitlab",
		"v1beta1/label-selector",
		"v1beta1/slack",
	}
	var passed []string
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			err := compareTektonExample(t, dir)
			want, known := tektonExampleDifferences[dir]
			switch {
			case err == nil && known && want != "":
				t.Errorf("listed as differing (%q) but renders the same: update the list and the docs", want)
			case err == nil:
				passed = append(passed, dir)
			case !known || want == "":
				t.Errorf("differs from Tekton Triggers: %v", err)
			case !strings.Contains(err.Error(), want):
				t.Errorf("differs for another reason than listed (%q): %v", want, err)
			}
		})
	}
	t.Logf("%d of %d examples render as Tekton Triggers renders them: %s", len(passed), len(dirs), strings.Join(passed, ", "))
}

// tektonExample is one example: its Tekton Triggers objects and request.
type tektonExample struct {
	files     map[string][]byte
	listeners []triggersv1.EventListener
	triggers  map[string]triggersv1.Trigger
	bindings  map[string][]triggersv1.Param // "<kind>/<name>"
	templates map[string]*triggersv1.TriggerTemplate
	body      []byte
	header    http.Header
}

func compareTektonExample(t *testing.T, dir string) error {
	t.Helper()
	ex, err := readTektonExample(filepath.Join(tektonExamplesDir, dir))
	if err != nil {
		t.Fatal(err)
	}
	elTriggers := ex.listenerTriggers()
	if len(elTriggers) == 0 {
		t.Fatal("no EventListener trigger")
	}
	var errs []error
	fired := 0
	for i, tr := range elTriggers {
		want, wantErr := ex.tektonRender(tr)
		got, gotErr := ex.switchyardRender(t, tr)
		var unsupported unsupportedInterceptor
		if errors.As(wantErr, &unsupported) {
			errs = append(errs, fmt.Errorf("trigger %d: %w", i, wantErr))
			continue
		}
		if wantErr != nil {
			// Tekton does not fire either: Switchyard must not.
			if gotErr == nil && len(got) > 0 {
				errs = append(errs, fmt.Errorf("trigger %d: Tekton does not fire (%v), Switchyard does", i, wantErr))
			}
			continue
		}
		if gotErr != nil {
			errs = append(errs, fmt.Errorf("trigger %d: %w", i, gotErr))
			continue
		}
		if diff := diffRuns(want, got); diff != "" {
			errs = append(errs, fmt.Errorf("trigger %d: %s", i, diff))
		}
		fired += len(want)
	}
	if fired == 0 && len(errs) == 0 {
		// Agreeing on nothing proves nothing.
		errs = append(errs, errors.New("Tekton Triggers creates nothing for the example's payload"))
	}
	return errors.Join(errs...)
}

// unsupportedInterceptor is an interceptor this test cannot run Tekton's
// code for, nor Switchyard replace.
type unsupportedInterceptor string

func (u unsupportedInterceptor) Error() string {
	return "interceptor " + string(u) + " has no Switchyard equivalent"
}

// readTektonExample reads an example directory: every YAML document, and
// the request its curl.sh sends.
func readTektonExample(dir string) (*tektonExample, error) {
	ex := &tektonExample{files: map[string][]byte{}, triggers: map[string]triggersv1.Trigger{},
		bindings: map[string][]triggersv1.Param{}, templates: map[string]*triggersv1.TriggerTemplate{}, header: http.Header{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		switch filepath.Ext(e.Name()) {
		case ".yaml":
			ex.files[e.Name()] = data
			if err := ex.addObjects(data); err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name(), err)
			}
		case ".sh":
			if err := ex.readCurl(dir, string(data)); err != nil {
				return nil, err
			}
		}
	}
	return ex, nil
}

var (
	curlHeaderRE = regexp.MustCompile(`-H '([^:']+):\s*([^']*)'`)
	curlDataRE   = regexp.MustCompile(`(?s)-d '(.*?)'(?:\s|$)`)
	curlFileRE   = regexp.MustCompile(`--data-binary "@[^"]*/([^"/]+)"`)
)

func (ex *tektonExample) readCurl(dir, sh string) error {
	for _, m := range curlHeaderRE.FindAllStringSubmatch(sh, -1) {
		ex.header.Add(m[1], m[2])
	}
	if m := curlDataRE.FindStringSubmatch(sh); m != nil {
		ex.body = []byte(m[1])
		if ex.header.Get("Content-Type") == "" {
			ex.header.Set("Content-Type", "application/x-www-form-urlencoded") // what curl -d sends
		}
		return nil
	}
	if m := curlFileRE.FindStringSubmatch(sh); m != nil {
		var err error
		ex.body, err = os.ReadFile(filepath.Join(dir, m[1]))
		return err
	}
	return errors.New("curl.sh sends no payload")
}

// addObjects decodes the Tekton Triggers objects of a file into v1beta1
// types (v1alpha1 ones too: the schemas match), leniently, as a reader of
// the example, not as Switchyard's loader.
func (ex *tektonExample) addObjects(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if doc == nil {
			continue
		}
		j, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		kind, _ := doc["kind"].(string)
		var meta struct {
			Metadata struct{ Name string } `json:"metadata"`
		}
		_ = json.Unmarshal(j, &meta)
		name := meta.Metadata.Name
		switch kind {
		case "EventListener":
			var el triggersv1.EventListener
			err = sigsyaml.Unmarshal(j, &el)
			ex.listeners = append(ex.listeners, el)
		case "Trigger":
			var tr triggersv1.Trigger
			err = sigsyaml.Unmarshal(j, &tr)
			ex.triggers[name] = tr
		case "TriggerBinding", "ClusterTriggerBinding":
			var tb triggersv1.TriggerBinding
			err = sigsyaml.Unmarshal(j, &tb)
			ex.bindings[kind+"/"+name] = tb.Spec.Params
		case "TriggerTemplate":
			tt := &triggersv1.TriggerTemplate{}
			err = sigsyaml.Unmarshal(j, tt)
			ex.templates[name] = tt
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
	}
}

// listenerTriggers are the triggers the EventListeners run: their own,
// triggerRefs resolved, and the Trigger objects their labelSelector picks.
func (ex *tektonExample) listenerTriggers() []triggersv1.EventListenerTrigger {
	var out []triggersv1.EventListenerTrigger
	for _, el := range ex.listeners {
		for _, tr := range el.Spec.Triggers {
			if tr.TriggerRef != "" {
				ref := ex.triggers[tr.TriggerRef]
				tr = triggerOf(ref)
			}
			out = append(out, tr)
		}
		if sel := el.Spec.LabelSelector; sel != nil {
			names := make([]string, 0, len(ex.triggers))
			for name := range ex.triggers {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				tr := ex.triggers[name]
				if labelsMatch(tr.Labels, sel.MatchLabels) {
					out = append(out, triggerOf(tr))
				}
			}
		}
	}
	return out
}

func triggerOf(tr triggersv1.Trigger) triggersv1.EventListenerTrigger {
	return triggersv1.EventListenerTrigger{Name: tr.Name, Bindings: tr.Spec.Bindings, Template: &tr.Spec.Template, Interceptors: tr.Spec.Interceptors}
}

func labelsMatch(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// tektonRender is what Tekton Triggers creates for the trigger: its CEL and
// GitHub interceptors run by Tekton's code, bindings and template resolved
// by pkg/template.
func (ex *tektonExample) tektonRender(tr triggersv1.EventListenerTrigger) ([]json.RawMessage, error) {
	ext := map[string]any{}
	for _, ic := range tr.Interceptors {
		params := map[string]any{}
		for _, p := range ic.Params {
			var v any
			if err := json.Unmarshal(p.Value.Raw, &v); err != nil {
				return nil, err
			}
			params[p.Name] = v
		}
		req := &triggersv1.InterceptorRequest{Body: string(ex.body), Header: ex.header, Extensions: ext, InterceptorParams: params,
			Context: &triggersv1.TriggerContext{EventURL: "http://listener", EventID: "event-1", TriggerID: "namespaces/default/triggers/" + tr.Name}}
		var resp *triggersv1.InterceptorResponse
		switch ic.Ref.Name {
		case "cel":
			resp = triggerscel.NewInterceptor(nil).Process(context.Background(), req)
		case "github":
			resp = githubChangedFiles(params, ex.header, ex.body)
		case "gitlab", "bitbucket":
			continue // verification and event types only
		default:
			return nil, unsupportedInterceptor(ic.Ref.Name)
		}
		if !resp.Continue {
			return nil, fmt.Errorf("interceptor %s: %v", ic.Ref.Name, resp.Status.Message)
		}
		for k, v := range resp.Extensions {
			ext[k] = v
		}
	}
	var bindings []triggersv1.Param
	for _, b := range tr.Bindings {
		if b.Ref != "" {
			kind := string(b.Kind)
			if kind == "" {
				kind = "TriggerBinding"
			}
			bindings = append(bindings, ex.bindings[kind+"/"+b.Ref]...)
		} else {
			bindings = append(bindings, triggersv1.Param{Name: b.Name, Value: *b.Value})
		}
	}
	tt := &triggersv1.TriggerTemplate{}
	if tr.Template.Ref != nil {
		tt = ex.templates[*tr.Template.Ref]
	} else {
		tt.Spec = *tr.Template.Spec
	}
	params, err := template.ResolveParams(template.ResolvedTrigger{BindingParams: bindings, TriggerTemplate: tt}, ex.body, ex.header, ext, template.NewTriggerContext("event-1"))
	if err != nil {
		return nil, err
	}
	return template.ResolveResources(tt, params), nil
}

// switchyardRender loads the example's files unchanged as the resources of
// an app whose trigger says what the EventListener trigger says, routes
// the example's request and returns what dispatch would create.
func (ex *tektonExample) switchyardRender(t *testing.T, tr triggersv1.EventListenerTrigger) ([]Target, error) {
	t.Helper()
	trigger, err := switchyardTrigger(tr)
	if err != nil {
		return nil, err
	}
	app := map[string]any{"apiVersion": "switchyard.dev/v1alpha1", "kind": "App", "name": "example", "triggers": []any{trigger}}
	fsys := fstest.MapFS{}
	var resources []string
	for name, data := range ex.files {
		fsys["apps/example/tekton/"+name] = &fstest.MapFile{Data: data}
		resources = append(resources, "tekton/"+name)
	}
	sort.Strings(resources)
	app["resources"] = resources
	appYAML, err := sigsyaml.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	fsys["apps/example/app.yaml"] = &fstest.MapFile{Data: appYAML}
	fsys["root.yaml"] = &fstest.MapFile{Data: []byte(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: example
    manifest: apps/example/app.yaml
    namespaces: [default]
    serviceAccounts: [default]
    sources: [github]
`)}
	rules, err := Load(fsys, "rules", Options{})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	ev := event.New()
	ev.SetID("event-1")
	ev.SetSource("https://example.com")
	ev.SetType("dev.example")
	if err := ev.SetData(event.ApplicationJSON, ex.body); err != nil {
		t.Fatal(err)
	}
	d := rules.Explain(Input{Source: "github", Event: &ev, Header: ex.header})
	if len(d.Unmatched) > 0 {
		return nil, errors.New(d.Unmatched[0].Reason)
	}
	return d.Targets, nil
}

// switchyardTrigger writes an EventListener trigger as a Switchyard
// trigger: a CEL interceptor's filter becomes `when`, its overlays
// `overlays`; bindings and template carry over as they are.
func switchyardTrigger(tr triggersv1.EventListenerTrigger) (map[string]any, error) {
	out := map[string]any{"name": "t"}
	var whens []string
	var overlays []any
	for _, ic := range tr.Interceptors {
		switch ic.Ref.Name {
		case "github", "gitlab", "bitbucket":
			for _, p := range ic.Params {
				if p.Name == "githubOwners" {
					return nil, errors.New("interceptor github: githubOwners needs the GitHub API")
				}
			}
			continue // the source verifies; addChangedFiles is $(extensions.changed_files)
		case "cel":
		default:
			return nil, fmt.Errorf("interceptor %s has no Switchyard equivalent", ic.Ref.Name)
		}
		for _, p := range ic.Params {
			var v any
			if err := json.Unmarshal(p.Value.Raw, &v); err != nil {
				return nil, err
			}
			switch p.Name {
			case "filter":
				whens = append(whens, "("+v.(string)+")")
			case "overlays":
				overlays = append(overlays, v.([]any)...)
			}
		}
	}
	if len(whens) > 0 {
		out["match"] = map[string]any{"when": strings.Join(whens, " && ")}
	}
	if len(overlays) > 0 {
		out["overlays"] = overlays
	}
	run := map[string]any{}
	var bindings []any
	for _, b := range tr.Bindings {
		if b.Ref != "" {
			bindings = append(bindings, map[string]any{"ref": b.Ref, "kind": string(b.Kind)})
		} else {
			bindings = append(bindings, map[string]any{"name": b.Name, "value": *b.Value})
		}
	}
	run["bindings"] = bindings
	if tr.Template.Ref != nil {
		run["template"] = map[string]any{"ref": *tr.Template.Ref}
	} else {
		run["template"] = map[string]any{"spec": tr.Template.Spec}
	}
	out["run"] = run
	return out, nil
}

// githubChangedFiles is the part of Tekton's GitHub interceptor the
// examples use past verification: eventTypes, and addChangedFiles for a
// push. Its parseBodyForChangedFiles is transcribed here from
// pkg/interceptors/github/github.go (v0.37.0): importing that package would
// pull go-github into go.mod for a test. Signatures are the source's.
func githubChangedFiles(params map[string]any, header http.Header, body []byte) *triggersv1.InterceptorResponse {
	event := header.Get("X-Github-Event")
	if types, ok := params["eventTypes"].([]any); ok && !slices.Contains(types, any(event)) {
		return &triggersv1.InterceptorResponse{Status: triggersv1.Status{Message: "event type " + event + " is not allowed"}}
	}
	add, _ := params["addChangedFiles"].(map[string]any)
	if enabled, _ := add["enabled"].(bool); !enabled || event != "push" {
		return &triggersv1.InterceptorResponse{Continue: true}
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		return &triggersv1.InterceptorResponse{Status: triggersv1.Status{Message: err.Error()}}
	}
	changed := []string{}
	commits, _ := p["commits"].([]any)
	for _, c := range commits {
		for _, k := range []string{"added", "modified", "removed"} {
			files, ok := c.(map[string]any)[k].([]any)
			if !ok {
				return &triggersv1.InterceptorResponse{Status: triggersv1.Status{Message: "payload body missing 'commits.*." + k + "' field"}}
			}
			for _, f := range files {
				changed = append(changed, fmt.Sprintf("%v", f))
			}
		}
	}
	return &triggersv1.InterceptorResponse{Continue: true, Extensions: map[string]any{"changed_files": strings.Join(changed, ",")}}
}

// runSummary is what the comparison looks at of a created run: kind, ref
// and params, and the whole spec (embedded taskSpecs and scripts hold
// params too) as tekton.dev/v1, without the service account Switchyard
// fills in from the grant.
type runSummary struct {
	Kind   string
	Ref    string
	Params map[string]string
	Spec   string
}

func summarize(raw []byte) (runSummary, error) {
	s, err := summarizeRefs(raw)
	if err != nil {
		return s, err
	}
	run, err := decodeRun(raw)
	if err != nil {
		return s, err
	}
	var spec any
	if run.tr != nil {
		run.tr.Spec.ServiceAccountName = ""
		spec = run.tr.Spec
	} else {
		run.pr.Spec.TaskRunTemplate.ServiceAccountName = ""
		spec = run.pr.Spec
	}
	b, err := json.Marshal(spec)
	s.Spec = string(b)
	return s, err
}

func summarizeRefs(raw []byte) (runSummary, error) {
	var obj struct {
		Kind string `json:"kind"`
		Spec struct {
			PipelineRef *struct{ Name string } `json:"pipelineRef"`
			TaskRef     *struct{ Name string } `json:"taskRef"`
			Params      []struct {
				Name  string          `json:"name"`
				Value json.RawMessage `json:"value"`
			} `json:"params"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return runSummary{}, err
	}
	s := runSummary{Kind: obj.Kind, Params: map[string]string{}}
	switch {
	case obj.Spec.PipelineRef != nil:
		s.Ref = "pipeline/" + obj.Spec.PipelineRef.Name
	case obj.Spec.TaskRef != nil:
		s.Ref = "task/" + obj.Spec.TaskRef.Name
	}
	for _, p := range obj.Spec.Params {
		s.Params[p.Name] = string(p.Value)
	}
	return s, nil
}

// diffRuns compares Tekton's rendered resources with Switchyard's targets,
// "" when they agree.
func diffRuns(want []json.RawMessage, got []Target) string {
	if len(want) != len(got) {
		return fmt.Sprintf("Tekton creates %d resources, Switchyard %d", len(want), len(got))
	}
	var diffs []string
	for i := range want {
		w, err := summarize(want[i])
		if err != nil {
			return err.Error()
		}
		g, err := summarize(got[i].Resource)
		if err != nil {
			return err.Error()
		}
		if w.Kind != g.Kind || w.Ref != g.Ref {
			diffs = append(diffs, fmt.Sprintf("resource %d: Tekton %s %s, Switchyard %s %s", i, w.Kind, w.Ref, g.Kind, g.Ref))
		}
		if w.Spec != g.Spec {
			diffs = append(diffs, fmt.Sprintf("resource %d spec: Tekton %s, Switchyard %s", i, w.Spec, g.Spec))
		}
		keys := map[string]bool{}
		for k := range w.Params {
			keys[k] = true
		}
		for k := range g.Params {
			keys[k] = true
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range keys {
				if !yield(k) {
					return
				}
			}
		}) {
			if w.Params[k] != g.Params[k] {
				diffs = append(diffs, fmt.Sprintf("resource %d param %s: Tekton %s, Switchyard %s", i, k, w.Params[k], g.Params[k]))
			}
		}
	}
	return strings.Join(diffs, "; ")
}
