package recovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

// GitHubConfig is how to reach a GitHub (or GitHub Enterprise) API: the
// source's apiURL and apiToken, and for the App's own hook the App's id and
// private key.
type GitHubConfig struct {
	APIURL string // empty: https://api.github.com/
	Token  []byte
	AppID  int64
	AppKey []byte
	// Transport, when set, carries the requests (tests, proxies).
	Transport http.RoundTripper
}

// GitHub lists and redelivers hook deliveries through go-github.
type GitHub struct {
	token *github.Client // repository and organization hooks
	app   *github.Client // the App's hook, with an App JWT; nil without App credentials
}

var _ Host = (*GitHub)(nil)

// ErrNoAppCredentials: the App's hook is listed with an App JWT, which needs
// the App's id and private key.
var ErrNoAppCredentials = errors.New("the GitHub App's hook needs the App's credentials (the source's githubApp: appID and privateKey)")

// ErrUnauthorized: the host refused the credentials (401) or their scope
// (403).
var ErrUnauthorized = errors.New("the Git host refused the credentials")

// NewGitHub returns the GitHub host of cfg.
func NewGitHub(cfg GitHubConfig) (*GitHub, error) {
	base := http.DefaultTransport
	if cfg.Transport != nil {
		base = cfg.Transport
	}
	var baseURL *url.URL
	if cfg.APIURL != "" {
		u, err := url.Parse(strings.TrimSuffix(cfg.APIURL, "/") + "/")
		if err != nil {
			return nil, fmt.Errorf("github api url: %w", err)
		}
		baseURL = u
	}
	g := &GitHub{}
	if len(cfg.Token) > 0 {
		g.token = github.NewClient(&http.Client{Transport: base}).WithAuthToken(string(cfg.Token))
		setBase(g.token, baseURL)
	}
	if cfg.AppID > 0 && len(cfg.AppKey) > 0 {
		tr, err := ghinstallation.NewAppsTransport(base, cfg.AppID, cfg.AppKey)
		if err != nil {
			// The key's parse error says nothing of the key's content.
			return nil, fmt.Errorf("github app %d: private key: %w", cfg.AppID, err)
		}
		if baseURL != nil {
			tr.BaseURL = strings.TrimSuffix(baseURL.String(), "/")
		}
		g.app = github.NewClient(&http.Client{Transport: tr})
		setBase(g.app, baseURL)
	}
	return g, nil
}

func setBase(c *github.Client, u *url.URL) {
	if u != nil {
		c.BaseURL = u
	}
}

// client is the client that may call hook's endpoints.
func (g *GitHub) client(hook Hook) (*github.Client, error) {
	if hook.App {
		if g.app == nil {
			return nil, ErrNoAppCredentials
		}
		return g.app, nil
	}
	if g.token == nil {
		return nil, errors.New("the source has no apiToken to call the hooks API with")
	}
	return g.token, nil
}

// List returns one page of hook's deliveries, newest first.
func (g *GitHub) List(ctx context.Context, hook Hook, cursor string) ([]Delivery, string, error) {
	c, err := g.client(hook)
	if err != nil {
		return nil, "", err
	}
	opts := &github.ListCursorOptions{PerPage: 100, Cursor: cursor}
	var (
		page []*github.HookDelivery
		resp *github.Response
	)
	switch {
	case hook.App:
		page, resp, err = c.Apps.ListHookDeliveries(ctx, opts)
	case hook.Organization != "":
		page, resp, err = c.Organizations.ListHookDeliveries(ctx, hook.Organization, hook.HookID, opts)
	default:
		owner, repo, _ := strings.Cut(hook.Repository, "/")
		page, resp, err = c.Repositories.ListHookDeliveries(ctx, owner, repo, hook.HookID, opts)
	}
	if err != nil {
		return nil, "", hostError(err)
	}
	out := make([]Delivery, 0, len(page))
	for _, d := range page {
		out = append(out, Delivery{ID: d.GetID(), GUID: d.GetGUID(), Event: d.GetEvent(), Action: d.GetAction(),
			Status: d.GetStatus(), StatusCode: d.GetStatusCode(), DeliveredAt: d.GetDeliveredAt().Time, Redelivery: d.GetRedelivery()})
	}
	return out, resp.Cursor, nil
}

// Redeliver asks GitHub to deliver the attempt deliveryID again.
func (g *GitHub) Redeliver(ctx context.Context, hook Hook, deliveryID int64) error {
	c, err := g.client(hook)
	if err != nil {
		return err
	}
	switch {
	case hook.App:
		_, _, err = c.Apps.RedeliverHookDelivery(ctx, deliveryID)
	case hook.Organization != "":
		_, _, err = c.Organizations.RedeliverHookDelivery(ctx, hook.Organization, hook.HookID, deliveryID)
	default:
		owner, repo, _ := strings.Cut(hook.Repository, "/")
		_, _, err = c.Repositories.RedeliverHookDelivery(ctx, owner, repo, hook.HookID, deliveryID)
	}
	var accepted *github.AcceptedError
	if errors.As(err, &accepted) {
		return nil // 202: GitHub queued the redelivery
	}
	if err != nil {
		return hostError(err)
	}
	return nil
}

// hostError says what the host answered, without the request's headers
// (go-github's errors carry the method, URL and message, never a token).
func hostError(err error) error {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		switch code := er.Response.StatusCode; code {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %d %s (a token needs admin:repo_hook, or for a fine-grained token \"Webhooks: read and write\"; organization hooks admin:org_hook)",
				ErrUnauthorized, code, er.Message)
		case http.StatusNotFound:
			return fmt.Errorf("github: 404 %s (no such hook, or the token cannot see it)", er.Message)
		default:
			return fmt.Errorf("github: %d %s", code, er.Message)
		}
	}
	return fmt.Errorf("github: %w", err)
}
