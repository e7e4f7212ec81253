package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Comment commands on GitHub: issue_comment events on pull requests.

var _ commentProvider = githubProvider{}

// githubComment is the part of an issue_comment payload commands read.
type githubComment struct {
	Action string `json:"action"`
	Issue  struct {
		Number      int              `json:"number"`
		PullRequest *json.RawMessage `json:"pull_request"`
		User        struct {
			Login string `json:"login"`
		} `json:"user"`
	} `json:"issue"`
	Comment struct {
		ID   int64  `json:"id"`
		Body string `json:"body"`
		User struct {
			Login string `json:"login"`
		} `json:"user"`
	} `json:"comment"`
}

// githubRepoRE is an owner/name GitHub accepts; anything else is never put
// into an API path.
var githubRepoRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

func (githubProvider) prComment(ev *event.Event) (*prComment, error) {
	if ev.Type() != "com.github.issue_comment" {
		return nil, nil
	}
	var p githubComment
	if err := json.Unmarshal(ev.Data(), &p); err != nil {
		return nil, fmt.Errorf("issue_comment payload: %w", err)
	}
	repo, _ := ev.Extensions()["repository"].(string)
	if p.Issue.PullRequest == nil || p.Comment.ID == 0 || !githubRepoRE.MatchString(repo) {
		return nil, nil // a comment on an issue, not a pull request
	}
	return &prComment{id: strconv.FormatInt(p.Comment.ID, 10), created: p.Action == "created", login: p.Comment.User.Login,
		body: p.Comment.Body, repo: repo, number: strconv.Itoa(p.Issue.Number), byAuthor: strings.EqualFold(p.Comment.User.Login, p.Issue.User.Login)}, nil
}

// pullRequestAt asks GitHub's API for the pull request (its head moves
// with every push) and normalizes it as a pull_request "synchronize"
// delivery with id, the comment's repository and sender.
func (githubProvider) pullRequestAt(ctx context.Context, src *routing.Source, c *prComment, ev *event.Event, id string) (*event.Event, error) {
	if len(src.APIToken) == 0 {
		return nil, fmt.Errorf("source %s has no apiToken to read pull request %s from GitHub's API", src.Name, c.number)
	}
	base := strings.TrimSuffix(src.APIURL, "/")
	if base == "" {
		base = "https://api.github.com"
	}
	return pullRequestEvent(ctx, apiCall{url: base + "/repos/" + c.repo + "/pulls/" + c.number, accept: "application/vnd.github+json", auth: "Bearer " + string(src.APIToken)},
		c, ev, "synchronize", githubProvider{}.Normalize, githubEventHeader, githubDeliveryHeader, id)
}

// trustedPullRequest: GitHub says how the author relates to the
// repository; owners, members and collaborators are trusted.
func (githubProvider) trustedPullRequest(ev *event.Event) bool {
	var p struct {
		PullRequest struct {
			AuthorAssociation string `json:"author_association"`
		} `json:"pull_request"`
	}
	if json.Unmarshal(ev.Data(), &p) != nil {
		return false
	}
	switch p.PullRequest.AuthorAssociation {
	case "OWNER", "MEMBER", "COLLABORATOR":
		return true
	}
	return false
}

// errHostUnavailable is a Git host API failure a retry may heal: the
// delivery is answered 503 and redelivered.
var errHostUnavailable error = hostUnavailable{}

type hostUnavailable struct{}

func (hostUnavailable) Error() string     { return "git host unavailable" }
func (hostUnavailable) Unavailable() bool { return true }

var _ teamMembers = githubProvider{}

// memberOf asks GitHub's team memberships API, team by team, whether
// login is an active member.
func (githubProvider) memberOf(ctx context.Context, src *routing.Source, login string, teams []string) ([]string, error) {
	if len(src.APIToken) == 0 || !githubLoginRE.MatchString(login) {
		return nil, nil
	}
	base := strings.TrimSuffix(src.APIURL, "/")
	if base == "" {
		base = "https://api.github.com"
	}
	ctx, cancel := context.WithTimeout(ctx, githubAPITimeout)
	defer cancel()
	var out []string
	for _, team := range teams {
		org, slug, _ := strings.Cut(team, "/")
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/orgs/"+url.PathEscape(org)+"/teams/"+url.PathEscape(slug)+"/memberships/"+login, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("Authorization", "Bearer "+string(src.APIToken))
		body, err := readAPI(req)
		if err != nil {
			if isUnavailable(err) {
				return nil, err
			}
			continue // 404: not a member
		}
		var m struct {
			State string `json:"state"`
		}
		if json.Unmarshal(body, &m) == nil && m.State == "active" {
			out = append(out, team)
		}
	}
	return out, nil
}

// githubLoginRE is a GitHub login; anything else is never put into an API
// path.
var githubLoginRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
