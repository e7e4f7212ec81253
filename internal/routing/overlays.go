package routing

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/tidwall/sjson"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// CEL overlays, as Tekton Triggers' CEL interceptor computes them: each
// overlay's expression is evaluated in the environment of `when` conditions
// (Tekton Triggers' own functions, see cel.go), its result encoded as that
// interceptor encodes it and set with sjson at its key (so "a.b" nests), and
// bindings read the results as $(extensions.<key>).

// switchyardExtensions are the extensions Switchyard's normalizers set
// (DESIGN.md section 4), and changed_files (changedFilesExtension). A
// binding may read these, and the keys of its trigger's overlays.
var switchyardExtensions = []string{
	"action", "actor", "branch", "cdeventtype", changedFilesExtension, "digest", "headbranch", "identity",
	"principal", "provider", "pullrequest", "ref", "repository", "revision", "tag",
}

// overlay is one compiled overlay.
type overlay struct {
	key string
	c   *condition
}

// compileOverlays compiles a trigger's overlays. Keys are sjson paths, as in
// Tekton; an expression may have any result type.
func (l *loader) compileOverlays(file string, at func(...any) int, ts triggerSpec, t *trigger) {
	for j, o := range ts.Overlays {
		line := at("overlays", j)
		if o.Key == "" || strings.HasPrefix(o.Key, ".") || strings.HasSuffix(o.Key, ".") || strings.Contains(o.Key, "..") {
			l.addf(file, line, "trigger %q: overlay key %q must be a dotted path such as short_sha or git.branch", ts.Name, o.Key)
			continue
		}
		c, err := l.compileExpression(o.Expression)
		if err != nil {
			l.addf(file, at("overlays", j, "expression"), "trigger %q: overlay %q: %v", ts.Name, o.Key, err)
			continue
		}
		for _, h := range c.headers {
			if l.isCredential(h) {
				l.addf(file, at("overlays", j, "expression"), "trigger %q: overlay %q reads credential header %q: overlays never see the caller's credentials", ts.Name, o.Key, h)
			}
		}
		t.overlays = append(t.overlays, overlay{key: o.Key, c: c})
	}
}

// extensionRootRE finds the extension a binding expression reads:
// $(extensions.name...) or $(extensions['name']...).
var extensionRootRE = regexp.MustCompile(`^extensions(?:\.([^.\[]+)|\[['"]([^'"]+)['"]\])`)

// checkExtensions refuses (or, for an app whose callers send their own
// extensions, warns about) a binding that reads an extension neither
// Switchyard nor one of the trigger's overlays provides: Tekton would bind
// the template's default, silently.
func (l *loader) checkExtensions(file string, line int, t *trigger, open bool, values []string) {
	provided := slices.Clone(switchyardExtensions)
	for _, o := range t.overlays {
		provided = append(provided, strings.SplitN(o.key, ".", 2)[0])
	}
	for _, v := range values {
		for _, expr := range tektonExpressions(v) {
			if !strings.HasPrefix(expr, "extensions") {
				continue
			}
			m := extensionRootRE.FindStringSubmatch(expr)
			if m == nil {
				continue // the whole map: Tekton renders it as JSON
			}
			name := m[1] + m[2]
			if name == changedFilesExtension {
				t.readsChangedFiles = true
			}
			if slices.Contains(provided, name) {
				continue
			}
			msg := fmt.Sprintf("trigger %q: %q reads extension %q, which no overlay of the trigger and no Switchyard event provides (Tekton would bind the template's default): add an overlay with key %q, or read one of %s",
				t.name, "$("+expr+")", name, name, strings.Join(switchyardExtensions, ", "))
			if open {
				l.warnf(file, line, "%s; kept, as the app's callers may send their own extensions", msg)
			} else {
				l.addf(file, line, "%s", msg)
			}
		}
	}
}

// expressionValues are the values of a trigger that hold binding
// expressions: its params or bindings, and its concurrency group.
func (t *trigger) expressionValues() []string {
	// A pipelineRef run with expressions has its params as bindingParams.
	out := bindingValues(t.bindingParams)
	if t.bindingParams == nil {
		for _, p := range t.params {
			out = append(out, p.Value)
		}
	}
	if t.concurrency != nil {
		out = append(out, t.concurrency.Group)
	}
	return out
}

