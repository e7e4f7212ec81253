package ingest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// GitLab webhooks (gitlab.com and self-managed), as documented at
// https://docs.gitlab.com/user/project/integrations/webhooks/ and
// .../webhook_events/: the secret token configured on the hook comes back
// verbatim in X-Gitlab-Token (GitLab does not sign the body); the event
// name is in X-Gitlab-Event ("Push Hook"); X-Gitlab-Event-UUID (and, since
// GitLab 17.4, Idempotency-Key, the same across retries) identify the
// delivery.
const (
	gitlabTokenHeader = "X-Gitlab-Token"
	gitlabEventHeader = "X-Gitlab-Event"
	gitlabUUIDHeader  = "X-Gitlab-Event-UUID"
)

func init() { Register(gitlabProvider{}) }

type gitlabProvider struct{}

var (
	_ Provider      = gitlabProvider{}
	_ Signer        = gitlabProvider{}
	_ EarlyVerifier = gitlabProvider{}
)

func (gitlabProvider) Kind() string { return "gitlab" }

// Verify compares X-Gitlab-Token with the source's secret in constant time.
func (gitlabProvider) Verify(req *Request, src *routing.Source) error {
	return verifyToken(req, req.Header.Get(gitlabTokenHeader), src, gitlabTokenHeader+" header")
}

// VerifyBeforeBody checks the token: it is a header, not a signature.
func (p gitlabProvider) VerifyBeforeBody(req *Request, src *routing.Source) error {
	return p.Verify(req, src)
}

// gitlabPayload is what GitLab's project hooks carry that routing reads.
type gitlabPayload struct {
	ObjectKind   string `json:"object_kind"`
	Before       string `json:"before"`
	After        string `json:"after"`
	Ref          string `json:"ref"`
	CheckoutSHA  string `json:"checkout_sha"`
	UserUsername string `json:"user_username"`
	UserName     string `json:"user_name"`
	Tag          string `json:"tag"`
	Action       string `json:"action"`
	Project      struct {
		PathWithNamespace string `json:"path_with_namespace"`
		WebURL            string `json:"web_url"`
	} `json:"project"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectAttributes struct {
		IID          int    `json:"iid"`
		Action       string `json:"action"`
		SourceBranch string `json:"source_branch"`
		TargetBranch string `json:"target_branch"`
		LastCommit   struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
	Commit struct {
		ID string `json:"id"`
	} `json:"commit"`
}

func (gitlabProvider) Normalize(req *Request) (Result, error) {
	name := req.Header.Get(gitlabEventHeader)
	if name == "" {
		return Result{}, fmt.Errorf("%w: missing %s header", ErrMalformed, gitlabEventHeader)
	}
	payload, err := requireJSON(req, "GitLab", false)
	if err != nil {
		return Result{}, err
	}
	var p gitlabPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return Result{}, fmt.Errorf("%w: %s payload: %v", ErrMalformed, name, err)
	}
	id := req.Header.Get("Idempotency-Key")
	if id == "" {
		id = req.Header.Get(gitlabUUIDHeader)
	}
	slug := strings.ToLower(strings.ReplaceAll(strings.TrimSuffix(name, " Hook"), " ", "_"))
	source := p.Project.WebURL
	if source == "" {
		source = "https://gitlab.com"
	}
	ev := newEvent("gitlab", id, source, "com.gitlab."+slug, payload)
	setExt(&ev, "repository", p.Project.PathWithNamespace)
	actor := p.UserUsername
	if actor == "" {
		actor = p.User.Username
	}
	if actor == "" {
		actor = p.UserName // older GitLab versions send only the display name
	}
	setExt(&ev, "actor", actor)

	switch p.ObjectKind {
	case "push", "tag_push":
		if p.Ref == "" {
			return Result{}, fmt.Errorf("%w: %s payload has no ref", ErrMalformed, name)
		}
		applyPush(&ev, p.Ref, p.Before, p.After, p.After == zeroSHA)
	case "merge_request":
		a := p.ObjectAttributes
		pullRequest{
			action:     a.Action,
			number:     a.IID,
			ref:        fmt.Sprintf("refs/merge-requests/%d/head", a.IID),
			branch:     a.TargetBranch,
			headBranch: a.SourceBranch,
			revision:   a.LastCommit.ID,
		}.apply(&ev)
	case "release":
		setExt(&ev, "action", p.Action)
		if p.Tag != "" {
			setRef(&ev, "refs/tags/"+p.Tag)
		}
		setExt(&ev, "revision", p.Commit.ID)
		// GitLab's "create" is a published release (GitHub's "published").
		if p.Action == "create" {
			ev.SetType(TypeGitRelease)
		}
	}
	if err := setData(&ev, payload); err != nil {
		return Result{}, err
	}
	return Result{Events: []event.Event{ev}}, nil
}

// Sign sets the headers GitLab sends.
func (gitlabProvider) Sign(req *Request, eventName, delivery string, secret []byte) {
	if eventName == "" {
		eventName = "Push Hook"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(gitlabEventHeader, eventName)
	req.Header.Set(gitlabUUIDHeader, delivery)
	req.Header.Set(gitlabTokenHeader, string(secret))
}
