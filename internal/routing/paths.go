package routing

import (
	"fmt"
	"slices"
)

// ChangesQuery names a push to the provider's API, which lists the files it
// changed: ingest sets it on Changes when the payload's own list may be
// incomplete and asking is left to dispatch, after the event is stored.
type ChangesQuery struct {
	// Repository is "owner/name" at the provider.
	Repository string `json:"repository"`
	// Before and After are the ref's commits before and after the push.
	Before string `json:"before"`
	After  string `json:"after"`
}

// PathsCheck is a paths condition routing could not decide on the request
// path: the event's own list of changed files is incomplete and the
// provider's API is asked by dispatch (which creates nothing when no
// changed file matches). Routing sets it on the Target it fired.
type PathsCheck struct {
	// Source is the router source that accepted the event; its apiToken
	// (in the rules in force at dispatch) authenticates the question.
	Source string `json:"source"`
	ChangesQuery
	// Paths are the trigger's path globs, "!" excluding, as MatchPaths
	// takes them.
	Paths []string `json:"paths"`
	// Reason says why the event's own list was not enough.
	Reason string `json:"reason"`
}

// MatchPaths reports whether some file matches globs the way a trigger's
// paths condition does: a file matches when it matches an include pattern
// (or there are only "!" exclusions) and no exclusion. Dispatch uses it to
// finish a PathsCheck; it fails only on an invalid pattern.
func MatchPaths(globs, files []string) (bool, error) {
	g, err := compileGlobs(globs)
	if err != nil {
		return false, fmt.Errorf("paths: %w", err)
	}
	return g.matchAny(files), nil
}

// matchAny reports whether some value matches the list.
func (g globList) matchAny(values []string) bool { return slices.ContainsFunc(values, g.match) }

// pathsCheck is the check dispatch finishes for t, when the event's changes
// were deferred and t has a paths condition; nil otherwise.
func (st *routeState) pathsCheck(t *trigger) *PathsCheck {
	ch := st.in.Changes
	if t.paths.empty() || ch == nil || ch.Deferred == nil {
		return nil
	}
	return &PathsCheck{Source: st.in.Source, ChangesQuery: *ch.Deferred, Paths: t.paths.patterns(), Reason: ch.Reason}
}
