package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Comment commands on Gitea and Forgejo: issue_comment events whose
// is_pull is true. The pull request's head is read from the host's API
// (apiURL, e.g. https://gitea.example.com/api/v1, and apiToken).

var _ commentProvider = giteaProvider{}

// giteaComment is the part of an issue_comment payload commands read.
type giteaComment struct {
	Action string `json:"action"`
	IsPull bool   `json:"is_pull"`
	Issue  struct {
		Number int `json:"number"`
		User   struct {
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

func (p giteaProvider) prComment(ev *event.Event) (*prComment, error) {
	if ev.Type() != "io."+p.kind+".issue_comment" {
		return nil, nil
	}
	var c giteaComment
	if err := json.Unmarshal(ev.Data(), &c); err != nil {
		return nil, fmt.Errorf("issue_comment payload: %w", err)
	}
	repo, _ := ev.Extensions()["repository"].(string)
	if !c.IsPull || c.Comment.ID == 0 || !githubRepoRE.MatchString(repo) {
		return nil, nil
	}
	return &prComment{id: strconv.FormatInt(c.Comment.ID, 10), created: c.Action == "created", login: c.Comment.User.Login,
		body: c.Comment.Body, repo: repo, number: strconv.Itoa(c.Issue.Number), byAuthor: strings.EqualFold(c.Comment.User.Login, c.Issue.User.Login)}, nil
}

// pullRequestAt reads the pull request from the host's API and normalizes
// it as a pull_request "synchronized" delivery with id.
func (p giteaProvider) pullRequestAt(ctx context.Context, src *routing.Source, c *prComment, ev *event.Event, id string) (*event.Event, error) {
	if len(src.APIToken) == 0 || src.APIURL == "" {
		return nil, fmt.Errorf("source %s needs apiURL and apiToken to read pull request %s from the %s API", src.Name, c.number, p.kind)
	}
	return pullRequestEvent(ctx, apiCall{url: strings.TrimSuffix(src.APIURL, "/") + "/repos/" + c.repo + "/pulls/" + c.number, accept: "application/json", auth: "token " + string(src.APIToken)},
		c, ev, "synchronized", p.Normalize, p.prefix+"Event", p.prefix+"Delivery", id)
}

// trustedPullRequest: Gitea says nothing of the author's standing, so a
// pull request from another repository (a fork) is not trusted.
func (giteaProvider) trustedPullRequest(ev *event.Event) bool {
	var p struct {
		PullRequest struct {
			Head, Base struct {
				Repo struct {
					FullName string `json:"full_name"`
				} `json:"repo"`
			}
		} `json:"pull_request"`
	}
	if json.Unmarshal(ev.Data(), &p) != nil {
		return false
	}
	head, base := p.PullRequest.Head.Repo.FullName, p.PullRequest.Base.Repo.FullName
	return head != "" && head == base
}

// readAPI does req and returns the body of a 200, at most 8 MiB. A
// failure a retry may heal wraps errHostUnavailable.
func readAPI(req *http.Request) ([]byte, error) {
	resp, err := githubAPIClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errHostUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	switch {
	case err != nil || resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%w: status %d", errHostUnavailable, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("the API answered %d", resp.StatusCode)
	}
	return body, nil
}
