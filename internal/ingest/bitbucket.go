package ingest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Bitbucket Cloud and Bitbucket Data Center (Server) webhooks. Both sign
// the raw body with the webhook's secret, HMAC-SHA256 as
// "X-Hub-Signature: sha256=<hex>" (Cloud:
// https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/,
// Data Center: https://confluence.atlassian.com/bitbucketserver/manage-webhooks-938025878.html);
// X-Event-Key names the event. One push can change several refs: each
// change becomes its own event, "<delivery>/<index>".

const (
	bitbucketEventHeader     = "X-Event-Key"
	bitbucketSignatureHeader = "X-Hub-Signature"
)

func init() {
	Register(bitbucketProvider{})
	Register(bitbucketServerProvider{})
}

type (
	bitbucketProvider       struct{ bodySignature }
	bitbucketServerProvider struct{ bodySignature }
)

var (
	_ Provider   = bitbucketProvider{}
	_ Signer     = bitbucketProvider{}
	_ Provider   = bitbucketServerProvider{}
	_ Signer     = bitbucketServerProvider{}
	_ BodySigned = bitbucketProvider{}
	_ BodySigned = bitbucketServerProvider{}
)

func (bitbucketProvider) Kind() string       { return "bitbucket" }
func (bitbucketServerProvider) Kind() string { return "bitbucket-server" }

func (bitbucketProvider) Verify(req *Request, src *routing.Source) error {
	return verifyHMACHex(req, src, bitbucketSignatureHeader, "sha256=")
}

func (bitbucketServerProvider) Verify(req *Request, src *routing.Source) error {
	return verifyHMACHex(req, src, bitbucketSignatureHeader, "sha256=")
}

func signBitbucket(req *Request, eventName, delivery, deliveryHeader string, secret []byte) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(bitbucketEventHeader, eventName)
	req.Header.Set(deliveryHeader, delivery)
	req.Header.Set(bitbucketSignatureHeader, "sha256="+hexHMAC(secret, req.Body))
}

func (bitbucketProvider) Sign(req *Request, eventName, delivery string, secret []byte) {
	if eventName == "" {
		eventName = "repo:push"
	}
	signBitbucket(req, eventName, delivery, "X-Request-UUID", secret)
}

func (bitbucketServerProvider) Sign(req *Request, eventName, delivery string, secret []byte) {
	if eventName == "" {
		eventName = "repo:refs_changed"
	}
	signBitbucket(req, eventName, delivery, "X-Request-Id", secret)
}

// bitbucketEvents builds one event per change (or one for the request)
// with the common attributes; the id of change i of n>1 is "<id>/<i>".
func bitbucketEvents(kind, id, source, typ string, n int, payload []byte) []event.Event {
	if id == "" {
		id = contentID(payload)
	}
	out := make([]event.Event, max(n, 1))
	for i := range out {
		eid := id
		if n > 1 {
			eid = id + "/" + strconv.Itoa(i)
		}
		out[i] = newEvent(kind, eid, source, typ, payload)
	}
	return out
}

// bitbucketPayload is what routing reads of Bitbucket Cloud payloads.
type bitbucketPayload struct {
	Actor struct {
		Nickname    string `json:"nickname"`
		DisplayName string `json:"display_name"`
	} `json:"actor"`
	Repository struct {
		FullName string `json:"full_name"`
		Links    struct {
			HTML struct {
				Href string `json:"href"`
			} `json:"html"`
		} `json:"links"`
	} `json:"repository"`
	Push struct {
		Changes []struct {
			New *bitbucketRef `json:"new"`
			Old *bitbucketRef `json:"old"`
		} `json:"changes"`
	} `json:"push"`
	PullRequest *struct {
		ID        int    `json:"id"`
		UpdatedOn string `json:"updated_on"`
		Source    struct {
			Branch struct{ Name string } `json:"branch"`
			Commit struct{ Hash string } `json:"commit"`
		} `json:"source"`
		Destination struct {
			Branch struct{ Name string } `json:"branch"`
		} `json:"destination"`
	} `json:"pullrequest"`
}

type bitbucketRef struct {
	Type   string `json:"type"` // branch, tag (named_branch, bookmark: Mercurial, gone)
	Name   string `json:"name"`
	Target struct {
		Hash string `json:"hash"`
		Date string `json:"date"`
	} `json:"target"`
}

func (r *bitbucketRef) ref() string {
	if r.Type == "tag" {
		return "refs/tags/" + r.Name
	}
	return "refs/heads/" + r.Name
}

// bitbucketPRActions maps Cloud's pull request events to actions.
var bitbucketPRActions = map[string]string{
	"pullrequest:created": "created", "pullrequest:updated": "updated",
	"pullrequest:fulfilled": "merged", "pullrequest:rejected": "declined",
}

