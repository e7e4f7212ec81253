package report

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// checks posts GitHub check runs as the source's GitHub App: created when
// the first state is posted, updated with the final one. It caches one
// token-refreshing transport per App installation.
type checks struct {
	base http.RoundTripper
	mu   sync.Mutex
	// installations caches transports by app, key and installation, and
	// installation ids by app, key and repository.
	transports    map[string]*ghinstallation.Transport
	installations map[string]int64
}

func newChecks(base http.RoundTripper) *checks {
	if base == nil {
		base = http.DefaultTransport
	}
	return &checks{base: base, transports: map[string]*ghinstallation.Transport{}, installations: map[string]int64{}}
}

// appKey names an App and its private key (a rotated key is a new App
// transport).
func appKey(app *routing.GitHubApp) string {
	sum := sha256.Sum256(app.PrivateKey)
	return fmt.Sprintf("%d/%x", app.AppID, sum[:8])
}

// client returns a go-github client authenticated as the App's
// installation on owner/name.
func (c *checks) client(ctx context.Context, src *routing.Source, owner, name string) (*github.Client, error) {
	app := src.GitHubApp
	if app == nil || len(app.PrivateKey) == 0 {
		return nil, &PostError{StatusCode: http.StatusBadRequest, msg: "source " + src.Name + ": report: checks without a GitHub App key"}
	}
	base := apiBase(src, "https://api.github.com")
	id, err := c.installation(ctx, src, base, owner, name)
	if err != nil {
		return nil, err
	}
	key := appKey(app) + "/" + fmt.Sprint(id) + "/" + base
	c.mu.Lock()
	tr, ok := c.transports[key]
	if !ok {
		tr, err = ghinstallation.New(c.base, app.AppID, id, app.PrivateKey)
		if err == nil {
			tr.BaseURL = base
			c.transports[key] = tr
		}
	}
	c.mu.Unlock()
	if err != nil {
		return nil, &PostError{StatusCode: http.StatusBadRequest, msg: fmt.Sprintf("source %s: github app: %v", src.Name, err)}
	}
	return newGitHubClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}, base)
}

// installation returns the App's installation id on owner/name: the
// configured one, or GitHub's answer, cached.
func (c *checks) installation(ctx context.Context, src *routing.Source, base, owner, name string) (int64, error) {
	app := src.GitHubApp
	if app.InstallationID > 0 {
		return app.InstallationID, nil
	}
	key := appKey(app) + "/" + base + "/" + owner + "/" + name
	c.mu.Lock()
	id, ok := c.installations[key]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	atr, err := ghinstallation.NewAppsTransport(c.base, app.AppID, app.PrivateKey)
	if err != nil {
		return 0, &PostError{StatusCode: http.StatusBadRequest, msg: fmt.Sprintf("source %s: github app: %v", src.Name, err)}
	}
	atr.BaseURL = base
	gh, err := newGitHubClient(&http.Client{Transport: atr, Timeout: 10 * time.Second}, base)
	if err != nil {
		return 0, err
	}
	inst, resp, err := gh.Apps.FindRepositoryInstallation(ctx, owner, name)
	if err != nil {
		return 0, checkError(fmt.Errorf("github app installation on %s/%s: %w", owner, name, err), resp)
	}
	c.mu.Lock()
	c.installations[key] = inst.GetID()
	c.mu.Unlock()
	return inst.GetID(), nil
}

func newGitHubClient(hc *http.Client, base string) (*github.Client, error) {
	client := github.NewClient(hc)
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/")
	if err != nil {
		return nil, &PostError{StatusCode: http.StatusBadRequest, msg: fmt.Sprintf("github apiURL: %v", err)}
	}
	client.BaseURL = u
	return client, nil
}

// checkError is err as a PostError, with the status of GitHub's answer:
// the call's own, or the installation token's (a wrong App id or key is
// a 401 there, not worth retrying).
func checkError(err error, resp *github.Response) error {
	code := 0
	if resp != nil {
		code = resp.StatusCode
	}
	var he *ghinstallation.HTTPError
	if errors.As(err, &he) && he.Response != nil {
		code = he.Response.StatusCode
	}
	return redact(err, code, nil)
}

