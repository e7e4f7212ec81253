package tektonimport

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"github.com/tektoncd/triggers/pkg/interceptors/cel"
	tttemplate "github.com/tektoncd/triggers/pkg/template"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// An example of the vendored tektoncd/triggers examples with a sample
// request (its curl.sh): imported, it must validate, fire, and render what
// Tekton Triggers' own code renders for the same request: the same
// resources (kind, apiVersion, the pipeline or task they run) with the
// same params.
type example struct {
	name   string // "v1beta1/github"
	files  []string
	header http.Header
	body   []byte
}

// exampleNotes are the examples that do not round-trip, with why. The
// same reasons are in docs/migrate-from-tekton-triggers.md.
var exampleNotes = map[string]string{
	"v1beta1/create-configmap":                  "its template creates a ConfigMap: not translated",
	"v1beta1/github-add-changed-files-pr":       "addChangedFiles on a pull request asks the GitHub API on the request path; Switchyard lists changed files for pushes only",
	"v1beta1/github-add-changed-files-push-cel": "its sample push has no ref, which GitHub always sends: Switchyard answers 400",
	"v1beta1/github-owners":                     "githubOwners asks the GitHub API on the request path: not translated",
	"v1beta1/slack":                             "the slack interceptor has no Switchyard source: not translated",
}

func TestImportExamplesRoundTrip(t *testing.T) {
	var passed, total int
	var report []string
	for _, ex := range readExamples(t) {
		total++
		got, err := switchyardRender(t, ex)
		if err == nil {
			var want []rendered
			if want, err = tektonRender(t, ex); err == nil && !slices.Equal(got, want) {
				err = fmt.Errorf("renders differ:\nswitchyard: %v\ntekton:     %v", got, want)
			}
			if err == nil && len(got) == 0 {
				err = fmt.Errorf("nothing fires, in either")
			}
		}
		why, listed := exampleNotes[ex.name]
		switch {
		case err == nil && listed:
			t.Errorf("%s: round-trips, but is listed as not (%s): remove it from exampleNotes and the docs", ex.name, why)
		case err == nil:
			passed++
			report = append(report, ex.name+": ok")
		case !listed:
			t.Errorf("%s: %v", ex.name, err)
		default:
			report = append(report, ex.name+": "+why+" ("+err.Error()+")")
		}
	}
	t.Logf("%d of %d examples round-trip through router import:\n%s", passed, total, strings.Join(report, "\n"))
}

// rendered is what the comparison looks at in one created resource.
type rendered struct{ Kind, APIVersion, Ref, Params string }

func (r rendered) String() string {
	return r.APIVersion + " " + r.Kind + " " + r.Ref + " [" + r.Params + "]"
}

