package report

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/go-github/v60/github"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

func init() { register("github", newGitHub) }

// githubPoster posts commit statuses with go-github
// (POST /repos/{owner}/{repo}/statuses/{sha}).
type githubPoster struct {
	client *github.Client
	token  []byte
}

func newGitHub(src *routing.Source, hc *http.Client) (poster, error) {
	client := github.NewClient(hc).WithAuthToken(string(src.APIToken))
	if src.APIURL != "" {
		// apiURL is the API base as is (GitHub Enterprise Server:
		// https://github.example.com/api/v3), as ingest reads it.
		base, err := url.Parse(apiBase(src, "") + "/")
		if err != nil {
			return nil, fmt.Errorf("github apiURL: %w", err)
		}
		client.BaseURL = base
	}
	return &githubPoster{client: client, token: src.APIToken}, nil
}

func (g *githubPoster) Post(ctx context.Context, s Status) error {
	owner, name, err := splitRepo(s.Repository)
	if err != nil {
		return err
	}
	st := &github.RepoStatus{State: &s.State, Context: &s.Context, Description: &s.Description}
	if s.TargetURL != "" {
		st.TargetURL = &s.TargetURL
	}
	_, resp, err := g.client.Repositories.CreateStatus(ctx, owner, name, s.Revision, st)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return redact(fmt.Errorf("github status: %w", err), code, g.token)
	}
	return nil
}
