package ingest

// Tests added for commands_bitbucket.go mutants that lived (docs/testing.md,
// "Mutation testing"): the comment's fields and the fork check, read from
// the hosts' samples without a queue.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// bitbucketEvent normalizes body (a sample with fields replaced by change)
// as the kind's delivery of eventKey.
func bitbucketEvent(t *testing.T, kind, eventKey, path string, change func(map[string]any)) event.Event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	change(p)
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	idHeader := "X-Request-UUID"
	if kind == "bitbucket-server" {
		idHeader = "X-Request-Id"
	}
	return normalizeSample(t, kind, map[string]string{"Content-Type": "application/json", "X-Event-Key": eventKey, idHeader: "d-1"}, string(body))
}

// TestBitbucketCommentFields: a comment is by the pull request's author
// only when the commenter is that author; an edit is a comment, not a new
// one (it is audited as running nothing).
func TestBitbucketCommentFields(t *testing.T) {
	cloudComment := filepath.Join("testdata", "comments", "bitbucket-pull-request-comment-created.json")
	dcComment := filepath.Join("testdata", "comments", "bitbucket-server-pr-comment-added.json")
	// cloudBy: a Cloud comment by account on a pull request opened by author.
	cloudBy := func(account, author string) func(map[string]any) {
		return func(p map[string]any) {
			p["actor"].(map[string]any)["account_id"] = account
			p["pullrequest"].(map[string]any)["author"].(map[string]any)["account_id"] = author
		}
	}
	// dcBy: a Data Center comment by slug on a pull request opened by author.
	dcBy := func(slug, author string) func(map[string]any) {
		return func(p map[string]any) {
			p["comment"].(map[string]any)["author"].(map[string]any)["slug"] = slug
			p["pullRequest"].(map[string]any)["author"].(map[string]any)["user"].(map[string]any)["slug"] = author
		}
	}
	for name, tc := range map[string]struct {
		kind, key, path string
		change          func(map[string]any)
		login           string
		created, author bool
	}{
		"cloud, by the author":           {"bitbucket", "pullrequest:comment_created", cloudComment, cloudBy("557058:author", "557058:author"), "557058:author", true, true},
		"cloud, by another":              {"bitbucket", "pullrequest:comment_created", cloudComment, cloudBy("557058:maint", "557058:author"), "557058:maint", true, false},
		"cloud, an edit":                 {"bitbucket", "pullrequest:comment_updated", cloudComment, cloudBy("557058:maint", "557058:author"), "557058:maint", false, false},
		"cloud, no account on either":    {"bitbucket", "pullrequest:comment_created", cloudComment, cloudBy("", ""), "", true, false},
		"data center, by the author":     {"bitbucket-server", "pr:comment:added", dcComment, dcBy("author", "Author"), "author", true, true},
		"data center, by another":        {"bitbucket-server", "pr:comment:added", dcComment, dcBy("reviewer", "Author"), "reviewer", true, false},
		"data center, an edit":           {"bitbucket-server", "pr:comment:edited", dcComment, dcBy("reviewer", "Author"), "reviewer", false, false},
		"data center, an author's edit":  {"bitbucket-server", "pr:comment:edited", dcComment, dcBy("AUTHOR", "Author"), "AUTHOR", false, true},
		"data center, no slug on either": {"bitbucket-server", "pr:comment:added", dcComment, dcBy("", ""), "", true, false},
	} {
		t.Run(name, func(t *testing.T) {
			ev := bitbucketEvent(t, tc.kind, tc.key, tc.path, tc.change)
			cp := lookupProvider(t, tc.kind).(commentProvider)
			c, err := cp.prComment(&ev)
			if err != nil || c == nil {
				t.Fatalf("prComment: %+v %v, want a comment", c, err)
			}
			if c.login != tc.login || c.created != tc.created || c.byAuthor != tc.author {
				t.Errorf("login %q created %v byAuthor %v, want %q %v %v", c.login, c.created, c.byAuthor, tc.login, tc.created, tc.author)
			}
		})
	}
}

// TestBitbucketTrustedPullRequest: a pull request within one repository is
// trusted, one from a fork is not, on Cloud and on Data Center.
func TestBitbucketTrustedPullRequest(t *testing.T) {
	cloudPR := filepath.Join(sampleDir, "bitbucket", "pull-request-created.json")
	dcPR := filepath.Join(sampleDir, "bitbucket-server", "pr-opened.json")
	same := func(map[string]any) {}
	cloudFork := func(p map[string]any) {
		p["pullrequest"].(map[string]any)["source"].(map[string]any)["repository"].(map[string]any)["full_name"] = "mallory/repo_name"
	}
	dcFork := func(p map[string]any) {
		p["pullRequest"].(map[string]any)["fromRef"].(map[string]any)["repository"].(map[string]any)["slug"] = "fork"
	}
	dcNoSlugs := func(p map[string]any) {
		for _, ref := range []string{"fromRef", "toRef"} {
			p["pullRequest"].(map[string]any)[ref].(map[string]any)["repository"].(map[string]any)["slug"] = ""
		}
	}
	for name, tc := range map[string]struct {
		kind, key, path string
		change          func(map[string]any)
		trusted         bool
	}{
		"cloud, same repository":       {"bitbucket", "pullrequest:created", cloudPR, same, true},
		"cloud, fork":                  {"bitbucket", "pullrequest:created", cloudPR, cloudFork, false},
		"data center, same repository": {"bitbucket-server", "pr:opened", dcPR, same, true},
		"data center, fork":            {"bitbucket-server", "pr:opened", dcPR, dcFork, false},
		"data center, no repositories": {"bitbucket-server", "pr:opened", dcPR, dcNoSlugs, false},
	} {
		t.Run(name, func(t *testing.T) {
			ev := bitbucketEvent(t, tc.kind, tc.key, tc.path, tc.change)
			if got := lookupProvider(t, tc.kind).(commentProvider).trustedPullRequest(&ev); got != tc.trusted {
				t.Errorf("trusted %v, want %v", got, tc.trusted)
			}
		})
	}
}
