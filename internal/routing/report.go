package routing

import (
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Reporting run results back to the Git host: a source's `report` and the
// root's `statusURL`.

// The values of a source's `report`.
const (
	// ReportStatus posts commit statuses.
	ReportStatus = "status"
	// ReportChecks posts GitHub Check Runs, as a GitHub App.
	ReportChecks = "checks"
)

// reportKinds are the source kinds whose Git host takes commit statuses;
// apiURLRequired are those without a public default API.
var (
	reportKinds    = []string{"github", "gitlab", "gitea", "forgejo", "bitbucket", "bitbucket-server"}
	apiURLRequired = []string{"gitea", "forgejo", "bitbucket-server"}
)

// StatusURLPlaceholders are the placeholders a statusURL may use: the
// PipelineRun's namespace, name and uid, its app and trigger, and the id of
// the event that started it (query-escaped).
var StatusURLPlaceholders = []string{"namespace", "name", "uid", "app", "trigger", "event"}

var placeholderRE = regexp.MustCompile(`\{([^{}]*)\}`)

// GitHubApp is a GitHub App's identity, for check runs.
type GitHubApp struct {
	AppID int64
	// InstallationID is 0 when it is looked up per repository.
	InstallationID int64
	// PrivateKey is the PEM key (nil unless Options.ResolveSecrets).
	PrivateKey    []byte
	PrivateKeyRef secretRef
}

// checkReport validates a source's report setting and records it on src.
func (l *loader) checkReport(file string, line int, s sourceSpec, src *Source) {
	switch {
	case s.GitHubApp != nil && s.Kind != "github":
		l.addf(file, line, "source %q: githubApp is GitHub's (check runs, the App's hook for recover)", s.Name)
	case s.GitHubApp != nil:
		src.GitHubApp = l.compileGitHubApp(file, line, s)
	}
	switch s.Report {
	case "":
		return
	case ReportStatus, ReportChecks:
	default:
		l.addf(file, line, "source %q: report %q: want %s or %s", s.Name, s.Report, ReportStatus, ReportChecks)
		return
	}
	src.Report = s.Report
	switch {
	case !slices.Contains(reportKinds, s.Kind):
		l.addf(file, line, "source %q: report: kind %q has no commit statuses (kinds that do: %s)", s.Name, s.Kind, strings.Join(reportKinds, ", "))
	case s.Report == ReportChecks && s.Kind != "github":
		l.addf(file, line, "source %q: report: checks are GitHub's only; use report: status", s.Name)
	case s.Report == ReportChecks && s.GitHubApp == nil:
		l.addf(file, line, "source %q: report: checks needs githubApp with appID and privateKey (check runs are a GitHub App's)", s.Name)
	case s.Report == ReportChecks:
	case s.APIToken == nil:
		l.addf(file, line, "source %q: report needs apiToken, a token allowed to write commit statuses", s.Name)
	case s.APIURL == "" && slices.Contains(apiURLRequired, s.Kind):
		l.addf(file, line, "source %q: report needs apiURL for kind %s (the server's API base, e.g. https://git.example.com/api/v1)", s.Name, s.Kind)
	}
}

// compileGitHubApp checks the source's GitHub App (report: checks, the
// App's hook for recover) and reads its private key.
func (l *loader) compileGitHubApp(file string, line int, s sourceSpec) *GitHubApp {
	a := s.GitHubApp
	if a.AppID <= 0 || a.InstallationID < 0 || a.PrivateKey == nil {
		l.addf(file, line, "source %q: githubApp needs appID and privateKey", s.Name)
		return nil
	}
	if (a.PrivateKey.Env == "") == (a.PrivateKey.File == "") {
		l.addf(file, line, "source %q: githubApp.privateKey needs exactly one of env or file", s.Name)
		return nil
	}
	app := &GitHubApp{AppID: a.AppID, InstallationID: a.InstallationID, PrivateKeyRef: *a.PrivateKey}
	if l.opts.ResolveSecrets {
		key, err := a.PrivateKey.resolve(l.opts.LookupEnv)
		if err != nil {
			l.addf(file, line, "source %q: githubApp.privateKey: %v", s.Name, err)
		}
		app.PrivateKey = key
	}
	return app
}

// ResolveKey returns the App's private key: the one read at load, else
// read now from its environment variable or file (the CLI loads rules
// without resolving secrets).
func (a *GitHubApp) ResolveKey() ([]byte, error) {
	if len(a.PrivateKey) > 0 {
		return a.PrivateKey, nil
	}
	return a.PrivateKeyRef.resolve(os.LookupEnv)
}

// compileStatusURL checks the root's statusURL template: known
// placeholders only, and an http(s) URL once they are filled in.
func (l *loader) compileStatusURL(file string, node *yaml.Node, tmpl string) string {
	if tmpl == "" {
		return ""
	}
	at := lineOf(node, "statusURL")
	for _, m := range placeholderRE.FindAllStringSubmatch(tmpl, -1) {
		if !slices.Contains(StatusURLPlaceholders, m[1]) {
			l.addf(file, at, "statusURL: unknown placeholder {%s} (known: {%s})", m[1], strings.Join(StatusURLPlaceholders, "}, {"))
			return ""
		}
	}
	u, err := url.Parse(placeholderRE.ReplaceAllString(tmpl, "x"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		l.addf(file, at, "statusURL %q must be an http(s) URL template such as https://tekton.example.com/#/namespaces/{namespace}/pipelineruns/{name}", tmpl)
		return ""
	}
	return tmpl
}

// StatusURL returns the root's statusURL template ("" when unset). Fill it
// in with ExpandStatusURL.
func (r *Rules) StatusURL() string { return r.statusURL }

// ExpandStatusURL fills in a statusURL template: each {placeholder} is
// replaced by its query-escaped value in values; unknown ones by "".
func ExpandStatusURL(tmpl string, values map[string]string) string {
	return placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		return url.QueryEscape(values[m[1:len(m)-1]])
	})
}

// RunNamespaces lists, sorted, every namespace granted to an app: where
// PipelineRuns may be created, and a watcher of the runs looks.
func (r *Rules) RunNamespaces() []string {
	var out []string
	for _, a := range r.apps {
		for _, ns := range a.namespaces {
			if !slices.Contains(out, ns) {
				out = append(out, ns)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Reporting reports whether any source reports run results to its Git host.
func (r *Rules) Reporting() bool {
	for _, s := range r.sources {
		if s.Report != "" {
			return true
		}
	}
	return false
}
