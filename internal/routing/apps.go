package routing

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"go.yaml.in/yaml/v3"
)

// Compiling the root's app grants and loading the app manifests they
// delegate to.

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
			l.addf(rootName, at("sources", j), "app %q: %s", g.Name, UnknownName("source", s, sourceNames(sources)))
			ok = false
		}
	}
	for j, id := range g.Identities {
		if !identityRE.MatchString(id) {
			l.addf(rootName, at("identities", j), "app %q: identity %q is not a valid identity name", g.Name, id)
			ok = false
		} else if s, isSource := strings.CutPrefix(id, identitySourcePrefix); isSource && sources[s] == nil {
			l.addf(rootName, at("identities", j), "app %q: identity %q names an unknown source: %s", g.Name, id, UnknownName("source", s, sourceNames(sources)))
			ok = false
		}
	}
	types, err := compileGlobs(g.EventTypes)
	if err != nil {
		l.addf(rootName, at("eventTypes"), "app %q: eventTypes: %v", g.Name, err)
		ok = false
	}
	l.warnUnproducedTypes(rootName, func(j int) int { return at("eventTypes", j) }, fmt.Sprintf("app %q", g.Name), g.EventTypes)
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
		openExtensions:  opensExtensions(g.Sources, g.Identities, sources),
		approval:        l.compileApproval(rootName, func(path ...any) int { return at(append([]any{"approval"}, path...)...) }, approvalRule("apps", g.Name), fmt.Sprintf("app %q", g.Name), g.Name, g.Approval),
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

// appManifest is one decoded app manifest file, before its triggers compile.
type appManifest struct {
	name string // fs path
	file string // display name
	node *yaml.Node
	spec appFile
}

// loadApp decodes an app's manifest files and its Tekton resources, then
// compiles the triggers. Files a glob matched that are Tekton objects are
// skipped: they are resources, listed by the app's manifests.
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
			if yaml.Unmarshal(data, &h) == nil && isTektonFile(h.APIVersion) {
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

// sourceNames lists the declared sources, for messages about unknown ones.
func sourceNames(sources map[string]*Source) []string {
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	return names
}

// opensExtensions reports whether some caller an app grants sends its own
// CloudEvent extensions: a source of kind cloudevents, or an identity that
// is not a webhook source's (an endpoint's callers).
func opensExtensions(granted, identities []string, sources map[string]*Source) bool {
	for _, name := range granted {
		if s := sources[name]; s != nil && s.Kind == "cloudevents" {
			return true
		}
	}
	for _, id := range identities {
		name, isSource := strings.CutPrefix(id, identitySourcePrefix)
		if !isSource {
			return true
		}
		if s := sources[name]; s != nil && s.Kind == "cloudevents" {
			return true
		}
	}
	return false
}
