package routing

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Glob lists, compiled once at load: doublestar patterns, a leading "!"
// excludes, literals compared as strings.

// isGlob reports whether a manifest reference is a pattern rather than a
// path.
func isGlob(p string) bool { return strings.ContainsAny(p, `*?[{\`) }

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
