package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-github/v60/github"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Changed files of a GitHub push, for paths conditions.
//
// A push payload lists the pushed commits, each with the paths it added,
// modified and removed. The list is not always the whole story, and a paths
// condition must never skip a build for want of information. The rule:
//
//   - a deleted ref changed no file: the list is complete and empty;
//   - the list is incomplete when the payload has 20 commits or more
//     (GitHub includes at most 20 in push payloads), when a push that neither
//     created nor deleted the ref lists no commit, or when the push was
//     forced (the commits list shows what was added, not what was dropped);
//   - an incomplete list is completed with GitHub's compare API
//     (Repositories.CompareCommits before...after, and after...before too
//     when the head is not simply ahead) when the source has an apiToken;
//   - a new ref without new commits (a tag, a branch created at an existing
//     commit) has nothing to compare against: incomplete;
//   - whatever stays incomplete (no token, an API error, 300 files or more,
//     the compare API's maximum) makes paths conditions match, and explain
//     says why.

// githubPayloadCommitLimit is how many commits GitHub puts in a push payload
// at most; a payload with that many may have been cut.
const githubPayloadCommitLimit = 20

// githubCompareFileLimit is how many files the compare API lists at most.
const githubCompareFileLimit = 300

// githubAPITimeout bounds the compare calls of one event.
const githubAPITimeout = 10 * time.Second

// githubAPIClient is the HTTP client for GitHub's API.
var githubAPIClient = &http.Client{Timeout: githubAPITimeout}

// ChangedFiles returns the files a GitHub push event changed, or nil when ev
// is not a GitHub push (routing then treats paths conditions as
// unchecked). It reads the payload's commits and, when they may not list
// every change and src has an API token, asks GitHub's compare API. It
// never fails: a failed fetch yields incomplete Changes whose Reason says
// why, and paths conditions then match.
//
// The server calls it after Normalize, before routing, when the rules use
// paths (Rules.UsesPaths); explain calls it offline (no token resolved).
func ChangedFiles(ctx context.Context, src *routing.Source, ev *event.Event) *routing.Changes {
	if src == nil || src.Kind != "github" || !isGitHubPush(ev) {
		return nil
	}
	var push githubPushChanges
	if err := json.Unmarshal(ev.Data(), &push); err != nil {
		return &routing.Changes{Reason: "push payload: " + err.Error()}
	}
	ch, needAPI := payloadChanges(&push)
	if !needAPI {
		return ch
	}
	if len(src.APIToken) == 0 {
		ch.Reason += " and source " + src.Name + " has no apiToken to ask GitHub's compare API"
		return ch
	}
	ctx, cancel := context.WithTimeout(ctx, githubAPITimeout)
	defer cancel()
	fetched, err := compareChanges(ctx, src, &push)
	if err != nil {
		ch.Reason += "; compare API: " + err.Error()
		return ch
	}
	return fetched
}

// githubPushChanges is the part of a push payload that says what changed.
type githubPushChanges struct {
	Before     string `json:"before"`
	After      string `json:"after"`
	Created    bool   `json:"created"`
	Deleted    bool   `json:"deleted"`
	Forced     bool   `json:"forced"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Commits []githubCommitFiles `json:"commits"`
}

// githubCommitFiles is the paths one pushed commit added, modified and
// removed.
type githubCommitFiles struct {
	Added    []string `json:"added"`
	Modified []string `json:"modified"`
	Removed  []string `json:"removed"`
}

// isGitHubPush reports whether ev was normalized from a GitHub push.
func isGitHubPush(ev *event.Event) bool {
	if ev == nil || extensionString(ev, "provider") != "github" {
		return false
	}
	switch ev.Type() {
	case TypeGitPush, TypeGitTag, TypeGitBranchDeleted, TypeGitTagDeleted, "com.github.push":
		return true
	}
	return false
}

func extensionString(ev *event.Event, name string) string {
	s, _ := ev.Extensions()[name].(string)
	return s
}

// payloadChanges applies the rule above to the payload alone, and says
// whether the compare API could complete it.
func payloadChanges(push *githubPushChanges) (ch *routing.Changes, needAPI bool) {
	n := len(push.Commits)
	switch {
	case push.Deleted || push.After == zeroSHA:
		return &routing.Changes{Files: []string{}, Complete: true, Reason: "ref deleted: no file changed"}, false
	case n == 0 && push.Created:
		return &routing.Changes{Reason: "new ref without new commits: nothing to compare against"}, false
	case n == 0:
		return &routing.Changes{Reason: "the push payload lists no commits"}, true
	}
	ch = &routing.Changes{Files: commitFiles(push.Commits)}
	switch {
	case push.Forced:
		ch.Reason = "forced push: its commits do not show what it dropped"
		return ch, true
	case n >= githubPayloadCommitLimit:
		ch.Reason = fmt.Sprintf("the push payload lists %d commits, GitHub's maximum, so it may be cut", n)
		return ch, true
	}
	ch.Complete = true
	ch.Reason = fmt.Sprintf("from the %d commits of the push payload", n)
	return ch, false
}

func commitFiles(commits []githubCommitFiles) []string {
	var files []string
	for _, c := range commits {
		files = append(files, c.Added...)
		files = append(files, c.Modified...)
		files = append(files, c.Removed...)
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// compareChanges asks GitHub what changed between before and after.
func compareChanges(ctx context.Context, src *routing.Source, push *githubPushChanges) (*routing.Changes, error) {
	owner, repo, ok := strings.Cut(push.Repository.FullName, "/")
	before, after := push.Before, push.After
	switch {
	case !ok || before == "" || after == "":
		return nil, fmt.Errorf("the payload lacks the repository or the before/after commits")
	case before == zeroSHA:
		return nil, fmt.Errorf("the ref is new: nothing to compare against")
	}
	client := github.NewClient(githubAPIClient).WithAuthToken(string(src.APIToken))
	if src.APIURL != "" {
		base, err := url.Parse(strings.TrimSuffix(src.APIURL, "/") + "/")
		if err != nil {
			return nil, fmt.Errorf("apiURL: %w", err)
		}
		client.BaseURL = base
	}
	// Files are listed in full on the first page; one commit per page
	// keeps the answer small.
	opts := &github.ListOptions{PerPage: 1}
	cmp, _, err := client.Repositories.CompareCommits(ctx, owner, repo, before, after, opts)
	if err != nil {
		return nil, err
	}
	comparisons := []*github.CommitsComparison{cmp}
	how := before + "..." + after
	// A head that is behind or diverged (a forced push) dropped commits;
	// what they changed shows comparing the other way.
	if s := cmp.GetStatus(); s != "ahead" && s != "identical" {
		back, _, err := client.Repositories.CompareCommits(ctx, owner, repo, after, before, opts)
		if err != nil {
			return nil, err
		}
		comparisons = append(comparisons, back)
		how += " and " + after + "..." + before
	}
	ch := &routing.Changes{Files: []string{}, Complete: true, Reason: "from GitHub's compare API (" + how + ")"}
	for _, c := range comparisons {
		if len(c.Files) >= githubCompareFileLimit {
			ch.Complete = false
			ch.Reason = fmt.Sprintf("GitHub's compare API lists %d files, its maximum, so the list may be cut", len(c.Files))
		}
		for _, f := range c.Files {
			ch.Files = append(ch.Files, f.GetFilename())
			if p := f.GetPreviousFilename(); p != "" {
				ch.Files = append(ch.Files, p)
			}
		}
	}
	slices.Sort(ch.Files)
	ch.Files = slices.Compact(ch.Files)
	return ch, nil
}
