package ingest

import (
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
type githubProvider struct{ bodySignature }

var (
	_ Provider   = githubProvider{}
	_ Signer     = githubProvider{}
	_ BodySigned = githubProvider{}
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

	ev := newEvent("github", req.Header.Get(githubDeliveryHeader), "https://github.com", "com.github."+kind, payload)
	if r := common.Repository; r != nil {
		setSourceURL(&ev, r.HTMLURL)
		setExt(&ev, "repository", r.FullName)
	}
	setExt(&ev, "action", common.Action)
	if common.Sender != nil {
		setExt(&ev, "actor", common.Sender.Login)
	}

	switch kind {
	case "push":
		err = normalizeGitHubPush(&ev, payload)
	case "pull_request":
		err = normalizeGitHubPullRequest(&ev, payload)
	case "release":
		err = normalizeGitHubRelease(&ev, payload)
	case "create", "delete":
		err = normalizeGitHubRef(&ev, kind, payload)
	case "package", "registry_package":
		err = normalizeGitHubPackage(&ev, kind, payload)
	case "workflow_run", "check_suite":
		err = normalizeGitHubRun(&ev, kind, payload)
	}
	if err != nil {
		return Result{}, err
	}
	if err := setData(&ev, payload); err != nil {
		return Result{}, err
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
	// Other refs (notes, pull heads) keep the provider type.
	applyPush(ev, ref, push.GetBefore(), push.GetAfter(), push.GetDeleted() || push.GetAfter() == zeroSHA)
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
	req.Header.Set(githubSignatureHeader, "sha256="+hexHMAC(secret, req.Body))
}

// normalizeGitHubPullRequest maps pull_request to git.pullrequest: action
// (a closed and merged one becomes "merged"), branch = the base (target)
// branch, headbranch, ref refs/pull/<n>/head, revision = the head sha,
// pullrequest = the number.
func normalizeGitHubPullRequest(ev *event.Event, payload []byte) error {
	var e github.PullRequestEvent
	if err := json.Unmarshal(payload, &e); err != nil {
		return fmt.Errorf("%w: pull_request payload: %v", ErrMalformed, err)
	}
	pr := e.GetPullRequest()
	if pr == nil {
		return fmt.Errorf("%w: pull_request payload has no pull_request", ErrMalformed)
	}
	action := e.GetAction()
	if action == "closed" && pr.GetMerged() {
		action = "merged"
	}
	pullRequest{
		action:     action,
		number:     pr.GetNumber(),
		ref:        fmt.Sprintf("refs/pull/%d/head", pr.GetNumber()),
		branch:     pr.GetBase().GetRef(),
		headBranch: pr.GetHead().GetRef(),
		revision:   pr.GetHead().GetSHA(),
	}.apply(ev)
	if t := pr.GetUpdatedAt(); !t.IsZero() {
		ev.SetTime(t.UTC())
	}
	return nil
}

// normalizeGitHubRelease maps a published release to git.release with its
// tag; other release actions keep com.github.release.
func normalizeGitHubRelease(ev *event.Event, payload []byte) error {
	var e github.ReleaseEvent
	if err := json.Unmarshal(payload, &e); err != nil {
		return fmt.Errorf("%w: release payload: %v", ErrMalformed, err)
	}
	if tag := e.GetRelease().GetTagName(); tag != "" {
		setRef(ev, "refs/tags/"+tag)
	}
	if e.GetAction() == "published" {
		ev.SetType(TypeGitRelease)
	}
	if t := e.GetRelease().GetPublishedAt(); !t.IsZero() {
		ev.SetTime(t.UTC())
	}
	return nil
}

// normalizeGitHubRef maps create and delete (a branch or tag made or
// removed, without the push details) to git.push/git.tag and the deletion
// types. Repository rules see the same types as for a push.
func normalizeGitHubRef(ev *event.Event, kind string, payload []byte) error {
	var e struct {
		Ref     string `json:"ref"`
		RefType string `json:"ref_type"`
	}
	if err := json.Unmarshal(payload, &e); err != nil {
		return fmt.Errorf("%w: %s payload: %v", ErrMalformed, kind, err)
	}
	// A repository created keeps com.github.create.
	if ref := typedRef(e.RefType, e.Ref); ref != "" {
		applyRef(ev, ref, kind == "delete")
	}
	return nil
}

// githubPackage is the part of a package or registry_package payload that
// names a container image. Written by hand: go-github v60 has no
// container_metadata.
type githubPackage struct {
	Name           string                 `json:"name"`
	Namespace      string                 `json:"namespace"`
	PackageType    string                 `json:"package_type"`
	Owner          struct{ Login string } `json:"owner"`
	PackageVersion struct {
		Version           string `json:"version"`
		ContainerMetadata struct {
			Tag struct {
				Name   string `json:"name"`
				Digest string `json:"digest"`
			} `json:"tag"`
		} `json:"container_metadata"`
	} `json:"package_version"`
}

// normalizeGitHubPackage maps a published container package (GHCR) to
// image.push with repository ghcr.io/<owner>/<name>; other package types
// keep com.github.<event>.
func normalizeGitHubPackage(ev *event.Event, kind string, payload []byte) error {
	var e map[string]json.RawMessage
	if err := json.Unmarshal(payload, &e); err != nil {
		return fmt.Errorf("%w: %s payload: %v", ErrMalformed, kind, err)
	}
	var p githubPackage
	if raw, ok := e[kind]; ok {
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrMalformed, kind, err)
		}
	}
	var action string
	_ = json.Unmarshal(e["action"], &action)
	if !strings.EqualFold(p.PackageType, "container") || p.Name == "" || (action != "published" && action != "updated") {
		return nil
	}
	owner := p.Owner.Login
	if owner == "" {
		owner = p.Namespace
	}
	md := p.PackageVersion.ContainerMetadata.Tag
	digest := md.Digest
	if digest == "" && strings.HasPrefix(p.PackageVersion.Version, "sha256:") {
		digest = p.PackageVersion.Version
	}
	img := newImageEvent("github", ev.ID(), TypeImagePush, "ghcr.io", strings.ToLower(owner+"/"+p.Name), md.Name, digest, payload)
	for k, v := range ev.Extensions() {
		if _, set := img.Extensions()[k]; !set {
			img.SetExtension(k, v)
		}
	}
	*ev = img
	return nil
}

// normalizeGitHubRun adds the branch and revision of a workflow_run or
// check_suite; the type stays com.github.<event>.
func normalizeGitHubRun(ev *event.Event, kind string, payload []byte) error {
	var e map[string]json.RawMessage
	if err := json.Unmarshal(payload, &e); err != nil {
		return fmt.Errorf("%w: %s payload: %v", ErrMalformed, kind, err)
	}
	var run struct {
		HeadBranch string `json:"head_branch"`
		HeadSHA    string `json:"head_sha"`
	}
	if raw, ok := e[kind]; ok {
		if err := json.Unmarshal(raw, &run); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrMalformed, kind, err)
		}
	}
	setExt(ev, "branch", run.HeadBranch)
	setExt(ev, "revision", run.HeadSHA)
	return nil
}