// post creates the check run (id 0) or updates it, and returns its id.
func (c *checks) post(ctx context.Context, src *routing.Source, j Job, detailsURL string, id int64) (int64, error) {
	owner, name, err := splitRepo(j.Run.Repository)
	if err != nil {
		return 0, err
	}
	gh, err := c.client(ctx, src, owner, name)
	if err != nil {
		return 0, err
	}
	status, conclusion := checkState(j)
	title, summary := j.Description, checkSummary(j)
	output := &github.CheckRunOutput{Title: &title, Summary: &summary}
	var details *string
	if detailsURL != "" {
		details = &detailsURL
	}
	var completedAt *github.Timestamp
	if status == "completed" {
		completedAt = &github.Timestamp{Time: j.Time}
	}
	var actions []*github.CheckRunAction
	if status == "completed" && j.Held == nil && src.Commands != nil {
		actions = []*github.CheckRunAction{rerunAction}
	}
	external := CheckRunExternalID(j.Run)
	var run *github.CheckRun
	var resp *github.Response
	if id == 0 {
		run, resp, err = gh.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
			Name: j.Run.Context(), HeadSHA: j.Run.Revision, DetailsURL: details, ExternalID: &external,
			Status: &status, Conclusion: conclusion, CompletedAt: completedAt, Output: output, Actions: actions,
		})
	} else {
		run, resp, err = gh.Checks.UpdateCheckRun(ctx, owner, name, id, github.UpdateCheckRunOptions{
			Name: j.Run.Context(), DetailsURL: details, ExternalID: &external, Status: &status, Conclusion: conclusion,
			CompletedAt: completedAt, Output: output, Actions: actions,
		})
	}
	if err != nil {
		return id, checkError(fmt.Errorf("github check run: %w", err), resp)
	}
	return run.GetID(), nil
}

// RerunAction is the identifier of a check run's "Re-run" button: GitHub
// sends it back in a check_run requested_action webhook.
const RerunAction = "rerun"

// rerunAction is the button of a finished check run (GitHub's limits:
// label 20, description 40 characters).
var rerunAction = &github.CheckRunAction{Label: "Re-run", Identifier: RerunAction, Description: "Run this trigger again (new run)"}

// externalIDPrefix starts every check run's external_id.
const externalIDPrefix = "switchyard:v1:"

// CheckRunExternalID is a check run's external_id: the router source, the
// app, the trigger and the event id (last: ids are arbitrary text), what a
// Re-run needs to find the event again (ingest.ParseCheckRunExternalID
// reads it). Names are DNS labels: no colon.
func CheckRunExternalID(r Run) string {
	return externalIDPrefix + r.Source + ":" + r.App + ":" + r.Trigger + ":" + r.EventID
}

// checkState maps a job to a check run's status and conclusion: Checks
// have cancelled and timed_out, so those runs say so in the state itself.
func checkState(j Job) (status string, conclusion *string) {
	if j.awaiting() {
		return "queued", nil // nothing runs until an approver approves
	}
	if j.State == StatePending {
		return "in_progress", nil
	}
	c := "failure"
	switch {
	case j.State == StateSuccess:
		c = "success"
	case j.TimedOut:
		c = "timed_out"
	case j.Cancelled, j.State == StateError:
		c = "cancelled"
	}
	return "completed", &c
}

// checkSummary is the check run's Markdown summary: the run, then a line
// per task.
func checkSummary(j Job) string {
	var b strings.Builder
	if j.Held != nil {
		fmt.Fprintf(&b, "Event `%s` (app `%s`, trigger `%s`) is held by %s until %s: %s.\n",
			j.Run.EventID, j.Run.App, j.Run.Trigger, mdCell(strings.Join(j.Held.Gates, ", ")),
			j.Held.Deadline.UTC().Format(time.RFC3339), mdCell(j.Description))
		return b.String()
	}
	kind := j.Run.Kind
	if kind == "" {
		kind = RunKindPipelineRun
	}
	fmt.Fprintf(&b, "%s `%s/%s` (app `%s`, trigger `%s`), started by event `%s`.\n",
		kind, j.Run.Namespace, j.Run.Name, j.Run.App, j.Run.Trigger, j.Run.EventID)
	if len(j.Tasks) > 0 {
		b.WriteString("\n| task | kind | run | result | duration |\n|---|---|---|---|---|\n")
		for _, t := range j.Tasks {
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %s |\n", mdCell(t.PipelineTask), mdCell(t.Kind), mdCell(t.Name), mdCell(t.Result), mdCell(t.Duration))
		}
	}
	return b.String()
}

// mdCell keeps a value inside its Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "`", "'").Replace(s)
}