func (bitbucketProvider) Normalize(req *Request) (Result, error) {
	name := req.Header.Get(bitbucketEventHeader)
	if name == "" {
		return Result{}, fmt.Errorf("%w: missing %s header", ErrMalformed, bitbucketEventHeader)
	}
	payload, err := requireJSON(req, "Bitbucket", false)
	if err != nil {
		return Result{}, err
	}
	var p bitbucketPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return Result{}, fmt.Errorf("%w: %s payload: %v", ErrMalformed, name, err)
	}
	source := p.Repository.Links.HTML.Href
	if source == "" {
		source = "https://bitbucket.org/" + p.Repository.FullName
	}
	n := 1
	if name == "repo:push" {
		n = len(p.Push.Changes)
		if n == 0 {
			return Result{}, fmt.Errorf("%w: repo:push without changes", ErrMalformed)
		}
	}
	events := bitbucketEvents("bitbucket", req.Header.Get("X-Request-UUID"), source, "org.bitbucket."+strings.ReplaceAll(name, ":", "."), n, payload)
	actor := p.Actor.Nickname
	if actor == "" {
		actor = p.Actor.DisplayName
	}
	for i := range events {
		ev := &events[i]
		setExt(ev, "repository", p.Repository.FullName)
		setExt(ev, "actor", actor)
		switch {
		case name == "repo:push":
			c := p.Push.Changes[i]
			switch {
			case c.New != nil:
				applyRef(ev, c.New.ref(), false)
				setExt(ev, "revision", c.New.Target.Hash)
				setBitbucketTime(ev, c.New.Target.Date) // the pushed commit's
			case c.Old != nil:
				applyRef(ev, c.Old.ref(), true)
				setExt(ev, "revision", c.Old.Target.Hash)
			}
		case bitbucketPRActions[name] != "" && p.PullRequest != nil:
			pr := p.PullRequest
			pullRequest{
				action:     bitbucketPRActions[name],
				number:     pr.ID,
				branch:     pr.Destination.Branch.Name,
				headBranch: pr.Source.Branch.Name,
				revision:   pr.Source.Commit.Hash,
			}.apply(ev)
			setBitbucketTime(ev, pr.UpdatedOn)
		}
		if err := setData(ev, payload); err != nil {
			return Result{}, err
		}
	}
	return Result{Events: events}, nil
}

// bitbucketServerPayload is what routing reads of Data Center payloads.
type bitbucketServerPayload struct {
	Actor struct {
		Slug string `json:"slug"`
		Name string `json:"name"`
	} `json:"actor"`
	Date        string               `json:"date"` // of the event
	Repository  *bitbucketServerRepo `json:"repository"`
	Changes     []bitbucketServerChange
	PullRequest *struct {
		ID      int `json:"id"`
		FromRef struct {
			DisplayID    string              `json:"displayId"`
			LatestCommit string              `json:"latestCommit"`
			Repository   bitbucketServerRepo `json:"repository"`
		} `json:"fromRef"`
		ToRef struct {
			DisplayID  string              `json:"displayId"`
			Repository bitbucketServerRepo `json:"repository"`
		} `json:"toRef"`
	} `json:"pullRequest"`
}

type bitbucketServerRepo struct {
	Slug    string `json:"slug"`
	Project struct {
		Key string `json:"key"`
	} `json:"project"`
}

// name is "<project key>/<repo slug>", as in the clone URL's path.
func (r bitbucketServerRepo) name() string {
	if r.Slug == "" {
		return ""
	}
	return r.Project.Key + "/" + r.Slug
}

type bitbucketServerChange struct {
	RefID    string `json:"refId"`
	FromHash string `json:"fromHash"`
	ToHash   string `json:"toHash"`
	Type     string `json:"type"` // ADD, UPDATE, DELETE
}

var bitbucketServerPRActions = map[string]string{
	"pr:opened": "opened", "pr:from_ref_updated": "updated", "pr:modified": "modified",
	"pr:merged": "merged", "pr:declined": "declined", "pr:deleted": "deleted",
}

func (bitbucketServerProvider) Normalize(req *Request) (Result, error) {
	name := req.Header.Get(bitbucketEventHeader)
	if name == "" {
		return Result{}, fmt.Errorf("%w: missing %s header", ErrMalformed, bitbucketEventHeader)
	}
	payload, err := requireJSON(req, "Bitbucket Data Center", false)
	if err != nil {
		return Result{}, err
	}
	if name == "diagnostics:ping" {
		return Result{Ping: true}, nil // "Test connection"
	}
	var p bitbucketServerPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return Result{}, fmt.Errorf("%w: %s payload: %v", ErrMalformed, name, err)
	}
	repo := ""
	if p.Repository != nil {
		repo = p.Repository.name()
	} else if p.PullRequest != nil {
		repo = p.PullRequest.ToRef.Repository.name()
	}
	n := 1
	if name == "repo:refs_changed" {
		n = len(p.Changes)
		if n == 0 {
			return Result{}, fmt.Errorf("%w: repo:refs_changed without changes", ErrMalformed)
		}
	}
	events := bitbucketEvents("bitbucket-server", req.Header.Get("X-Request-Id"), "urn:bitbucket-server:"+repo,
		"com.atlassian.bitbucket."+strings.ReplaceAll(name, ":", "."), n, payload)
	actor := p.Actor.Slug
	if actor == "" {
		actor = p.Actor.Name
	}
	for i := range events {
		ev := &events[i]
		setExt(ev, "repository", repo)
		setExt(ev, "actor", actor)
		setBitbucketTime(ev, p.Date)
		switch {
		case name == "repo:refs_changed":
			c := p.Changes[i]
			applyPush(ev, c.RefID, c.FromHash, c.ToHash, c.Type == "DELETE")
		case bitbucketServerPRActions[name] != "" && p.PullRequest != nil:
			pr := p.PullRequest
			pullRequest{
				action:     bitbucketServerPRActions[name],
				number:     pr.ID,
				branch:     pr.ToRef.DisplayID,
				headBranch: pr.FromRef.DisplayID,
				revision:   pr.FromRef.LatestCommit,
			}.apply(ev)
		}
		if err := setData(ev, payload); err != nil {
			return Result{}, err
		}
	}
	return Result{Events: events}, nil
}

// setBitbucketTime sets the event time from a payload timestamp: RFC 3339
// (Bitbucket Cloud) or ISO 8601 with a colon-less zone, "+0100" (Data
// Center). Anything else leaves the time unset.
func setBitbucketTime(ev *event.Event, s string) {
	setTime(ev, s, time.RFC3339Nano, "2006-01-02T15:04:05-0700")
}
