package report

import (
	"context"
	"net/http"
	"net/url"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

func init() {
	register("gitea", newGitea)
	register("forgejo", newGitea)
}

// giteaPoster posts commit statuses to Gitea or Forgejo
// (POST /repos/{owner}/{repo}/statuses/{sha} under apiURL, e.g.
// https://git.example.com/api/v1).
type giteaPoster struct {
	base   string
	token  []byte
	client *http.Client
}

func newGitea(src *routing.Source, hc *http.Client) (poster, error) {
	return &giteaPoster{base: apiBase(src, ""), token: src.APIToken, client: hc}, nil
}

func (g *giteaPoster) Post(ctx context.Context, s Status) error {
	owner, name, err := splitRepo(s.Repository)
	if err != nil {
		return err
	}
	u := g.base + "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/statuses/" + url.PathEscape(s.Revision)
	body := map[string]string{"state": s.State, "context": s.Context, "description": s.Description, "target_url": s.TargetURL}
	h := http.Header{"Authorization": {"token " + string(g.token)}}
	return postJSON(ctx, g.client, u, h, body, g.token)
}
