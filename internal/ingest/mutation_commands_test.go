package ingest

// Tests added for comment-command mutants that lived (docs/testing.md,
// "Mutation testing"): the hosts' readings of comments and pull requests.

import (
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

func dataEvent(t *testing.T, typ, data string) *event.Event {
	t.Helper()
	ev := event.New()
	ev.SetID("e-1")
	ev.SetSource("urn:test")
	ev.SetType(typ)
	ev.SetExtension("repository", "acme/app")
	if err := ev.SetData(event.ApplicationJSON, []byte(data)); err != nil {
		t.Fatal(err)
	}
	return &ev
}

func TestGitLabNoteComment(t *testing.T) {
	note := func(action string, author int) string {
		return `{"user":{"username":"alice"},"object_attributes":{"id":42,"note":"/retest","noteable_type":"MergeRequest","action":"` + action +
			`","author_id":` + string(rune('0'+author)) + `},"merge_request":{"iid":7,"author_id":1}}`
	}
	for _, tc := range []struct {
		action            string
		author            int
		created, byAuthor bool
	}{
		{"", 1, true, true},
		{"create", 2, true, false},
		{"update", 1, false, true},
	} {
		c, err := gitlabProvider{}.prComment(dataEvent(t, "com.gitlab.note", note(tc.action, tc.author)))
		if err != nil || c == nil {
			t.Fatalf("action %q: %+v, %v", tc.action, c, err)
		}
		if c.created != tc.created || c.byAuthor != tc.byAuthor || c.number != "7" || c.login != "alice" {
			t.Errorf("action %q, author %d: %+v, want created %v, byAuthor %v", tc.action, tc.author, c, tc.created, tc.byAuthor)
		}
	}
}

func TestTrustedPullRequests(t *testing.T) {
	mr := func(source, target string) string {
		return `{"object_attributes":{"source_project_id":` + source + `,"target_project_id":` + target + `}}`
	}
	pull := func(head, base string) string {
		return `{"pull_request":{"head":{"repo":{"full_name":"` + head + `"}},"base":{"repo":{"full_name":"` + base + `"}}}}`
	}
	for name, tc := range map[string]struct {
		p    commentProvider
		data string
		want bool
	}{
		"gitlab, same project":    {gitlabProvider{}, mr("5", "5"), true},
		"gitlab, fork":            {gitlabProvider{}, mr("6", "5"), false},
		"gitlab, no project":      {gitlabProvider{}, mr("0", "0"), false},
		"gitlab, not JSON":        {gitlabProvider{}, `"x"`, false},
		"github, member":          {githubProvider{}, `{"pull_request":{"author_association":"MEMBER"}}`, true},
		"github, first-time user": {githubProvider{}, `{"pull_request":{"author_association":"FIRST_TIME_CONTRIBUTOR"}}`, false},
		"github, not JSON":        {githubProvider{}, `"x"`, false},
		"gitea, same repository":  {giteaProvider{}, pull("acme/app", "acme/app"), true},
		"gitea, fork":             {giteaProvider{}, pull("bob/app", "acme/app"), false},
		"gitea, no repository":    {giteaProvider{}, pull("", ""), false},
		"gitea, not JSON":         {giteaProvider{}, `"x"`, false},
	} {
		if got := tc.p.trustedPullRequest(dataEvent(t, TypeGitPullRequest, tc.data)); got != tc.want {
			t.Errorf("%s: trusted %v, want %v", name, got, tc.want)
		}
	}
}
