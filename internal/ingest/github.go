package ingest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-github/v60/github"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// GitHub webhook headers.
const (
	githubEventHeader     = "X-GitHub-Event"
	githubDeliveryHeader  = "X-GitHub-Delivery"
	githubSignatureHeader = "X-Hub-Signature-256"
	githubSHA1Header      = "X-Hub-Signature"
)

// zeroSHA is what GitHub sends as "after" when a ref is deleted.
const zeroSHA = "0000000000000000000000000000000000000000"

func init() { Register(githubProvider{}) }

// githubProvider handles GitHub and GitHub Enterprise Server webhooks.
type githubProvider struct{}

var (
	_ Provider = githubProvider{}
	_ Signer   = githubProvider{}
)

func (githubProvider) Kind() string { return "github" }

// Verify checks X-Hub-Signature-256 over the raw body. The SHA-1
// X-Hub-Signature is accepted only when the source sets allowSHA1 (old
// GitHub Enterprise Server): GitHub sends both, and SHA-1 is the one an
// attacker would pick. go-github's ValidateSignature compares with
// hmac.Equal (constant time).
func (githubProvider) Verify(req *Request, src *routing.Source) error {
	if len(src.Secret) == 0 {
		return fmt.Errorf("%w: source has no secret configured", ErrUnauthorized)
	}
	sig := req.Header.Get(githubSignatureHeader)
	prefix := "sha256="
	if sig == "" && src.AllowSHA1 && req.Header.Get(githubSHA1Header) != "" {
		sig, prefix = req.Header.Get(githubSHA1Header), "sha1="
	}
	if sig == "" {
		return fmt.Errorf("%w: missing %s header", ErrUnauthorized, githubSignatureHeader)
	}
	if !strings.HasPrefix(sig, prefix) {
		return fmt.Errorf("%w: %s must be %s<hex>", ErrUnauthorized, githubSignatureHeader, prefix)
	}
	if err := github.ValidateSignature(sig, req.Body, src.Secret); err != nil {
		return fmt.Errorf("%w: signature does not match the body", ErrUnauthorized)
	}
	return nil
}

// githubPayload extracts the JSON payload. GitHub sends JSON, or with the
// hook's "application/x-www-form-urlencoded" setting the same JSON in a
// "payload" form field; the signature covers the raw body either way.
func githubPayload(req *Request) ([]byte, error) {
	ct := req.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, fmt.Errorf("%w: Content-Type %q: GitHub sends application/json", ErrUnsupportedMediaType, ct)
	}
	payload := req.Body
	switch mt {
	case "application/json":
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(req.Body))
		if err != nil {
			return nil, fmt.Errorf("%w: form body: %v", ErrMalformed, err)
		}
		payload = []byte(form.Get("payload"))
	default:
		return nil, fmt.Errorf("%w: Content-Type %q: GitHub sends application/json", ErrUnsupportedMediaType, mt)
	}
	if !json.Valid(payload) {
		return nil, fmt.Errorf("%w: body is not valid JSON", ErrMalformed)
	}
	return payload, nil
}

// githubCommon is what every GitHub event payload carries.
type githubCommon struct {
	Action     string `json:"action"`
	Repository *struct {
		FullName string `json:"full_name"`
		HTMLURL  string `json:"html_url"`
	} `json:"repository"`
	Sender *struct {
		Login string `json:"login"`
	} `json:"sender"`
}

func (githubProvider) Normalize(req *Request) (Result, error) {
	kind := req.Header.Get(githubEventHeader)
	if kind == "" {
		return Result{}, fmt.Errorf("%w: missing %s header", ErrMalformed, githubEventHeader)
	}
	payload, err := githubPayload(req)
	if err != nil {
		return Result{}, err
	}
	if kind == "ping" {
		return Result{Ping: true}, nil
	}
	var common githubCommon
	if err := json.Unmarshal(payload, &common); err != nil {
		return Result{}, fmt.Errorf("%w: %s payload: %v", ErrMalformed, kind, err)
	}

	ev := event.New()
	id := req.Header.Get(githubDeliveryHeader)
	if id == "" {
		id = contentID(payload)
	}
	ev.SetID(id)
	ev.SetSource("https://github.com")
	ev.SetType("com.github." + kind)
	ev.SetExtension("provider", "github")
	if r := common.Repository; r != nil {
		if r.HTMLURL != "" {
			ev.SetSource(r.HTMLURL)
		}
		if r.FullName != "" {
			ev.SetExtension("repository", r.FullName)
		}
	}
	if common.Action != "" {
		ev.SetExtension("action", common.Action)
	}
	if common.Sender != nil && common.Sender.Login != "" {
		ev.SetExtension("actor", common.Sender.Login)
	}

	if kind == "push" {
		if err := normalizeGitHubPush(&ev, payload); err != nil {
			return Result{}, err
		}
	}
	// The original payload, unchanged, is the event's data.
	if err := ev.SetData(event.ApplicationJSON, payload); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return Result{Events: []event.Event{ev}}, nil
}

// normalizeGitHubPush maps a push to git.push, git.tag or a deletion, with
// the ref, branch or tag and revision extensions.
func normalizeGitHubPush(ev *event.Event, payload []byte) error {
	var push github.PushEvent
	if err := json.Unmarshal(payload, &push); err != nil {
		return fmt.Errorf("%w: push payload: %v", ErrMalformed, err)
	}
	ref := push.GetRef()
	if ref == "" {
		return fmt.Errorf("%w: push payload has no ref", ErrMalformed)
	}
	deleted := push.GetDeleted() || push.GetAfter() == zeroSHA
	// Other refs (notes, pull heads) keep the provider type.
	applyRef(ev, ref, deleted)
	revision := push.GetAfter()
	if deleted {
		revision = push.GetBefore()
	}
	if revision != "" {
		ev.SetExtension("revision", revision)
	}
	if ev.Extensions()["actor"] == nil && push.GetPusher().GetName() != "" {
		ev.SetExtension("actor", push.GetPusher().GetName())
	}
	if ts := push.GetHeadCommit().GetTimestamp(); !ts.IsZero() {
		ev.SetTime(ts.UTC())
	}
	return nil
}

// Sign sets the headers GitHub sends with a delivery.
func (githubProvider) Sign(req *Request, eventName, delivery string, secret []byte) {
	if eventName == "" {
		eventName = "push"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(githubEventHeader, eventName)
	req.Header.Set(githubDeliveryHeader, delivery)
	req.Header.Set(githubSignatureHeader, "sha256="+hex.EncodeToString(hmacSHA256(secret, req.Body)))
}
