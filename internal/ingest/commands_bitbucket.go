package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Comment commands on Bitbucket: Cloud's pullrequest:comment_created and
// Data Center's pr:comment:added. Both payloads carry the pull request with
// its head commit, so, as on GitLab, no API call is needed to re-run it.
// Cloud has no unique login in its payloads (a nickname is not unique), so
// grants name Cloud users by account_id; Data Center users by their slug.

var (
	_ commentProvider = bitbucketProvider{}
	_ commentProvider = bitbucketServerProvider{}
)

// bitbucketCloudUser is a user in a Bitbucket Cloud payload.
type bitbucketCloudUser struct {
	AccountID string `json:"account_id"`
}

// bitbucketCloudComment is the part of a pullrequest:comment_* payload
// commands read.
type bitbucketCloudComment struct {
	Actor       bitbucketCloudUser `json:"actor"`
	PullRequest *struct {
		ID     int                `json:"id"`
		Author bitbucketCloudUser `json:"author"`
		Source struct {
			Repository struct {
				FullName string `json:"full_name"`
			} `json:"repository"`
		} `json:"source"`
		Destination struct {
			Repository struct {
				FullName string `json:"full_name"`
			} `json:"repository"`
		} `json:"destination"`
	} `json:"pullrequest"`
	Comment *struct {
		ID      int64 `json:"id"`
		Content struct {
			Raw string `json:"raw"`
		} `json:"content"`
	} `json:"comment"`
}

func (bitbucketProvider) prComment(ev *event.Event) (*prComment, error) {
	created := ev.Type() == "org.bitbucket.pullrequest.comment_created"
	if !created && ev.Type() != "org.bitbucket.pullrequest.comment_updated" {
		return nil, nil
	}
	var c bitbucketCloudComment
	if err := json.Unmarshal(ev.Data(), &c); err != nil {
		return nil, fmt.Errorf("pull request comment payload: %w", err)
	}
	repo, _ := ev.Extensions()["repository"].(string)
	if c.PullRequest == nil || c.Comment == nil || c.Comment.ID == 0 || repo == "" {
		return nil, nil
	}
	// The actor is who commented.
	login := c.Actor.AccountID
	return &prComment{id: strconv.FormatInt(c.Comment.ID, 10), created: created, login: login, body: c.Comment.Content.Raw,
		repo: repo, number: strconv.Itoa(c.PullRequest.ID), byAuthor: login != "" && login == c.PullRequest.Author.AccountID}, nil
}

// pullRequestAt makes the pull request event (pullrequest:updated) from
// the comment's copy of the pull request, with id.
func (p bitbucketProvider) pullRequestAt(_ context.Context, _ *routing.Source, c *prComment, ev *event.Event, id string) (*event.Event, error) {
	var comment map[string]json.RawMessage
	if err := json.Unmarshal(ev.Data(), &comment); err != nil {
		return nil, fmt.Errorf("pull request comment payload: %w", err)
	}
	payload, err := json.Marshal(map[string]json.RawMessage{"actor": comment["actor"], "repository": comment["repository"], "pullrequest": comment["pullrequest"]})
	if err != nil {
		return nil, fmt.Errorf("pull request %s: %w", c.number, err)
	}
	return normalizeOne(p, payload, "pullrequest:updated", "X-Request-UUID", id, c.number)
}

// trustedPullRequest: Bitbucket says nothing of the author's standing, so
// a pull request from another repository (a fork) is not trusted.
func (bitbucketProvider) trustedPullRequest(ev *event.Event) bool {
	var c bitbucketCloudComment
	if json.Unmarshal(ev.Data(), &c) != nil || c.PullRequest == nil {
		return false
	}
	from, to := c.PullRequest.Source.Repository.FullName, c.PullRequest.Destination.Repository.FullName
	return from != "" && strings.EqualFold(from, to)
}

// bitbucketServerUser is a user in a Data Center payload.
type bitbucketServerUser struct {
	Slug string `json:"slug"`
}

// bitbucketServerComment is the part of a pr:comment:* payload commands
// read.
type bitbucketServerComment struct {
	PullRequest *struct {
		ID     int `json:"id"`
		Author struct {
			User bitbucketServerUser `json:"user"`
		} `json:"author"`
		FromRef struct {
			Repository bitbucketServerRepo `json:"repository"`
		} `json:"fromRef"`
		ToRef struct {
			Repository bitbucketServerRepo `json:"repository"`
		} `json:"toRef"`
	} `json:"pullRequest"`
	Comment *struct {
		ID     int64               `json:"id"`
		Text   string              `json:"text"`
		Author bitbucketServerUser `json:"author"`
	} `json:"comment"`
}

func (bitbucketServerProvider) prComment(ev *event.Event) (*prComment, error) {
	created := ev.Type() == "com.atlassian.bitbucket.pr.comment.added"
	if !created && ev.Type() != "com.atlassian.bitbucket.pr.comment.edited" {
		return nil, nil
	}
	var c bitbucketServerComment
	if err := json.Unmarshal(ev.Data(), &c); err != nil {
		return nil, fmt.Errorf("pull request comment payload: %w", err)
	}
	repo, _ := ev.Extensions()["repository"].(string)
	if c.PullRequest == nil || c.Comment == nil || c.Comment.ID == 0 || repo == "" {
		return nil, nil
	}
	login := c.Comment.Author.Slug
	return &prComment{id: strconv.FormatInt(c.Comment.ID, 10), created: created, login: login, body: c.Comment.Text,
		repo: repo, number: strconv.Itoa(c.PullRequest.ID), byAuthor: login != "" && strings.EqualFold(login, c.PullRequest.Author.User.Slug)}, nil
}

// pullRequestAt makes the pull request event (pr:from_ref_updated) from the
// comment's copy of the pull request, with id.
func (p bitbucketServerProvider) pullRequestAt(_ context.Context, _ *routing.Source, c *prComment, ev *event.Event, id string) (*event.Event, error) {
	var comment map[string]json.RawMessage
	if err := json.Unmarshal(ev.Data(), &comment); err != nil {
		return nil, fmt.Errorf("pull request comment payload: %w", err)
	}
	payload, err := json.Marshal(map[string]any{"eventKey": "pr:from_ref_updated", "date": comment["date"],
		"actor": comment["actor"], "pullRequest": comment["pullRequest"]})
	if err != nil {
		return nil, fmt.Errorf("pull request %s: %w", c.number, err)
	}
	return normalizeOne(p, payload, "pr:from_ref_updated", "X-Request-Id", id, c.number)
}

// trustedPullRequest: a pull request from another repository (a fork) is
// not trusted.
func (bitbucketServerProvider) trustedPullRequest(ev *event.Event) bool {
	var c bitbucketServerComment
	if json.Unmarshal(ev.Data(), &c) != nil || c.PullRequest == nil {
		return false
	}
	from, to := c.PullRequest.FromRef.Repository.name(), c.PullRequest.ToRef.Repository.name()
	return from != "" && strings.EqualFold(from, to)
}

// normalizeOne normalizes a payload the comment made, as the delivery id
// and event key the host would have sent, into its one event.
func normalizeOne(p Provider, payload []byte, eventKey, idHeader, id, number string) (*event.Event, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(bitbucketEventHeader, eventKey)
	h.Set(idHeader, id)
	res, err := p.Normalize(&Request{Body: payload, Header: h})
	if err != nil || len(res.Events) != 1 {
		return nil, fmt.Errorf("pull request %s: %v", number, err)
	}
	return &res.Events[0], nil
}
