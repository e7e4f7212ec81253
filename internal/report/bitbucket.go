package report

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

func init() {
	register("bitbucket", newBitbucketCloud)
	register("bitbucket-server", newBitbucketDC)
}

// bitbucketPoster posts build statuses to Bitbucket Cloud
// (POST /repositories/{workspace}/{repo}/commit/{sha}/statuses/build under
// https://api.bitbucket.org/2.0) or Data Center
// (POST /rest/build-status/1.0/commits/{sha} under the server's URL).
type bitbucketPoster struct {
	base   string
	cloud  bool
	token  []byte
	client *http.Client
}

func newBitbucketCloud(src *routing.Source, hc *http.Client) (poster, error) {
	return &bitbucketPoster{base: apiBase(src, "https://api.bitbucket.org/2.0"), cloud: true, token: src.APIToken, client: hc}, nil
}

func newBitbucketDC(src *routing.Source, hc *http.Client) (poster, error) {
	return &bitbucketPoster{base: apiBase(src, ""), token: src.APIToken, client: hc}, nil
}

// bitbucketState maps a state to Bitbucket's; Cloud has STOPPED for a
// cancelled run, Data Center's build-status API does not.
func (b *bitbucketPoster) state(s Status) string {
	switch {
	case s.State == StatePending:
		return "INPROGRESS"
	case s.State == StateSuccess:
		return "SUCCESSFUL"
	case s.Cancelled && b.cloud:
		return "STOPPED"
	default:
		return "FAILED"
	}
}

// bitbucketKey is the status key: the context, or a hash of it when longer
// than Bitbucket's 40 characters.
func bitbucketKey(context string) string {
	if len(context) <= 40 {
		return context
	}
	sum := sha256.Sum256([]byte(context))
	return "switchyard-" + hex.EncodeToString(sum[:])[:29]
}

func (b *bitbucketPoster) Post(ctx context.Context, s Status) error {
	var u string
	if b.cloud {
		ws, repo, err := splitRepo(s.Repository)
		if err != nil {
			return err
		}
		u = b.base + "/repositories/" + url.PathEscape(ws) + "/" + url.PathEscape(repo) + "/commit/" + url.PathEscape(s.Revision) + "/statuses/build"
	} else {
		u = b.base + "/rest/build-status/1.0/commits/" + url.PathEscape(s.Revision)
	}
	// Bitbucket requires a URL; without a statusURL the repository's page.
	link := s.TargetURL
	if link == "" {
		link = s.RepositoryURL
	}
	body := map[string]string{"key": bitbucketKey(s.Context), "name": s.Context, "state": b.state(s), "description": s.Description, "url": link}
	return postJSON(ctx, b.client, u, http.Header{"Authorization": {b.auth()}}, body, b.token)
}

// auth is Basic for an app password written "user:password", else Bearer
// (access tokens, Data Center personal access tokens).
func (b *bitbucketPoster) auth() string {
	if strings.Contains(string(b.token), ":") {
		return "Basic " + base64.StdEncoding.EncodeToString(b.token)
	}
	return "Bearer " + string(b.token)
}
