package ingest

import (
	"encoding/json"
	"errors"
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
	secrets := src.AcceptedSecrets()
	if len(secrets) == 0 {
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
	if !anySecret(req, secrets, func(secret []byte) bool { return github.ValidateSignature(sig, req.Body, secret) == nil }) {
		return fmt.Errorf("%w: signature does not match the body", ErrUnauthorized)
	}
	return nil
}

// githubPayload extracts the JSON payload. GitHub sends JSON, or with the
// hook's "application/x-www-form-urlencoded" setting the same JSON in a
// "payload" form field; the signature covers the raw body either way. The
// payload is not validated here: decodeGitHub's one decode does that.
func githubPayload(req *Request) ([]byte, error) {
	ct := req.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, fmt.Errorf("%w: Content-Type %q: GitHub sends application/json", ErrUnsupportedMediaType, ct)
	}
	switch mt {
	case "application/json":
		return req.Body, nil
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(req.Body))
		if err != nil {
			return nil, fmt.Errorf("%w: form body: %v", ErrMalformed, err)
		}
		return []byte(form.Get("payload")), nil
	}
	return nil, fmt.Errorf("%w: Content-Type %q: GitHub sends application/json", ErrUnsupportedMediaType, mt)
}

// githubEvent is a GitHub payload decoded for normalization: the common
// fields and, by event kind, the few more that kind's mapping reads.
type githubEvent interface {
	common() *githubCommon
	normalize(ev *event.Event, kind string) error
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

func (c *githubCommon) common() *githubCommon { return c }

// normalize leaves the provider type of the kinds without a mapping.
func (*githubCommon) normalize(*event.Event, string) error { return nil }

// decodeGitHub decodes payload once, into the struct of kind. Only the
// fields normalization reads are typed: the rest is skipped, not checked.
func decodeGitHub(kind string, payload []byte) (githubEvent, error) {
	var e githubEvent
	switch kind {
	case "push":
		e = new(githubPush)
	case "pull_request":
		e = new(githubPullRequest)
	case "release":
		e = new(githubRelease)
	case "create", "delete":
		e = new(githubRef)
	case "package":
		e = new(githubPackageEvent)
	case "registry_package":
		e = new(githubRegistryPackageEvent)
	case "workflow_run":
		e = new(githubWorkflowRun)
	case "check_suite":
		e = new(githubCheckSuite)
	default:
		e = new(githubCommon)
	}
	if err := json.Unmarshal(payload, e); err != nil {
		if syntax := (*json.SyntaxError)(nil); errors.As(err, &syntax) {
			return nil, fmt.Errorf("%w: body is not valid JSON", ErrMalformed)
		}
		return nil, fmt.Errorf("%w: %s payload: %v", ErrMalformed, kind, err)
	}
	return e, nil
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
		if !json.Valid(payload) {
			return Result{}, fmt.Errorf("%w: body is not valid JSON", ErrMalformed)
		}
		return Result{Ping: true}, nil
	}
	e, err := decodeGitHub(kind, payload)
	if err != nil {
		return Result{}, err
	}

	ev := newEvent("github", req.Header.Get(githubDeliveryHeader), "https://github.com", "com.github."+kind, payload)
	common := e.common()
	if r := common.Repository; r != nil {
		setSourceURL(&ev, r.HTMLURL)
		setExt(&ev, "repository", r.FullName)
	}
	setExt(&ev, "action", common.Action)
	if common.Sender != nil {
		setExt(&ev, "actor", common.Sender.Login)
	}
	if err := e.normalize(&ev, kind); err != nil {
		return Result{}, err
	}
	// The decode above proved the payload JSON: setData does not scan it.
	if err := setData(&ev, payload); err != nil {
		return Result{}, err
	}
	return Result{Events: []event.Event{ev}}, nil
}

// githubPush is the part of a push payload normalization reads.
type githubPush struct {
	githubCommon
	Ref     string `json:"ref"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted"`
	Pusher  *struct {
		Name string `json:"name"`
	} `json:"pusher"`
	HeadCommit *struct {
		Timestamp *github.Timestamp `json:"timestamp"`
	} `json:"head_commit"`
}

