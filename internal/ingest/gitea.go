package ingest

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Gitea and Forgejo webhooks (https://docs.gitea.com/usage/webhooks,
// https://forgejo.org/docs/latest/user/webhooks/): the body is signed with
// the hook's secret, HMAC-SHA256 in hex without a prefix, in
// X-Gitea-Signature (Forgejo: X-Forgejo-Signature, and X-Gitea-Signature
// for compatibility); X-Gitea-Event / X-Forgejo-Event name the event and
// X-Gitea-Delivery / X-Forgejo-Delivery identify the delivery. The payloads
// follow GitHub's shapes (push, create, delete, pull_request, release).

func init() {
	Register(giteaProvider{kind: "gitea", prefix: "X-Gitea-"})
	Register(giteaProvider{kind: "forgejo", prefix: "X-Forgejo-"})
}

type giteaProvider struct {
	bodySignature
	kind   string
	prefix string // header prefix: "X-Gitea-" or "X-Forgejo-"
}

var (
	_ Provider   = giteaProvider{}
	_ Signer     = giteaProvider{}
	_ BodySigned = giteaProvider{}
)

func (p giteaProvider) Kind() string { return p.kind }

// header returns the provider's own header, or Gitea's (which Forgejo also
// sends) when its own is absent.
func (p giteaProvider) header(h http.Header, name string) string {
	if v := h.Get(p.prefix + name); v != "" {
		return v
	}
	return h.Get("X-Gitea-" + name)
}

// Verify checks the HMAC-SHA256 of the raw body.
func (p giteaProvider) Verify(req *Request, src *routing.Source) error {
	header := p.prefix + "Signature"
	if req.Header.Get(header) == "" && req.Header.Get("X-Gitea-Signature") != "" {
		header = "X-Gitea-Signature"
	}
	return verifyHMACHex(req, src, header, "")
}

// giteaPayload is what routing reads of Gitea's payloads.
type giteaPayload struct {
	Ref        string `json:"ref"`
	RefType    string `json:"ref_type"`
	Before     string `json:"before"`
	After      string `json:"after"`
	SHA        string `json:"sha"`
	Action     string `json:"action"`
	Number     int    `json:"number"`
	Repository *struct {
		FullName string `json:"full_name"`
		HTMLURL  string `json:"html_url"`
	} `json:"repository"`
	Sender *struct {
		Login    string `json:"login"`
		Username string `json:"username"`
	} `json:"sender"`
	PullRequest *struct {
		Merged bool `json:"merged"`
		Base   struct {
			Ref string `json:"ref"`
		} `json:"base"`
		Head struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
	Release *struct {
		TagName string `json:"tag_name"`
	} `json:"release"`
}

func (p giteaProvider) Normalize(req *Request) (Result, error) {
	name := p.header(req.Header, "Event")
	if name == "" {
		return Result{}, fmt.Errorf("%w: missing %sEvent header", ErrMalformed, p.prefix)
	}
	payload, err := requireJSON(req, p.kind, false)
	if err != nil {
		return Result{}, err
	}
	var g giteaPayload
	if err := json.Unmarshal(payload, &g); err != nil {
		return Result{}, fmt.Errorf("%w: %s payload: %v", ErrMalformed, name, err)
	}
	source := "urn:" + p.kind
	ev := newEvent(p.kind, p.header(req.Header, "Delivery"), source, "io."+p.kind+"."+name, payload)
	if r := g.Repository; r != nil {
		setSourceURL(&ev, r.HTMLURL)
		setExt(&ev, "repository", r.FullName)
	}
	if s := g.Sender; s != nil {
		actor := s.Login
		if actor == "" {
			actor = s.Username
		}
		setExt(&ev, "actor", actor)
	}
	setExt(&ev, "action", g.Action)

	switch name {
	case "push":
		if g.Ref == "" {
			return Result{}, fmt.Errorf("%w: push payload has no ref", ErrMalformed)
		}
		applyPush(&ev, g.Ref, g.Before, g.After, g.After == zeroSHA)
	case "create", "delete":
		if ref := typedRef(g.RefType, g.Ref); ref != "" {
			applyRef(&ev, ref, name == "delete")
		}
		setExt(&ev, "revision", g.SHA)
	case "pull_request":
		if pr := g.PullRequest; pr != nil {
			action := g.Action
			if action == "closed" && pr.Merged {
				action = "merged"
			}
			pullRequest{
				action:     action,
				number:     g.Number,
				ref:        fmt.Sprintf("refs/pull/%d/head", g.Number),
				branch:     pr.Base.Ref,
				headBranch: pr.Head.Ref,
				revision:   pr.Head.SHA,
			}.apply(&ev)
		}
	case "release":
		if r := g.Release; r != nil && r.TagName != "" {
			setRef(&ev, "refs/tags/"+r.TagName)
		}
		if g.Action == "published" {
			ev.SetType(TypeGitRelease)
		}
	}
	if err := setData(&ev, payload); err != nil {
		return Result{}, err
	}
	return Result{Events: []event.Event{ev}}, nil
}

// Sign sets the headers Gitea (or Forgejo) sends.
func (p giteaProvider) Sign(req *Request, eventName, delivery string, secret []byte) {
	if eventName == "" {
		eventName = "push"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(p.prefix+"Event", eventName)
	req.Header.Set(p.prefix+"Delivery", delivery)
	req.Header.Set(p.prefix+"Signature", hexHMAC(secret, req.Body))
}