func renderedOf(raw []byte) (rendered, error) {
	var obj struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			PipelineRef  *struct{ Name string } `json:"pipelineRef"`
			TaskRef      *struct{ Name string } `json:"taskRef"`
			TaskSpec     json.RawMessage        `json:"taskSpec"`
			PipelineSpec json.RawMessage        `json:"pipelineSpec"`
			Params       []struct {
				Name  string `json:"name"`
				Value any    `json:"value"`
			} `json:"params"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return rendered{}, err
	}
	// The group, not the version: Switchyard creates v1beta1 objects as v1,
	// as Tekton itself stores them.
	group, _, _ := strings.Cut(obj.APIVersion, "/")
	r := rendered{Kind: obj.Kind, APIVersion: group}
	switch s := obj.Spec; {
	case s.PipelineRef != nil:
		r.Ref = "pipelineRef:" + s.PipelineRef.Name
	case s.TaskRef != nil:
		r.Ref = "taskRef:" + s.TaskRef.Name
	case s.TaskSpec != nil:
		r.Ref = "taskSpec"
	case s.PipelineSpec != nil:
		r.Ref = "pipelineSpec"
	}
	var ps []string
	for _, p := range obj.Spec.Params {
		ps = append(ps, fmt.Sprintf("%s=%v", p.Name, p.Value))
	}
	sort.Strings(ps)
	r.Params = strings.Join(ps, " ")
	return r, nil
}

func sortRendered(rs []rendered) []rendered {
	sort.Slice(rs, func(i, j int) bool { return rs[i].String() < rs[j].String() })
	return rs
}

// switchyardRender imports the example, loads the result as `router
// validate` does, and routes the sample request through every source of
// the rules, as the router would if the sender posted it there.
func switchyardRender(t *testing.T, ex example) ([]rendered, error) {
	c, err := ReadFiles(ex.files)
	if err != nil {
		return nil, err
	}
	res, err := Translate(c)
	if err != nil {
		return nil, err
	}
	if res.Apps() == 0 {
		return nil, fmt.Errorf("not imported: %v", res.Notes)
	}
	dir := t.TempDir()
	if err := res.Write(dir, ex.files); err != nil {
		return nil, err
	}
	rules, err := routing.LoadDir(dir, ingest.LoadOptions())
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	var out []rendered
	for _, src := range rules.Sources() {
		r, err := ingest.Normalize(src.Kind, &ingest.Request{Header: ex.header.Clone(), Body: ex.body})
		if err != nil {
			return nil, fmt.Errorf("normalize as %s: %w", src.Kind, err)
		}
		for i := range r.Events {
			in := ingest.RouteInput(rules, src, &r.Events[i], ex.header.Clone())
			for _, tg := range rules.Route(in) {
				if len(tg.Resource) == 0 {
					return nil, fmt.Errorf("target %s/%s has no rendered resource", tg.App, tg.Trigger)
				}
				rd, err := renderedOf(tg.Resource)
				if err != nil {
					return nil, err
				}
				out = append(out, rd)
			}
		}
	}
	return sortRendered(out), nil
}

// tektonRender runs the example's EventListener the way Tekton Triggers
// does, with its own code: the CEL interceptor (filters, overlays), the Git
// interceptors' event-type check (the signature is not what is compared),
// then ResolveTrigger, ResolveParams and ResolveResources.
func tektonRender(t *testing.T, ex example) ([]rendered, error) {
	c, err := ReadFiles(ex.files)
	if err != nil {
		return nil, err
	}
	tr := &translator{c: c, res: &Result{}, sources: map[string]*source{}}
	objs, err := tektonObjects(c)
	if err != nil {
		return nil, err
	}
	var out []rendered
	for _, el := range c.EventListeners {
		for _, et := range tr.triggers(el.Object) {
			ext, fire, err := intercept(et.spec.Interceptors, ex)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", et.where, err)
			}
			if !fire {
				continue
			}
			rt, err := tttemplate.ResolveTrigger(triggersv1.Trigger{Spec: et.spec}, objs.binding, objs.clusterBinding, objs.template)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", et.where, err)
			}
			params, err := tttemplate.ResolveParams(rt, ex.body, ex.header, ext, tttemplate.NewTriggerContext("id"))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", et.where, err)
			}
			for _, raw := range tttemplate.ResolveResources(rt.TriggerTemplate, params) {
				rd, err := renderedOf(raw)
				if err != nil {
					return nil, err
				}
				out = append(out, rd)
			}
		}
	}
	return sortRendered(out), nil
}

func intercept(ics []*triggersv1.TriggerInterceptor, ex example) (map[string]any, bool, error) {
	ext := map[string]any{}
	for _, ic := range ics {
		ps, err := decodeParams(ic)
		if err != nil {
			return nil, false, err
		}
		switch name := ic.Ref.Name; {
		case name == "cel":
			params := map[string]any{}
			for _, p := range ic.Params {
				var v any
				if err := json.Unmarshal(p.Value.Raw, &v); err != nil {
					return nil, false, err
				}
				params[p.Name] = v
			}
			resp := cel.NewInterceptor(nil).Process(context.Background(), &triggersv1.InterceptorRequest{
				Body: string(ex.body), Header: ex.header, Extensions: maps.Clone(ext), InterceptorParams: params,
				Context: &triggersv1.TriggerContext{EventURL: "http://localhost:8080", EventID: "id"},
			})
			if !resp.Continue {
				return nil, false, nil
			}
			maps.Copy(ext, resp.Extensions)
		case eventHeaders[name] != "":
			if len(ps.EventTypes) > 0 && !slices.Contains(ps.EventTypes, ex.header.Get(eventHeaders[name])) {
				return nil, false, nil
			}
		default:
			return nil, false, fmt.Errorf("interceptor %q is not simulated", name)
		}
	}
	return ext, true, nil
}

// objects are the example's bindings and templates, for ResolveTrigger.
type objects struct {
	bindings        map[string]*triggersv1.TriggerBinding
	clusterBindings map[string]*triggersv1.ClusterTriggerBinding
	templates       map[string]*triggersv1.TriggerTemplate
}

func (o objects) binding(name string) (*triggersv1.TriggerBinding, error) {
	if b, ok := o.bindings[name]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("no TriggerBinding %s", name)
}

func (o objects) clusterBinding(name string) (*triggersv1.ClusterTriggerBinding, error) {
	if b, ok := o.clusterBindings[name]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("no ClusterTriggerBinding %s", name)
}

