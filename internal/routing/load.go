package routing

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
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
	// ResolveSecrets reads every source's secret from its environment
	// variable or file, and fails when one is missing or empty (fail
	// closed). `router validate` leaves it off: linting a manifest in CI
	// needs no secrets.
	ResolveSecrets bool
	// LookupEnv reads environment variables; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
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
)

// LoadDir loads and compiles the manifest rooted at dir/root.yaml.
func LoadDir(dir string, opts Options) (*Rules, error) {
	return Load(os.DirFS(dir), dir, opts)
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
		return nil, l.problems
	}
	return rules, nil
}

type loader struct {
	fsys     fs.FS
	dir      string
	opts     Options
	problems Problems
}

func (l *loader) addf(file string, line int, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// display names a file inside the rules directory as a user would type it.
func (l *loader) display(name string) string {
	return filepath.Join(l.dir, filepath.FromSlash(name))
}

// decode strictly decodes one YAML document into v and also returns its node
// tree, used to locate semantic problems by line.
func (l *loader) decode(name string, v any) (*yaml.Node, bool) {
	file := l.display(name)
	data, err := fs.ReadFile(l.fsys, name)
	if err != nil {
		l.addf(file, 0, "read: %v", unwrapPathError(err))
		return nil, false
	}
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
		l.addYAMLError(file, err)
		return nil, false
	}
	return doc.Content[0], true
}

// yamlLineRE extracts the line yaml.v3 puts in its messages.
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func (l *loader) addYAMLError(file string, err error) {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			n, _ := strconv.Atoi(sm[1])
			l.addf(file, n, "%s", sm[2])
			continue
		}
		l.addf(file, 0, "%s", strings.TrimPrefix(m, "yaml: "))
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
	var root rootFile
	node, ok := l.decode(RootFileName, &root)
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

	seenApps := map[string]bool{}
	for i, g := range root.Apps {
		a := l.compileApp(rootName, node, i, g, rules.sources)
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
	// Fan-out order is deterministic: apps by name, triggers in file order.
	sort.Slice(rules.apps, func(i, j int) bool { return rules.apps[i].name < rules.apps[j].name })
	return rules
}

func (l *loader) checkHeader(file string, node *yaml.Node, apiVersion, kind, want string) {
	if apiVersion != APIVersion {
		l.addf(file, lineOf(node, "apiVersion"), "apiVersion must be %q, got %q", APIVersion, apiVersion)
	}
	if kind != want {
		l.addf(file, lineOf(node, "kind"), "kind must be %q, got %q", want, kind)
	}
}

// compileSource always returns the source, so later checks can refer to
// it; its problems are recorded on the loader.
func (l *loader) compileSource(file string, node *yaml.Node, i int, s sourceSpec) *Source {
	at := func(field string) int { return lineOf(node, "sources", i, field) }
	if !nameRE.MatchString(s.Name) {
		l.addf(file, at("name"), "source name %q must be a DNS label (lowercase letters, digits, '-')", s.Name)
	}
	if s.Kind == "" {
		l.addf(file, at("kind"), "source %q: kind is required", s.Name)
	} else if l.opts.SourceKinds != nil && !slices.Contains(l.opts.SourceKinds, s.Kind) {
		l.addf(file, at("kind"), "source %q: unknown kind %q (known: %s)", s.Name, s.Kind, strings.Join(l.opts.SourceKinds, ", "))
	}
	src := &Source{Name: s.Name, Kind: s.Kind}
	switch {
	case s.Secret == nil:
		l.addf(file, at("name"), "source %q: secret is required (fail closed: a source without a secret is never an open door)", s.Name)
	case (s.Secret.Env == "") == (s.Secret.File == ""):
		l.addf(file, at("secret"), "source %q: secret needs exactly one of env or file", s.Name)
	default:
		src.SecretRef = *s.Secret
		if l.opts.ResolveSecrets {
			secret, err := s.Secret.resolve(l.opts.LookupEnv)
			if err != nil {
				l.addf(file, at("secret"), "source %q: %v", s.Name, err)
			}
			src.Secret = secret
		}
	}
	return src
}

// resolve reads the secret. A trailing newline in a file is dropped, since
// `echo secret > file` is how most people write one.
func (r secretRef) resolve(lookupEnv func(string) (string, bool)) ([]byte, error) {
	if r.Env != "" {
		v, _ := lookupEnv(r.Env)
		if v == "" {
			return nil, fmt.Errorf("secret environment variable %s is not set or empty", r.Env)
		}
		return []byte(v), nil
	}
	data, err := os.ReadFile(r.File)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", unwrapPathError(err))
	}
	data = bytes.TrimRight(data, "\r\n")
	if len(data) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", r.File)
	}
	return data, nil
}

