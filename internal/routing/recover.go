package routing

import (
	"fmt"
	"strings"
	"time"
)

// A source's recover block: the hooks whose failed deliveries serve asks
// the Git host to redeliver (GitHub), or whose disabling it reports
// (GitLab). internal/recovery does the work; this file only compiles it.

// recoverSpec is a source's `recover:` block.
type recoverSpec struct {
	Hooks []recoverHookSpec `yaml:"hooks"`
	// Every is how often serve runs the recovery (after every start too);
	// default 15m, at least 1m.
	Every string `yaml:"every"`
	// Since bounds how far back deliveries are looked at; default 24h.
	Since string `yaml:"since"`
	// App was the GitHub App's credentials; they are the source's
	// githubApp now. Kept only to say so at load.
	App any `yaml:"app"`
}

// recoverHookSpec names one hook: a repository's (GitHub repository or
// GitLab project), an organization's, or the GitHub App's.
type recoverHookSpec struct {
	Repository   string `yaml:"repository"`
	Organization string `yaml:"organization"`
	App          bool   `yaml:"app"`
	HookID       int64  `yaml:"hookID"`
}

// Defaults and bounds of a recover block.
const (
	DefaultRecoverEvery = 15 * time.Minute
	DefaultRecoverSince = 24 * time.Hour
	// MinRecoverEvery keeps a busy hook's listing from eating the API
	// rate limit.
	MinRecoverEvery = time.Minute
	// MaxRecoverSince is the accepted-events bucket's default lifetime: an
	// older delivery may have been stored and forgotten since.
	MaxRecoverSince = 7 * 24 * time.Hour
)

// Recover is a source's compiled recover block. The App's hook is listed
// with the source's githubApp, the one set of App credentials a source has.
type Recover struct {
	Hooks        []RecoverHook
	Every, Since time.Duration
}

// RecoverHook is one hook of a recover block: exactly one of Repository,
// Organization or App is set; HookID is zero for the App's hook.
type RecoverHook struct {
	Repository   string
	Organization string
	App          bool
	HookID       int64
}

// String names the hook for logs and tables.
func (h RecoverHook) String() string {
	switch {
	case h.App:
		return "app"
	case h.Organization != "":
		return fmt.Sprintf("org %s hook %d", h.Organization, h.HookID)
	}
	return fmt.Sprintf("%s hook %d", h.Repository, h.HookID)
}

// compileRecover checks a source's recover block; nil without one.
func (l *loader) compileRecover(file string, at func(string) int, s sourceSpec) *Recover {
	spec := s.Recover
	if spec == nil {
		return nil
	}
	line := at("recover")
	bad := func(format string, args ...any) {
		l.addf(file, line, "source %q: recover: "+format, append([]any{s.Name}, args...)...)
	}
	if s.Kind != "github" && s.Kind != "gitlab" {
		bad("only github and gitlab sources can recover deliveries, not %q", s.Kind)
	}
	rc := &Recover{}
	rc.Every = l.recoverDuration(spec.Every, DefaultRecoverEvery, MinRecoverEvery, 0, "every", bad)
	rc.Since = l.recoverDuration(spec.Since, DefaultRecoverSince, time.Minute, MaxRecoverSince, "since", bad)
	if len(spec.Hooks) == 0 {
		bad("hooks lists no hook")
	}
	if spec.App != nil {
		bad("app was removed: put the App's appID and privateKey in the source's githubApp (one set of App credentials for check runs and the App's hook)")
	}
	for i, h := range spec.Hooks {
		if msg := checkRecoverHook(s, h); msg != "" {
			bad("hooks[%d]: %s", i, msg)
		}
		rc.Hooks = append(rc.Hooks, RecoverHook(h))
	}
	return rc
}

// checkRecoverHook says what is wrong with one hook entry, or "".
func checkRecoverHook(s sourceSpec, h recoverHookSpec) string {
	set := 0
	for _, b := range []bool{h.Repository != "", h.Organization != "", h.App} {
		if b {
			set++
		}
	}
	switch {
	case set != 1:
		return "give exactly one of repository, organization or app"
	case h.App && s.Kind != "github", h.Organization != "" && s.Kind != "github":
		return "organization and app hooks are GitHub's; a GitLab hook is a project's (repository)"
	case h.App && s.GitHubApp == nil:
		return "the App's hook needs the source's githubApp (appID, privateKey)"
	case h.App && h.HookID != 0:
		return "the App's hook has no hookID"
	case !h.App && h.HookID <= 0:
		return "hookID is required (the number in the hook's settings URL)"
	case h.Repository != "" && s.Kind == "github" && strings.Count(h.Repository, "/") != 1:
		return fmt.Sprintf("repository %q must be owner/name", h.Repository)
	case !h.App && s.APIToken == nil:
		return "the source needs an apiToken to call the host's hooks API"
	}
	return ""
}

// recoverDuration parses one of the block's durations: def when empty.
func (l *loader) recoverDuration(v string, def, lo, hi time.Duration, field string, bad func(string, ...any)) time.Duration {
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		bad("%s %q is not a duration such as 15m", field, v)
	case d < lo:
		bad("%s %s is below the minimum %s", field, v, lo)
	case hi > 0 && d > hi:
		bad("%s %s is beyond %s, how long stored events are remembered", field, v, hi)
	default:
		return d
	}
	return def
}
