package report

import (
	"context"
	"net/http"
	"net/url"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

func init() { register("gitlab", newGitLab) }

// gitlabPoster posts commit statuses through GitLab's REST API
// (POST /projects/:id/statuses/:sha, the project id being its
// URL-encoded full path).
type gitlabPoster struct {
	base   string
	token  []byte
	client *http.Client
}

func newGitLab(src *routing.Source, hc *http.Client) (poster, error) {
	return &gitlabPoster{base: apiBase(src, "https://gitlab.com/api/v4"), token: src.APIToken, client: hc}, nil
}

// gitlabState maps a state to GitLab's, which has canceled.
func gitlabState(s Status) string {
	switch {
	case s.Cancelled:
		return "canceled"
	case s.State == StatePending:
		return "pending"
	case s.State == StateSuccess:
		return "success"
	default:
		return "failed"
	}
}

func (g *gitlabPoster) Post(ctx context.Context, s Status) error {
	u := g.base + "/projects/" + url.PathEscape(s.Repository) + "/statuses/" + url.PathEscape(s.Revision)
	body := map[string]string{"state": gitlabState(s), "name": s.Context, "description": s.Description}
	if s.TargetURL != "" {
		body["target_url"] = s.TargetURL
	}
	h := http.Header{"Private-Token": {string(g.token)}}
	return postJSON(ctx, g.client, u, h, body, g.token)
}
