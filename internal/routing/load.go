package routing

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with the manifest, located by file and line.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Problems is every problem found while loading a manifest. Load reports
// all of them at once so a user fixes a manifest in one pass.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Options tune Load.
type Options struct {
	// SourceKinds lists the source kinds the router can verify. A source of
	// another kind is a validation error. Nil accepts any kind.
	SourceKinds []string
	// CheckSource, when set, checks what a source's kind requires (an
	// OIDC block, a header); its error is reported at the source's line.
	CheckSource func(*Source) error
	// ResolveSecrets reads every source's secret (and API token) from its
	// environment variable or file, and fails when one is missing or empty
	// (fail closed). `router validate` leaves it off: linting a manifest in
	// CI needs no secrets.
	ResolveSecrets bool
	// LookupEnv reads environment variables; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// EventTypes are the normalized types (dev.switchyard.*) that sources
	// produce. A trigger matching another literal type in that namespace
	// gets a warning (a typo never fires). Nil checks nothing.
	EventTypes []string
}

var (
	// nameRE is a DNS label: source, app and trigger names become NATS
	// subject tokens and PipelineRun name parts.
	nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// subdomainRE is a Kubernetes DNS subdomain (service account names).
	subdomainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)
	// paramNameRE is what Tekton accepts as a parameter name.
	paramNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.-]*$`)
	// expressionRE finds Tekton Triggers binding expressions, $(...).
	expressionRE = regexp.MustCompile(`\$\(([^)]*)\)`)
	// identityRE is an identity name: "source:<name>" for webhook sources,
	// the endpoint's identity names for agents. No spaces, no commas.
	identityRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:._@/+-]{0,252}$`)
)

// identitySourcePrefix starts the identity a webhook source authenticates
// as: source "github" is identity "source:github".
const identitySourcePrefix = "source:"

// endpointIdentityPrefix starts the identity of an endpoint's callers.
const endpointIdentityPrefix = "endpoint:"

// ErrNoRulesDir is wrapped by LoadDir's error when the rules directory does
// not exist: a wrong path, not invalid rules.
var ErrNoRulesDir = errors.New("no rules directory")

// LoadDir loads and compiles the manifest rooted at dir/root.yaml. Files
// are read through an os.Root: a symlink may point within dir (a mounted
// ConfigMap's ..data), never out of it.
func LoadDir(dir string, opts Options) (*Rules, error) {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoRulesDir, dir)
	}
	if err != nil {
		return nil, Problems{{File: dir, Msg: fmt.Sprintf("open rules directory: %v", unwrapPathError(err))}}
	}
	defer root.Close()
	rules, err := Load(root.FS(), dir, opts)
	if err != nil {
		return nil, err
	}
	rules.revision = withCommit(rules.revision, dir)
	return rules, nil
}

// Load loads and compiles the manifest rooted at root.yaml in fsys. dir is
// used only to name files in problems. The error, when not nil, is a
// Problems listing every problem found.
func Load(fsys fs.FS, dir string, opts Options) (*Rules, error) {
	l := &loader{fsys: fsys, dir: dir, opts: opts}
	if l.opts.LookupEnv == nil {
		l.opts.LookupEnv = os.LookupEnv
	}
	rules := l.load()
	if len(l.problems) > 0 {
		l.sortProblems()
		return nil, l.problems
	}
	rules.warnings = l.warnings
	rules.revision = contentRevision(l.files)
	return rules, nil
}

// Warnings are what loaded but is probably a mistake, such as a trigger
// on an event type no source produces, as file:line problems.
func (r *Rules) Warnings() Problems { return r.warnings }

