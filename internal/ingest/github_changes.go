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
//     when the head is not simply ahead) when the source has an apiToken:
//     not on the request path (a slow GitHub must not make the sender time
//     out) but by dispatch, after the 202 (ChangesFetcher), or by
//     `router explain --fetch-changes` (ExplainInput);
//   - a new ref without new commits (a tag, a branch created at an existing
//     commit) has nothing to compare against: incomplete;
//   - whatever stays incomplete (no token, a 4xx answer, 300 files or more,
//     the compare API's maximum, a 5xx or timeout after the work's last
//     attempt) makes paths conditions match, and explain or the target's
//     state says why.

// githubPayloadCommitLimit is how many commits GitHub puts in a push payload
// at most; a payload with that many may have been cut.
const githubPayloadCommitLimit = 20

// githubCompareFileLimit is how many files the compare API lists at most.
const githubCompareFileLimit = 300

// githubAPITimeout bounds the compare calls of one event.
const githubAPITimeout = 10 * time.Second

// githubAPIClient is the HTTP client for GitHub's API.
var githubAPIClient = &http.Client{Timeout: githubAPITimeout}

// ChangedFiles returns the files a GitHub push event changed, as its
// payload lists them, or nil when ev is not a GitHub push (routing then
// treats paths conditions as unchecked). It never calls the network: when
// the payload may not list every change and src has an API token, the
// Changes are Deferred, naming the push for the compare API, and routing
// leaves the paths check to dispatch. It never fails: what cannot be known
// yields incomplete Changes whose Reason says why, and paths conditions
// then match.
//
// The server calls it after Normalize, before routing, when the rules use
// paths (Rules.UsesPaths); explain calls it offline (no token resolved).
func ChangedFiles(src *routing.Source, ev *event.Event) *routing.Changes {
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
	q := routing.ChangesQuery{Repository: push.Repository.FullName, Before: push.Before, After: push.After}
	if err := comparable(q); err != nil {
		ch.Reason += "; compare API: " + err.Error()
		return ch
	}
	ch.Deferred = &q
	return ch
}

// ExplainInput is RouteInput for `router explain`, which may ask GitHub
// itself: a deferred paths check is finished here, synchronously, with
// src's API token (set by --fetch-changes), so explain decides as dispatch
// would.
func ExplainInput(ctx context.Context, rules *routing.Rules, src *routing.Source, ev *event.Event, header http.Header) routing.Input {
	in := RouteInput(rules, src, ev, header)
	in.Changes = completeChanges(ctx, src, in.Changes)
	return in
}

// completeChanges asks the compare API for deferred changes; a failure
// keeps the payload's files, incomplete, with the reason.
func completeChanges(ctx context.Context, src *routing.Source, ch *routing.Changes) *routing.Changes {
	if ch == nil || ch.Deferred == nil {
		return ch
	}
	fetched, err := compareChanges(ctx, src, *ch.Deferred)
	if err != nil {
		return &routing.Changes{Files: ch.Files, Reason: ch.Reason + "; compare API: " + err.Error()}
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

// comparable reports why the compare API cannot answer q, nil when it
// can.
func comparable(q routing.ChangesQuery) error {
	switch _, _, ok := strings.Cut(q.Repository, "/"); {
	case !ok || q.Before == "" || q.After == "":
		return fmt.Errorf("%w: the payload lacks the repository or the before/after commits", errNotComparable)
	case q.Before == zeroSHA:
		return fmt.Errorf("%w: the ref is new: nothing to compare against", errNotComparable)
	}
	return nil
}

// compareChanges asks GitHub what changed between q's before and after,
// within githubAPITimeout.
func compareChanges(ctx context.Context, src *routing.Source, q routing.ChangesQuery) (*routing.Changes, error) {
	if err := comparable(q); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, githubAPITimeout)
	defer cancel()
	owner, repo, _ := strings.Cut(q.Repository, "/")
	before, after := q.Before, q.After
	client := github.NewClient(githubAPIClient).WithAuthToken(string(src.APIToken))
	if src.APIURL != "" {
		base, err := url.Parse(strings.TrimSuffix(src.APIURL, "/") + "/")
		if err != nil {
			return nil, fmt.Errorf("%w: apiURL: %w", errNotComparable, err)
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