func (l *loader) compileApp(rootName string, node *yaml.Node, i int, g appGrant, sources map[string]*Source) *app {
	at := func(path ...any) int { return lineOf(node, append([]any{"apps", i}, path...)...) }
	ok := true
	if !nameRE.MatchString(g.Name) {
		l.addf(rootName, at("name"), "app name %q must be a DNS label (lowercase letters, digits, '-')", g.Name)
		ok = false
	}
	if len(g.Namespaces) == 0 {
		l.addf(rootName, at("name"), "app %q: grant at least one namespace", g.Name)
		ok = false
	}
	for j, ns := range g.Namespaces {
		if !nameRE.MatchString(ns) {
			l.addf(rootName, at("namespaces", j), "app %q: namespace %q is not a valid namespace name", g.Name, ns)
			ok = false
		}
	}
	for j, sa := range g.ServiceAccounts {
		if !subdomainRE.MatchString(sa) {
			l.addf(rootName, at("serviceAccounts", j), "app %q: service account %q is not a valid name", g.Name, sa)
			ok = false
		}
	}
	if len(g.Sources) == 0 {
		l.addf(rootName, at("name"), "app %q: grant at least one source (deny by default)", g.Name)
		ok = false
	}
	for j, s := range g.Sources {
		if sources[s] == nil {
			l.addf(rootName, at("sources", j), "app %q: unknown source %q", g.Name, s)
			ok = false
		}
	}
	types, err := compileGlobs(g.EventTypes)
	if err != nil {
		l.addf(rootName, at("eventTypes"), "app %q: eventTypes: %v", g.Name, err)
		ok = false
	}
	if g.Manifest == "" {
		l.addf(rootName, at("name"), "app %q: manifest path is required", g.Name)
		return nil
	}
	name := manifestPath(g.Manifest)
	if !fs.ValidPath(name) {
		l.addf(rootName, at("manifest"), "app %q: manifest %q must be a relative path inside the rules directory", g.Name, g.Manifest)
		return nil
	}
	a := &app{
		name:            g.Name,
		namespaces:      g.Namespaces,
		serviceAccounts: g.ServiceAccounts,
		sources:         g.Sources,
		eventTypes:      types,
	}
	if !l.loadAppFile(name, a) || !ok {
		return nil
	}
	return a
}

// manifestPath turns a manifest reference into an fs.FS path.
func manifestPath(p string) string {
	return strings.TrimPrefix(filepath.ToSlash(filepath.Clean(p)), "./")
}

func (l *loader) loadAppFile(name string, a *app) bool {
	var f appFile
	node, ok := l.decode(name, &f)
	if !ok {
		return false
	}
	file := l.display(name)
	a.file = file
	before := len(l.problems)
	l.checkHeader(file, node, f.APIVersion, f.Kind, "App")
	if f.Name != a.name {
		l.addf(file, lineOf(node, "name"), "app manifest names app %q but the root delegates this file to app %q", f.Name, a.name)
	}
	seen := map[string]bool{}
	for i, ts := range f.Triggers {
		t := l.compileTrigger(file, node, i, ts, a)
		if t == nil {
			continue
		}
		if seen[t.name] {
			l.addf(file, lineOf(node, "triggers", i, "name"), "trigger %q declared twice", t.name)
			continue
		}
		seen[t.name] = true
		a.triggers = append(a.triggers, t)
	}
	return len(l.problems) == before
}