// warnf records a warning: the rules still load.
func (l *loader) warnf(file string, line int, format string, args ...any) {
	l.warnings = append(l.warnings, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// sortProblems orders problems by line within each file, files in the order
// they were first reported (the root first), so a user reads a file top to
// bottom.
func (l *loader) sortProblems() {
	first := map[string]int{}
	for i, p := range l.problems {
		if _, ok := first[p.File]; !ok {
			first[p.File] = i
		}
	}
	slices.SortStableFunc(l.problems, func(a, b Problem) int {
		if c := first[a.File] - first[b.File]; c != 0 {
			return c
		}
		return a.Line - b.Line
	})
}

type loader struct {
	fsys     fs.FS
	dir      string
	opts     Options
	problems Problems
	// warnings are kept apart: they do not stop the rules loading.
	warnings Problems
	// conditions caches compiled CEL by expression: compiling costs
	// hundreds of microseconds, and apps often share a condition. A
	// compiled program is immutable and safe to share.
	conditions map[string]condResult
	// files are the digests of the files read, for the revision.
	files fileDigests
	// tokenHeaders are the sources' `header:` names, known once the
	// sources compile; rules may not read them.
	tokenHeaders []string
}

type condResult struct {
	c   *condition
	err error
}

func (l *loader) addf(file string, line int, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// display names a file inside the rules directory as a user would type it.
func (l *loader) display(name string) string {
	return filepath.Join(l.dir, filepath.FromSlash(name))
}

// read reads one file of the rules directory, recording a problem when it
// cannot.
func (l *loader) read(name string) ([]byte, bool) {
	data, err := fs.ReadFile(l.fsys, name)
	if name == RootFileName && errors.Is(err, fs.ErrNotExist) {
		l.addf(l.display(name), 0, "not found: a rules directory holds the root manifest, root.yaml (kind: Root); see docs/manifest.md")
		return nil, false
	}
	if err != nil {
		l.addf(l.display(name), 0, "read: %v", unwrapPathError(err))
		return nil, false
	}
	l.recordFile(name, data)
	return data, true
}

// decode strictly decodes one YAML document into v and also returns its node
// tree, used to locate semantic problems by line.
func (l *loader) decode(name string, data []byte, v any) (*yaml.Node, bool) {
	file := l.display(name)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		l.addYAMLError(file, err)
		return nil, false
	}
	if len(doc.Content) == 0 {
		l.addf(file, 0, "empty manifest")
		return nil, false
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		l.addDecodeError(file, err, fieldNames(reflect.TypeOf(v)))
		return nil, false
	}
	return doc.Content[0], true
}

// yamlLineRE extracts the line yaml.v3 puts in its messages.
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func (l *loader) addYAMLError(file string, err error) { l.addDecodeError(file, err, nil) }

// addDecodeError records the decoder's problems; fields maps each decoded
// Go type to its field names, so an unknown field is told in the
// manifest's words.
func (l *loader) addDecodeError(file string, err error, fields map[string][]string) {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			n, _ := strconv.Atoi(sm[1])
			l.addf(file, n, "%s", unknownField(sm[2], fields))
			continue
		}
		l.addf(file, 0, "%s", unknownField(strings.TrimPrefix(m, "yaml: "), fields))
	}
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// lineOf walks a node tree by mapping keys and sequence indexes and returns
// the line of the deepest node found, so a problem points as close to its
// cause as the file allows.
func lineOf(n *yaml.Node, path ...any) int {
	if n == nil {
		return 0
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

func (l *loader) load() *Rules {
	data, ok := l.read(RootFileName)
	if !ok {
		return nil
	}
	var root rootFile
	node, ok := l.decode(RootFileName, data, &root)
	if !ok {
		return nil
	}
	rootName := l.display(RootFileName)
	l.checkHeader(rootName, node, root.APIVersion, root.Kind, "Root")

	rules := &Rules{sources: map[string]*Source{}}
	for i, s := range root.Sources {
		// A source with problems is still recorded, so apps that name it
		// do not report a second, misleading "unknown source".
		src := l.compileSource(rootName, node, i, s)
		if _, dup := rules.sources[src.Name]; dup {
			l.addf(rootName, lineOf(node, "sources", i, "name"), "source %q declared twice", src.Name)
			continue
		}
		rules.sources[src.Name] = src
	}
	if len(root.Sources) == 0 {
		l.addf(rootName, lineOf(node, "sources"), "no sources: declare at least one webhook source")
	}
	l.tokenHeaders = tokenHeaders(rules.sources)
	rules.tokenHeaders = l.tokenHeaders

	seenApps := map[string]bool{}
	claimed := map[string]string{} // app manifest file -> app
	for i, g := range root.Apps {
		a := l.compileApp(rootName, node, i, g, rules.sources, claimed)
		if a == nil {
			continue
		}
		if seenApps[a.name] {
			l.addf(rootName, lineOf(node, "apps", i, "name"), "app %q declared twice", a.name)
			continue
		}
		seenApps[a.name] = true
		rules.apps = append(rules.apps, a)
	}
	// Fan-out order is deterministic: apps by name, triggers in file order
	// (files in path order).
	sort.Slice(rules.apps, func(i, j int) bool { return rules.apps[i].name < rules.apps[j].name })
	rules.endpoints = map[string]*Endpoint{}
	apps := make(map[string]*app, len(rules.apps))
	for _, a := range rules.apps {
		apps[a.name] = a
	}
	for i, s := range root.Endpoints {
		e := l.compileEndpoint(rootName, node, i, s, rules)
		if _, dup := rules.endpoints[e.Name]; dup {
			l.addf(rootName, lineOf(node, "endpoints", i, "name"), "endpoint %q declared twice", e.Name)
			continue
		}
		l.checkEndpointApps(rootName, node, i, e, apps)
		rules.endpoints[e.Name] = e
	}
	l.checkAuditors(rootName, node, root.Auditors, rules.endpoints)
	l.checkApprovers(rootName, node, root, rules)
	rules.auditors = root.Auditors
	rules.statusURL = l.compileStatusURL(rootName, node, root.StatusURL)
	rules.index()
	return rules
}

// checkAuditors refuses an auditor that could never read a status: only
// endpoint callers authenticate to the status API (Rules.IsAuditor is asked
// with an endpoint's identity), so each entry names an endpoint.
func (l *loader) checkAuditors(file string, node *yaml.Node, auditors []string, endpoints map[string]*Endpoint) {
	for i, id := range auditors {
		name, ok := strings.CutPrefix(id, endpointIdentityPrefix)
		switch {
		case !ok:
			l.addf(file, lineOf(node, "auditors", i), "auditors: %q is not an endpoint identity: only endpoint callers read event status, write %s<endpoint name>", id, endpointIdentityPrefix)
		case endpoints[name] == nil:
			l.addf(file, lineOf(node, "auditors", i), "auditors: %q names no endpoint %q", id, name)
		}
	}
}

func (l *loader) checkHeader(file string, node *yaml.Node, apiVersion, kind, want string) {
	if apiVersion != APIVersion {
		l.addf(file, lineOf(node, "apiVersion"), "apiVersion must be %q, got %q", APIVersion, apiVersion)
	}
	if kind != want {
		l.addf(file, lineOf(node, "kind"), "kind must be %q, got %q", want, kind)
	}
}

// header is what every manifest and Tekton file starts with.
type header struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
}

func (l *loader) compileCondition(expr string) (*condition, error) {
	return l.compileCached(expr, true)
}

// compileExpression compiles an overlay's expression, of any type.
func (l *loader) compileExpression(expr string) (*condition, error) {
	return l.compileCached(expr, false)
}

func (l *loader) compileCached(expr string, wantBool bool) (*condition, error) {
	key := expr
	if !wantBool {
		key = "\x00any\x00" + expr
	}
	if r, ok := l.conditions[key]; ok {
		return r.c, r.err
	}
	c, err := compileCEL(expr, wantBool)
	if l.conditions == nil {
		l.conditions = map[string]condResult{}
	}
	l.conditions[key] = condResult{c, err}
	return c, err
}
