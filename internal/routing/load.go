package routing

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
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

// LoadDir loads and compiles the manifest rooted at dir/root.yaml. Files
// are read through an os.Root: a symlink may point within dir (a mounted
// ConfigMap's ..data), never out of it.
func LoadDir(dir string, opts Options) (*Rules, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, Problems{{File: dir, Msg: fmt.Sprintf("open rules directory: %v", unwrapPathError(err))}}
	}
	defer root.Close()
	return Load(root.FS(), dir, opts)
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
	return rules, nil
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
	// conditions caches compiled CEL by expression: compiling costs
	// hundreds of microseconds, and apps often share a condition. A
	// compiled program is immutable and safe to share.
	conditions map[string]condResult
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
	if err != nil {
		l.addf(l.display(name), 0, "read: %v", unwrapPathError(err))
		return nil, false
	}
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
	rules.auditors = root.Auditors
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
	src := &Source{Name: s.Name, Kind: s.Kind, APIURL: s.APIURL, Header: s.Header, AllowSHA1: s.AllowSHA1, MaxBodyBytes: s.MaxBodyBytes}
	if s.MaxBodyBytes < 0 || s.MaxBodyBytes > MaxSourceBodyBytes {
		l.addf(file, at("maxBodyBytes"), "source %q: maxBodyBytes %d must be between 1 and %d (25 MiB); leave it out for the server's default", s.Name, s.MaxBodyBytes, MaxSourceBodyBytes)
	}
	if o := s.OIDC; o != nil {
		if o.Issuer == "" || o.Audience == "" {
			l.addf(file, at("oidc"), "source %q: oidc needs issuer and audience", s.Name)
		}
		if o.Email == "" {
			l.addf(file, at("oidc"), "source %q: oidc needs email, the service account the push is signed for: "+
				"without it a token of any Google service account, for an audience anyone may choose, is accepted", s.Name)
		}
		src.OIDC = &OIDC{Issuer: o.Issuer, Audience: o.Audience, JWKSURL: o.JWKSURL, Email: o.Email}
	}
	switch {
	case s.Secret == nil && s.OIDC != nil:
		// Authenticated by the OIDC token alone.
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
	if s.APIToken != nil {
		if (s.APIToken.Env == "") == (s.APIToken.File == "") {
			l.addf(file, at("apiToken"), "source %q: apiToken needs exactly one of env or file", s.Name)
		} else {
			src.APITokenRef = *s.APIToken
			if l.opts.ResolveSecrets {
				token, err := s.APIToken.resolve(l.opts.LookupEnv)
				if err != nil {
					l.addf(file, at("apiToken"), "source %q: apiToken: %v", s.Name, err)
				}
				src.APIToken = token
			}
		}
	}
	if s.APIURL != "" {
		u, err := url.Parse(s.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			l.addf(file, at("apiURL"), "source %q: apiURL %q must be an http(s) URL such as https://github.example.com/api/v3", s.Name, s.APIURL)
		}
		if s.APIToken == nil {
			l.addf(file, at("apiURL"), "source %q: apiURL is set but apiToken is not: the API is only called with a token", s.Name)
		}
	}
	if l.opts.CheckSource != nil && s.Kind != "" {
		if err := l.opts.CheckSource(src); err != nil {
			l.addf(file, at("kind"), "source %q: %v", s.Name, err)
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

func (l *loader) compileApp(rootName string, node *yaml.Node, i int, g appGrant, sources map[string]*Source, claimed map[string]string) *app {
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
	if len(g.Sources) == 0 && len(g.Identities) == 0 {
		l.addf(rootName, at("name"), "app %q: grant at least one source or identity (deny by default)", g.Name)
		ok = false
	}
	for j, s := range g.Sources {
		if sources[s] == nil {
			l.addf(rootName, at("sources", j), "app %q: unknown source %q", g.Name, s)
			ok = false
		}
	}
	for j, id := range g.Identities {
		if !identityRE.MatchString(id) {
			l.addf(rootName, at("identities", j), "app %q: identity %q is not a valid identity name", g.Name, id)
			ok = false
		} else if s, isSource := strings.CutPrefix(id, identitySourcePrefix); isSource && sources[s] == nil {
			l.addf(rootName, at("identities", j), "app %q: identity %q names unknown source %q", g.Name, id, s)
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
	pattern := manifestPath(g.Manifest)
	if !fs.ValidPath(pattern) {
		l.addf(rootName, at("manifest"), "app %q: manifest %q must be a relative path inside the rules directory", g.Name, g.Manifest)
		return nil
	}
	a := &app{
		name:            g.Name,
		namespaces:      g.Namespaces,
		serviceAccounts: g.ServiceAccounts,
		sources:         g.Sources,
		identities:      g.Identities,
		eventTypes:      types,
	}
	files := []string{pattern}
	glob := isGlob(pattern)
	if glob {
		if files, ok = l.globManifests(rootName, at("manifest"), g, pattern); !ok {
			return nil
		}
	}
	files = slices.DeleteFunc(files, func(f string) bool {
		if prev, dup := claimed[f]; dup {
			l.addf(rootName, at("manifest"), "app %q: manifest %s is already delegated to app %q", g.Name, l.display(f), prev)
			ok = false
			return true
		}
		claimed[f] = g.Name
		return false
	})
	if !l.loadApp(a, files, glob) || !ok {
		return nil
	}
	return a
}

// isGlob reports whether a manifest reference is a pattern rather than a
// path.
func isGlob(p string) bool { return strings.ContainsAny(p, `*?[{\`) }

// globManifests lists the app manifests a glob matches, in path order.
func (l *loader) globManifests(rootName string, line int, g appGrant, pattern string) ([]string, bool) {
	if !doublestar.ValidatePattern(pattern) {
		l.addf(rootName, line, "app %q: manifest %q is not a valid glob", g.Name, g.Manifest)
		return nil, false
	}
	matches, err := doublestar.Glob(l.fsys, pattern, doublestar.WithFilesOnly())
	if err != nil {
		l.addf(rootName, line, "app %q: manifest %q: %v", g.Name, g.Manifest, err)
		return nil, false
	}
	matches = slices.DeleteFunc(matches, func(m string) bool { return m == RootFileName })
	sort.Strings(matches)
	if len(matches) == 0 {
		l.addf(rootName, line, "app %q: manifest %q matches no file", g.Name, g.Manifest)
		return nil, false
	}
	return matches, true
}

// manifestPath turns a manifest reference into an fs.FS path.
func manifestPath(p string) string {
	return strings.TrimPrefix(filepath.ToSlash(filepath.Clean(p)), "./")
}

// header is what every manifest and Tekton file starts with.
type header struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
}

// appManifest is one decoded app manifest file, before its triggers compile.
type appManifest struct {
	name string // fs path
	file string // display name
	node *yaml.Node
	spec appFile
}

// loadApp decodes an app's manifest files and its Tekton resources, then
// compiles the triggers. Files a glob matched that are Tekton Triggers
// objects are skipped: they are resources, listed by the app's manifests.
func (l *loader) loadApp(a *app, files []string, glob bool) bool {
	before := len(l.problems)
	var manifests []appManifest
	resourcesOnly := false
	for _, name := range files {
		data, ok := l.read(name)
		if !ok {
			continue
		}
		if glob {
			var h header
			if yaml.Unmarshal(data, &h) == nil && isTektonKind(h.APIVersion, h.Kind) {
				resourcesOnly = true
				continue
			}
		}
		var f appFile
		node, ok := l.decode(name, data, &f)
		if !ok {
			continue
		}
		file := l.display(name)
		l.checkHeader(file, node, f.APIVersion, f.Kind, "App")
		if f.Name != a.name {
			l.addf(file, lineOf(node, "name"), "app manifest names app %q but the root delegates this file to app %q", f.Name, a.name)
		}
		a.files = append(a.files, file)
		manifests = append(manifests, appManifest{name: name, file: file, node: node, spec: f})
	}
	if len(manifests) == 0 && resourcesOnly && len(l.problems) == before {
		l.addf(l.display(RootFileName), 0, "app %q: its manifest glob matches only Tekton resources, no App manifest", a.name)
	}

	objs := newTektonObjects()
	loaded := map[string]bool{}
	for _, m := range manifests {
		for j, ref := range m.spec.Resources {
			l.loadResources(m, j, ref, objs, loaded)
		}
	}

	seen := map[string]string{}
	for _, m := range manifests {
		for i, ts := range m.spec.Triggers {
			t := l.compileTrigger(m.file, m.node, i, ts, a, objs)
			if t == nil {
				continue
			}
			if prev, dup := seen[t.name]; dup {
				if prev == m.file {
					l.addf(m.file, lineOf(m.node, "triggers", i, "name"), "trigger %q declared twice", t.name)
				} else {
					l.addf(m.file, lineOf(m.node, "triggers", i, "name"), "trigger %q declared twice (also in %s)", t.name, prev)
				}
				continue
			}
			seen[t.name] = m.file
			a.triggers = append(a.triggers, t)
		}
	}
	return len(l.problems) == before
}

// loadResources loads the Tekton files one resources entry names (a path
// or glob relative to the app manifest).
func (l *loader) loadResources(m appManifest, j int, ref string, objs *tektonObjects, loaded map[string]bool) {
	line := lineOf(m.node, "resources", j)
	p := path.Clean(path.Join(path.Dir(m.name), filepath.ToSlash(ref)))
	if ref == "" || path.IsAbs(filepath.ToSlash(ref)) || !fs.ValidPath(p) {
		l.addf(m.file, line, "resources: %q must be a relative path inside the rules directory", ref)
		return
	}
	names := []string{p}
	if isGlob(p) {
		if !doublestar.ValidatePattern(p) {
			l.addf(m.file, line, "resources: %q is not a valid glob", ref)
			return
		}
		var err error
		names, err = doublestar.Glob(l.fsys, p, doublestar.WithFilesOnly())
		if err != nil {
			l.addf(m.file, line, "resources: %q: %v", ref, err)
			return
		}
		sort.Strings(names)
		if len(names) == 0 {
			l.addf(m.file, line, "resources: %q matches no file", ref)
			return
		}
	}
	for _, name := range names {
		if loaded[name] {
			continue
		}
		loaded[name] = true
		data, ok := l.read(name)
		if !ok {
			continue
		}
		l.decodeTektonFile(name, data, objs)
	}
}

func (l *loader) compileTrigger(file string, node *yaml.Node, i int, ts triggerSpec, a *app, objs *tektonObjects) *trigger {
	at := func(path ...any) int { return lineOf(node, append([]any{"triggers", i}, path...)...) }
	before := len(l.problems)
	if !nameRE.MatchString(ts.Name) {
		l.addf(file, at("name"), "trigger name %q must be a DNS label (lowercase letters, digits, '-')", ts.Name)
	}
	t := &trigger{app: a, name: ts.Name, file: file, line: at()}
	l.compileMatch(file, at, ts, a, t)
	run := ts.Run
	if run.Template != nil || len(run.Bindings) > 0 {
		l.compileTemplateRun(file, at, ts, a, t, objs)
	} else {
		l.compilePipelineRun(file, at, ts, a, t)
	}
	if c := ts.Concurrency; c != nil {
		l.compileConcurrency(file, at, ts.Name, c, t)
	}
	if len(l.problems) > before {
		return nil
	}
	return t
}

// compileConcurrency checks a trigger's concurrency block. The group's
// expressions are checked like a param's.
func (l *loader) compileConcurrency(file string, at func(...any) int, trigger string, c *concurrencySpec, t *trigger) {
	if c.Limit < 0 {
		l.addf(file, at("concurrency", "limit"), "trigger %q: concurrency.limit %d must not be negative", trigger, c.Limit)
	}
	if !c.CancelInProgress && c.Limit == 0 {
		l.addf(file, at("concurrency"), "trigger %q: concurrency needs cancelInProgress: true or a limit above 0", trigger)
	}
	group := c.Group
	if group == "" {
		group = t.app.name + "/" + t.name
	}
	l.checkExpressions(file, at("concurrency", "group"), "concurrency.group", group)
	t.concurrency = &Concurrency{Group: group, CancelInProgress: c.CancelInProgress, Limit: c.Limit}
}

func (l *loader) compileMatch(file string, at func(...any) int, ts triggerSpec, a *app, t *trigger) {
	m := ts.Match
	var err error
	if t.types, err = compileGlobs(m.Types); err != nil {
		l.addf(file, at("match", "types"), "types: %v", err)
	}
	if !a.eventTypes.empty() {
		if len(m.Types) == 0 {
			l.addf(file, at("match"), "trigger %q: app %q is granted only event types %s: list the types this trigger matches", ts.Name, a.name, strings.Join(a.eventTypes.patterns(), ", "))
		}
		for j, typ := range m.Types {
			if !a.eventTypes.match(typ) {
				l.addf(file, at("match", "types", j), "trigger %q: event type %q exceeds the grant of app %q (eventTypes: %s)", ts.Name, typ, a.name, strings.Join(a.eventTypes.patterns(), ", "))
			}
		}
	}
	for j, s := range m.Sources {
		if !a.grantsSource(s) {
			l.addf(file, at("match", "sources", j), "trigger %q: source %q exceeds the grant of app %q (%s)", ts.Name, s, a.name, a.grantSummary())
		}
	}
	for j, id := range m.Identities {
		if !a.grantsIdentity(id) {
			l.addf(file, at("match", "identities", j), "trigger %q: identity %q exceeds the grant of app %q (%s)", ts.Name, id, a.name, a.grantSummary())
		}
	}
	t.sources, t.identities = m.Sources, m.Identities
	if t.repositories, err = compileGlobs(m.Repositories); err != nil {
		l.addf(file, at("match", "repositories"), "repositories: %v", err)
	}
	if t.branches, err = compileGlobs(m.Branches); err != nil {
		l.addf(file, at("match", "branches"), "branches: %v", err)
	}
	if t.tags, err = compileGlobs(m.Tags); err != nil {
		l.addf(file, at("match", "tags"), "tags: %v", err)
	}
	if t.paths, err = compileGlobs(m.Paths); err != nil {
		l.addf(file, at("match", "paths"), "paths: %v", err)
	}
	for j, actor := range m.Actors {
		name, deny := strings.CutPrefix(actor, "!")
		if strings.TrimSpace(name) == "" {
			l.addf(file, at("match", "actors", j), "actors: empty name")
			continue
		}
		if deny {
			t.actorsDeny = append(t.actorsDeny, name)
		} else {
			t.actorsAllow = append(t.actorsAllow, name)
		}
	}
	if m.When != "" {
		c, err := l.compileCondition(m.When)
		if err != nil {
			l.addf(file, at("match", "when"), "trigger %q: when: %v", ts.Name, err)
		} else {
			for _, h := range c.headers {
				if l.isCredential(h) {
					l.addf(file, at("match", "when"), "trigger %q: when reads credential header %q: conditions never see the caller's credentials (the source already verified them)", ts.Name, h)
				}
			}
		}
		t.when = c
	}
}

func (l *loader) compilePipelineRun(file string, at func(...any) int, ts triggerSpec, a *app, t *trigger) {
	run := ts.Run
	before := len(l.problems)
	if run.PipelineRef == "" {
		l.addf(file, at("run"), "trigger %q: run.pipelineRef is required", ts.Name)
	}
	t.pipelineRef = run.PipelineRef
	t.namespace = l.grantedNamespace(file, at("run", "namespace"), ts.Name, a, run.Namespace)
	t.serviceAccount = l.grantedServiceAccount(file, at("run", "serviceAccount"), ts.Name, a, run.ServiceAccount)

	t.timeout = run.Timeout
	if run.Timeout != "" {
		l.checkDuration(file, at("run", "timeout"), ts.Name, "timeout", run.Timeout)
	}
	if to := run.Timeouts; to != nil {
		if run.Timeout != "" {
			l.addf(file, at("run", "timeouts"), "trigger %q: set timeout or timeouts.pipeline, not both", ts.Name)
		}
		for _, d := range []struct{ field, value string }{{"pipeline", to.Pipeline}, {"tasks", to.Tasks}, {"finally", to.Finally}} {
			if d.value != "" {
				l.checkDuration(file, at("run", "timeouts", d.field), ts.Name, "timeouts."+d.field, d.value)
			}
		}
		if to.Pipeline != "" {
			t.timeout = to.Pipeline
		}
		t.tasksTimeout, t.finallyTimeout = to.Tasks, to.Finally
	}

	seen := map[string]bool{}
	for j, p := range run.Params {
		if !paramNameRE.MatchString(p.Name) {
			l.addf(file, at("run", "params", j, "name"), "param name %q is not a valid Tekton parameter name", p.Name)
		}
		if seen[p.Name] {
			l.addf(file, at("run", "params", j, "name"), "param %q set twice", p.Name)
		}
		seen[p.Name] = true
		l.checkExpressions(file, at("run", "params", j, "value"), p.Name, p.Value)
		t.params = append(t.params, p)
		if strings.Contains(p.Value, "$(") {
			t.paramsBound = true
		}
	}
	if t.paramsBound {
		for _, p := range t.params {
			t.bindingParams = append(t.bindingParams, triggersv1.Param{Name: p.Name, Value: p.Value})
			t.bindsBody = t.bindsBody || strings.Contains(p.Value, "$(body")
		}
	}
	for j := range run.Workspaces {
		l.compileWorkspace(file, at("run", "workspaces", j), &run.Workspaces[j], t)
	}
	// Tekton's own PipelineRun validation, on what is known at load: the
	// timeouts against each other, the workspaces, the parameter names.
	if len(l.problems) == before {
		if err := t.checkPipelineRunSpec(); err != nil {
			l.addf(file, at("run"), "trigger %q: %v", ts.Name, err)
		}
	}
}

func (l *loader) checkDuration(file string, line int, trigger, field, value string) {
	if d, err := parseDuration(value); err != nil || d < 0 {
		l.addf(file, line, "trigger %q: %s %q is not a duration such as 1h30m", trigger, field, value)
	}
}

func (l *loader) checkExpressions(file string, line int, param, value string) {
	for _, m := range expressionRE.FindAllStringSubmatch(value, -1) {
		if !validExpression(m[1]) {
			l.addf(file, line, "param %q: %q is not a binding expression: use $(body.<path>), $(header.<name>), $(extensions.<name>) or $(context.eventID)", param, m[0])
		}
	}
	// Split as Tekton's resolver splits, which a nested $( cannot fool.
	for _, expr := range tektonExpressions(value) {
		if msg := headerProblem(expr, l.isCredential); msg != "" {
			l.addf(file, line, "param %q: %s", param, msg)
		}
	}
}

// grantedNamespace returns the namespace a trigger runs in: its own, which
// must be granted, or the app's first.
func (l *loader) grantedNamespace(file string, line int, trigger string, a *app, ns string) string {
	if ns == "" {
		if len(a.namespaces) > 0 {
			return a.namespaces[0]
		}
		return ""
	}
	if !slices.Contains(a.namespaces, ns) {
		l.addf(file, line, "trigger %q: namespace %q exceeds the grant of app %q (namespaces: %s)", trigger, ns, a.name, strings.Join(a.namespaces, ", "))
	}
	return ns
}

// grantedServiceAccount returns the service account a trigger runs as: its
// own, which must be granted, or the app's first (none: Tekton's default).
func (l *loader) grantedServiceAccount(file string, line int, trigger string, a *app, sa string) string {
	if sa == "" {
		if len(a.serviceAccounts) > 0 {
			return a.serviceAccounts[0]
		}
		return ""
	}
	if !slices.Contains(a.serviceAccounts, sa) {
		l.addf(file, line, "trigger %q: service account %q exceeds the grant of app %q (serviceAccounts: %s)", trigger, sa, a.name, strings.Join(a.serviceAccounts, ", "))
	}
	return sa
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
	include []glob
	exclude []glob
	// text is the patterns as written, for explanations.
	text string
}

// glob is one doublestar pattern; a pattern without metacharacters is
// compared as a string, which is most patterns and much cheaper.
type glob struct {
	pattern string
	literal bool
}

func (g glob) match(v string) bool {
	if g.literal {
		return g.pattern == v
	}
	ok, _ := doublestar.Match(g.pattern, v)
	return ok
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
		c := glob{pattern: pat, literal: !isGlob(pat)}
		if neg {
			g.exclude = append(g.exclude, c)
		} else {
			g.include = append(g.include, c)
		}
	}
	g.text = strings.Join(patterns, ", ")
	return g, nil
}

// onlyExcludes reports whether the list has negations and nothing else,
// which matches every value not excluded.
func (g globList) onlyExcludes() bool { return len(g.include) == 0 && len(g.exclude) > 0 }

// empty reports whether the list places no condition.
func (g globList) empty() bool { return len(g.include) == 0 && len(g.exclude) == 0 }

// match reports whether v matches an include pattern (or there are only
// exclusions) and no exclude pattern.
func (g globList) match(v string) bool {
	for _, p := range g.exclude {
		if p.match(v) {
			return false
		}
	}
	if len(g.include) == 0 {
		return true
	}
	for _, p := range g.include {
		if p.match(v) {
			return true
		}
	}
	return false
}

// literals returns the include patterns when every one is a literal and
// there is at least one, for indexing; nil otherwise.
func (g globList) literals() []string {
	if len(g.include) == 0 {
		return nil
	}
	out := make([]string, 0, len(g.include))
	for _, p := range g.include {
		if !p.literal {
			return nil
		}
		out = append(out, p.pattern)
	}
	return out
}

func (g globList) patterns() []string {
	out := make([]string, 0, len(g.include)+len(g.exclude))
	for _, p := range g.include {
		out = append(out, p.pattern)
	}
	for _, p := range g.exclude {
		out = append(out, "!"+p.pattern)
	}
	return out
}

func (l *loader) compileCondition(expr string) (*condition, error) {
	if r, ok := l.conditions[expr]; ok {
		return r.c, r.err
	}
	c, err := compileCondition(expr)
	if l.conditions == nil {
		l.conditions = map[string]condResult{}
	}
	l.conditions[expr] = condResult{c, err}
	return c, err
}