// normalize maps a push to git.push, git.tag or a deletion, with the ref,
// branch or tag and revision extensions.
func (p *githubPush) normalize(ev *event.Event, _ string) error {
	if p.Ref == "" {
		return fmt.Errorf("%w: push payload has no ref", ErrMalformed)
	}
	// Other refs (notes, pull heads) keep the provider type.
	applyPush(ev, p.Ref, p.Before, p.After, p.Deleted || p.After == zeroSHA)
	if ev.Extensions()["actor"] == nil && p.Pusher != nil && p.Pusher.Name != "" {
		ev.SetExtension("actor", p.Pusher.Name)
	}
	if p.HeadCommit != nil && p.HeadCommit.Timestamp != nil && !p.HeadCommit.Timestamp.IsZero() {
		ev.SetTime(p.HeadCommit.Timestamp.UTC())
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

// githubPullRequest is the part of a pull_request payload normalization
// reads.
type githubPullRequest struct {
	githubCommon
	PullRequest *struct {
		Number    int               `json:"number"`
		Merged    bool              `json:"merged"`
		UpdatedAt *github.Timestamp `json:"updated_at"`
		Base      githubBranch      `json:"base"`
		Head      githubBranch      `json:"head"`
	} `json:"pull_request"`
}

// githubBranch is a pull request's base or head.
type githubBranch struct {
	Ref string `json:"ref"`
	SHA string `json:"sha"`
}

// normalize maps pull_request to git.pullrequest: action (a closed and
// merged one becomes "merged"), branch = the base (target) branch,
// headbranch, ref refs/pull/<n>/head, revision = the head sha, pullrequest
// = the number.
func (e *githubPullRequest) normalize(ev *event.Event, _ string) error {
	pr := e.PullRequest
	if pr == nil {
		return fmt.Errorf("%w: pull_request payload has no pull_request", ErrMalformed)
	}
	action := e.Action
	if action == "closed" && pr.Merged {
		action = "merged"
	}
	pullRequest{
		action:     action,
		number:     pr.Number,
		ref:        fmt.Sprintf("refs/pull/%d/head", pr.Number),
		branch:     pr.Base.Ref,
		headBranch: pr.Head.Ref,
		revision:   pr.Head.SHA,
	}.apply(ev)
	if t := pr.UpdatedAt; t != nil && !t.IsZero() {
		ev.SetTime(t.UTC())
	}
	return nil
}

// githubRelease is the part of a release payload normalization reads.
type githubRelease struct {
	githubCommon
	Release struct {
		TagName     string            `json:"tag_name"`
		PublishedAt *github.Timestamp `json:"published_at"`
	} `json:"release"`
}

// normalize maps a published release to git.release with its tag; other
// release actions keep com.github.release.
func (e *githubRelease) normalize(ev *event.Event, _ string) error {
	if tag := e.Release.TagName; tag != "" {
		setRef(ev, "refs/tags/"+tag)
	}
	if e.Action == "published" {
		ev.SetType(TypeGitRelease)
	}
	if t := e.Release.PublishedAt; t != nil && !t.IsZero() {
		ev.SetTime(t.UTC())
	}
	return nil
}

// githubRef is the part of a create or delete payload normalization reads.
type githubRef struct {
	githubCommon
	Ref     string `json:"ref"`
	RefType string `json:"ref_type"`
}

// normalize maps create and delete (a branch or tag made or removed,
// without the push details) to git.push/git.tag and the deletion types.
// Repository rules see the same types as for a push.
func (e *githubRef) normalize(ev *event.Event, kind string) error {
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

// githubPackageEvent is a package payload.
type githubPackageEvent struct {
	githubCommon
	Package githubPackage `json:"package"`
}

func (e *githubPackageEvent) normalize(ev *event.Event, _ string) error {
	normalizeGitHubPackage(ev, e.Action, &e.Package)
	return nil
}

// githubRegistryPackageEvent is a registry_package payload.
type githubRegistryPackageEvent struct {
	githubCommon
	Package githubPackage `json:"registry_package"`
}

func (e *githubRegistryPackageEvent) normalize(ev *event.Event, _ string) error {
	normalizeGitHubPackage(ev, e.Action, &e.Package)
	return nil
}

// normalizeGitHubPackage maps a published container package (GHCR) to
// image.push with repository ghcr.io/<owner>/<name>; other package types
// keep com.github.<event>.
func normalizeGitHubPackage(ev *event.Event, action string, p *githubPackage) {
	if !strings.EqualFold(p.PackageType, "container") || p.Name == "" || (action != "published" && action != "updated") {
		return
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
	// ev has its id already: no payload is needed for a content id.
	img := newImageEvent("github", ev.ID(), TypeImagePush, "ghcr.io", strings.ToLower(owner+"/"+p.Name), md.Name, digest, nil)
	for k, v := range ev.Extensions() {
		if _, set := img.Extensions()[k]; !set {
			img.SetExtension(k, v)
		}
	}
	*ev = img
}

// githubRun is a workflow run's or check suite's branch and revision.
type githubRun struct {
	HeadBranch string `json:"head_branch"`
	HeadSHA    string `json:"head_sha"`
}

// githubWorkflowRun is a workflow_run payload.
type githubWorkflowRun struct {
	githubCommon
	Run githubRun `json:"workflow_run"`
}

func (e *githubWorkflowRun) normalize(ev *event.Event, _ string) error {
	e.Run.apply(ev)
	return nil
}

// githubCheckSuite is a check_suite payload.
type githubCheckSuite struct {
	githubCommon
	Run githubRun `json:"check_suite"`
}

func (e *githubCheckSuite) normalize(ev *event.Event, _ string) error {
	e.Run.apply(ev)
	return nil
}

// apply adds the branch and revision; the type stays com.github.<event>.
func (r githubRun) apply(ev *event.Event) {
	setExt(ev, "branch", r.HeadBranch)
	setExt(ev, "revision", r.HeadSHA)
}