// extensions returns the extensions the trigger's bindings see for one
// event: the event's, plus changed_files and the overlays' results when the
// trigger needs them (a copy then; st.ext is shared by every trigger).
func (t *trigger) extensions(st *routeState) (map[string]any, error) {
	if len(t.overlays) == 0 && !t.readsChangedFiles {
		return st.ext, nil
	}
	ext := maps.Clone(st.ext)
	if ext == nil {
		ext = map[string]any{}
	}
	if t.readsChangedFiles {
		ext[changedFilesExtension] = st.changedFilesValue()
	}
	if len(t.overlays) == 0 {
		return ext, nil
	}
	doc := []byte("{}")
	for _, o := range t.overlays {
		body, err := st.conditionBody(o.c.bodyPaths)
		if err != nil {
			return nil, fmt.Errorf("overlay %q: %w", o.key, err)
		}
		out, _, err := o.c.prg.Eval(celVars{st: st, body: body, changedFiles: o.c.changedFiles})
		if err != nil {
			return nil, fmt.Errorf("overlay %q: %w", o.key, err)
		}
		b, err := overlayJSON(out)
		if err != nil {
			return nil, fmt.Errorf("overlay %q: convert result: %w", o.key, err)
		}
		if doc, err = sjson.SetRawBytes(doc, o.key, b); err != nil {
			return nil, fmt.Errorf("overlay %q: %w", o.key, err)
		}
	}
	var results map[string]any
	if err := json.Unmarshal(doc, &results); err != nil {
		return nil, fmt.Errorf("overlays: %w", err)
	}
	// Top-level keys replace the event's, as Tekton's sink merges an
	// interceptor's extensions.
	maps.Copy(ext, results)
	return ext, nil
}

var (
	structType = reflect.TypeOf(&structpb.Value{})
	listType   = reflect.TypeOf(&structpb.ListValue{})
	mapType    = reflect.TypeOf(&structpb.Struct{})
)

// overlayJSON encodes an overlay's result as Tekton Triggers' CEL
// interceptor does (InterceptorImpl.Process in
// github.com/tektoncd/triggers/pkg/interceptors/cel, v0.37.0: not exported,
// so its type switch is copied here): bytes as base64 strings, lists and
// maps through protojson.
func overlayJSON(val ref.Val) ([]byte, error) {
	switch val.(type) {
	case types.String, types.Bytes, types.Double, types.Int:
		raw, err := val.ConvertToNative(structType)
		if err != nil {
			return nil, err
		}
		return raw.(*structpb.Value).MarshalJSON()
	case traits.Lister:
		raw, err := val.ConvertToNative(listType)
		if err != nil {
			return nil, err
		}
		return protojson.Marshal(raw.(proto.Message))
	case traits.Mapper:
		raw, err := val.ConvertToNative(mapType)
		if err != nil {
			return nil, err
		}
		return protojson.Marshal(raw.(proto.Message))
	case types.Bool:
		raw, err := val.ConvertToNative(structType)
		if err != nil {
			return nil, err
		}
		return json.Marshal(raw.(*structpb.Value).GetBoolValue())
	default:
		raw, err := val.ConvertToNative(reflect.TypeOf([]byte{}))
		if err != nil {
			return nil, err
		}
		return raw.([]byte), nil
	}
}

// extWithChangedFiles is the event's extensions with changed_files, for
// CEL expressions that read it; made once per event.
func (st *routeState) extWithChangedFiles() map[string]any {
	if st.extChanged == nil {
		st.extChanged = maps.Clone(st.ext)
		if st.extChanged == nil {
			st.extChanged = map[string]any{}
		}
		st.extChanged[changedFilesExtension] = st.changedFilesValue()
	}
	return st.extChanged
}

// changedFilesValue is changedFiles, computed once per event.
func (st *routeState) changedFilesValue() string {
	if st.changed == nil {
		s := st.changedFiles()
		st.changed = &s
	}
	return *st.changed
}

// changedFilesExtension is the extension Tekton's GitHub interceptor sets
// with addChangedFiles.
const changedFilesExtension = "changed_files"

// changedFiles is $(extensions.changed_files) as Tekton's GitHub
// interceptor computes it for a push (parseBodyForChangedFiles): every
// commit's added, modified and removed files, in that order, joined by
// commas, duplicates kept. It reads only the payload: no API call, so a
// pull request (for which Tekton asks the GitHub API) gets "".
func (st *routeState) changedFiles() string {
	var p struct {
		Commits []struct {
			Added    []any `json:"added"`
			Modified []any `json:"modified"`
			Removed  []any `json:"removed"`
		} `json:"commits"`
	}
	if json.Unmarshal(st.in.Event.Data(), &p) != nil {
		return ""
	}
	var files []string
	for _, c := range p.Commits {
		for _, list := range [][]any{c.Added, c.Modified, c.Removed} {
			for _, f := range list {
				files = append(files, fmt.Sprint(f))
			}
		}
	}
	return strings.Join(files, ",")
}

// overlaySpec is one CEL overlay of a trigger, as in Tekton's CEL
// interceptor: its result is $(extensions.<key>) in bindings.
type overlaySpec struct {
	Key        string `yaml:"key"`
	Expression string `yaml:"expression"`
}