func (o objects) template(name string) (*triggersv1.TriggerTemplate, error) {
	if tt, ok := o.templates[name]; ok {
		return tt, nil
	}
	return nil, fmt.Errorf("no TriggerTemplate %s", name)
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// tektonObjects decodes the bindings and templates (v1alpha1 and v1beta1
// have the same schema for these kinds).
func tektonObjects(c *Config) (objects, error) {
	o := objects{map[string]*triggersv1.TriggerBinding{}, map[string]*triggersv1.ClusterTriggerBinding{}, map[string]*triggersv1.TriggerTemplate{}}
	for _, f := range c.Files {
		for _, doc := range docSep.Split(string(f.Data), -1) {
			var h header
			if yaml.Unmarshal([]byte(doc), &h) != nil {
				continue
			}
			var err error
			switch h.Kind {
			case "TriggerBinding":
				var b triggersv1.TriggerBinding
				err = yaml.Unmarshal([]byte(doc), &b)
				o.bindings[b.Name] = &b
			case "ClusterTriggerBinding":
				var b triggersv1.ClusterTriggerBinding
				err = yaml.Unmarshal([]byte(doc), &b)
				o.clusterBindings[b.Name] = &b
			case "TriggerTemplate":
				var tt triggersv1.TriggerTemplate
				err = yaml.Unmarshal([]byte(doc), &tt)
				o.templates[tt.Name] = &tt
			}
			if err != nil {
				return o, fmt.Errorf("%s: %w", f.Path, err)
			}
		}
	}
	return o, nil
}

var (
	curlHeader = regexp.MustCompile(`-H\s+'([^:']+):\s*([^']*)'`)
	curlData   = regexp.MustCompile(`(?s)(?:-d|--data)\s+'(.*?)'\s*\\?\s*\n`)
	curlFile   = regexp.MustCompile(`--data-binary\s+"@examples/([^"]+)"`)
)

// readExamples finds every example directory with an EventListener and a
// curl.sh, with the request the curl.sh sends. The shared bindings and
// templates directories of the same API version are added as inputs, as a
// user would apply them too.
func readExamples(t *testing.T) []example {
	t.Helper()
	curls, err := filepath.Glob(filepath.Join(examples, "*", "*", "curl.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	for _, curl := range curls {
		dir := filepath.Dir(curl)
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		script, err := os.ReadFile(curl)
		if err != nil {
			t.Fatal(err)
		}
		ex := example{name: strings.TrimPrefix(filepath.ToSlash(dir), examples+"/"), files: files, header: http.Header{}}
		for _, m := range curlHeader.FindAllStringSubmatch(string(script), -1) {
			ex.header.Add(m[1], m[2])
		}
		if m := curlFile.FindStringSubmatch(string(script)); m != nil {
			if ex.body, err = os.ReadFile(filepath.Join(examples, m[1])); err != nil {
				t.Fatal(err)
			}
		} else if m := curlData.FindStringSubmatch(string(script) + "\n"); m != nil {
			ex.body = []byte(m[1])
		}
		if ex.header.Get("Content-Type") == "" {
			ex.header.Set("Content-Type", "application/json")
		}
		version := strings.SplitN(ex.name, "/", 2)[0]
		for _, shared := range []string{"triggerbindings", "clustertriggerbindings", "triggertemplates"} {
			more, _ := filepath.Glob(filepath.Join(examples, version, shared, "*.yaml"))
			ex.files = append(ex.files, more...)
		}
		out = append(out, ex)
	}
	if len(out) < 15 {
		t.Fatalf("found %d examples with a curl.sh; the vendored directory is incomplete", len(out))
	}
	return out
}

// TestImportEveryExampleListener imports every EventListener of the
// vendored examples (with its directory's files and the shared bindings
// and templates) and checks that what is written validates: a trigger is
// either translated into valid rules or reported with its manual step.
func TestImportEveryExampleListener(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(examples, "*", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var imported, noted int
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "kind: EventListener") {
			continue
		}
		dir := filepath.Dir(p)
		inputs := []string{p}
		if filepath.Base(dir) != "eventlisteners" {
			siblings, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
			inputs = siblings
		}
		version := filepath.Base(filepath.Dir(dir))
		for _, shared := range []string{"triggerbindings", "clustertriggerbindings", "triggertemplates"} {
			more, _ := filepath.Glob(filepath.Join(examples, version, shared, "*.yaml"))
			inputs = append(inputs, more...)
		}
		name := strings.TrimPrefix(filepath.ToSlash(p), examples+"/")
		t.Run(name, func(t *testing.T) {
			c, err := ReadFiles(inputs)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Translate(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range res.Notes {
				if !strings.HasPrefix(n.Where, "source ") {
					noted++
					t.Logf("not translated: %s", n)
				}
			}
			if res.Apps() == 0 {
				if len(res.Notes) == 0 {
					t.Error("nothing imported and nothing said")
				}
				return
			}
			out := t.TempDir()
			if err := res.Write(out, inputs); err != nil {
				t.Fatal(err)
			}
			if _, err := routing.LoadDir(out, ingest.LoadOptions()); err != nil {
				t.Errorf("the imported rules do not validate: %v", err)
			}
			imported++
		})
	}
	t.Logf("%d EventListener files imported into valid rules; %d notes on what was not translated", imported, noted)
}