func (l *loader) compileTrigger(file string, node *yaml.Node, i int, ts triggerSpec, a *app) *trigger {
	at := func(path ...any) int { return lineOf(node, append([]any{"triggers", i}, path...)...) }
	before := len(l.problems)
	if !nameRE.MatchString(ts.Name) {
		l.addf(file, at("name"), "trigger name %q must be a DNS label (lowercase letters, digits, '-')", ts.Name)
	}
	t := &trigger{app: a.name, name: ts.Name, file: file, line: at()}

	var err error
	if t.types, err = compileGlobs(ts.Match.Types); err != nil {
		l.addf(file, at("match", "types"), "types: %v", err)
	}
	if !a.eventTypes.empty() {
		if len(ts.Match.Types) == 0 {
			l.addf(file, at("match"), "trigger %q: app %q is granted only event types %s: list the types this trigger matches", ts.Name, a.name, strings.Join(a.eventTypes.patterns(), ", "))
		}
		for j, typ := range ts.Match.Types {
			if !a.eventTypes.match(typ) {
				l.addf(file, at("match", "types", j), "trigger %q: event type %q exceeds the grant of app %q (eventTypes: %s)", ts.Name, typ, a.name, strings.Join(a.eventTypes.patterns(), ", "))
			}
		}
	}
	if t.repositories, err = compileGlobs(ts.Match.Repositories); err != nil {
		l.addf(file, at("match", "repositories"), "repositories: %v", err)
	}
	if t.branches, err = compileGlobs(ts.Match.Branches); err != nil {
		l.addf(file, at("match", "branches"), "branches: %v", err)
	}
	if t.tags, err = compileGlobs(ts.Match.Tags); err != nil {
		l.addf(file, at("match", "tags"), "tags: %v", err)
	}

	run := ts.Run
	if run.PipelineRef == "" {
		l.addf(file, at("run"), "trigger %q: run.pipelineRef is required", ts.Name)
	}
	t.pipelineRef = run.PipelineRef
	t.namespace = run.Namespace
	if t.namespace == "" && len(a.namespaces) > 0 {
		t.namespace = a.namespaces[0]
	} else if t.namespace != "" && !slices.Contains(a.namespaces, t.namespace) {
		l.addf(file, at("run", "namespace"), "trigger %q: namespace %q exceeds the grant of app %q (namespaces: %s)", ts.Name, t.namespace, a.name, strings.Join(a.namespaces, ", "))
	}
	t.serviceAccount = run.ServiceAccount
	if t.serviceAccount == "" && len(a.serviceAccounts) > 0 {
		t.serviceAccount = a.serviceAccounts[0]
	} else if t.serviceAccount != "" && !slices.Contains(a.serviceAccounts, t.serviceAccount) {
		l.addf(file, at("run", "serviceAccount"), "trigger %q: service account %q exceeds the grant of app %q (serviceAccounts: %s)", ts.Name, t.serviceAccount, a.name, strings.Join(a.serviceAccounts, ", "))
	}
	if run.Timeout != "" {
		if d, err := time.ParseDuration(run.Timeout); err != nil || d < 0 {
			l.addf(file, at("run", "timeout"), "trigger %q: timeout %q is not a duration such as 1h30m", ts.Name, run.Timeout)
		}
	}
	t.timeout = run.Timeout
	seen := map[string]bool{}
	for j, p := range run.Params {
		if !paramNameRE.MatchString(p.Name) {
			l.addf(file, at("run", "params", j, "name"), "param name %q is not a valid Tekton parameter name", p.Name)
		}
		if seen[p.Name] {
			l.addf(file, at("run", "params", j, "name"), "param %q set twice", p.Name)
		}
		seen[p.Name] = true
		for _, m := range expressionRE.FindAllStringSubmatch(p.Value, -1) {
			if !validExpression(m[1]) {
				l.addf(file, at("run", "params", j, "value"), "param %q: %q is not a binding expression: use $(body.<path>), $(header.<name>), $(extensions.<name>) or $(context.eventID)", p.Name, m[0])
			}
		}
		t.params = append(t.params, p)
	}
	if len(l.problems) > before {
		return nil
	}
	return t
}

// validExpression accepts the roots Tekton Triggers resolves in bindings.
func validExpression(expr string) bool {
	for _, root := range []string{"body", "header", "extensions", "context"} {
		if expr == root || strings.HasPrefix(expr, root+".") || strings.HasPrefix(expr, root+"[") {
			return true
		}
	}
	return false
}

// globList is a compiled list of glob patterns; a leading "!" excludes.
type globList struct {
	include []string
	exclude []string
}

func compileGlobs(patterns []string) (globList, error) {
	var g globList
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		pat := strings.TrimPrefix(p, "!")
		if pat == "" {
			return g, fmt.Errorf("empty pattern")
		}
		if !doublestar.ValidatePattern(pat) {
			return g, fmt.Errorf("invalid glob %q", p)
		}
		if neg {
			g.exclude = append(g.exclude, pat)
		} else {
			g.include = append(g.include, pat)
		}
	}
	return g, nil
}

// empty reports whether the list places no condition.
func (g globList) empty() bool { return len(g.include) == 0 && len(g.exclude) == 0 }

// match reports whether v matches an include pattern (or there are only
// exclusions) and no exclude pattern.
func (g globList) match(v string) bool {
	for _, p := range g.exclude {
		if ok, _ := doublestar.Match(p, v); ok {
			return false
		}
	}
	if len(g.include) == 0 {
		return true
	}
	for _, p := range g.include {
		if ok, _ := doublestar.Match(p, v); ok {
			return true
		}
	}
	return false
}

func (g globList) patterns() []string {
	out := slices.Clone(g.include)
	for _, p := range g.exclude {
		out = append(out, "!"+p)
	}
	return out
}
