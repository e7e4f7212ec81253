package ingest

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// JFrog Artifactory webhooks (https://jfrog.com/help/r/jfrog-platform-administration-documentation/webhooks):
// the webhook's secret token comes in X-JFrog-Event-Auth, either as the
// token itself or, with "Use secret for payload signing", as the hex
// HMAC-SHA256 of the body keyed with it; both are accepted and compared in
// constant time (src.Header may name another header). Docker "pushed" and
// "deleted" become image events with repository
// "<platform host>/<repo key>/<image name>", as docker pulls it with
// Artifactory's repository-path method; other domains keep
// com.jfrog.artifactory.<domain>.<event_type>. There is no delivery id:
// the id is a hash of the body.

const artifactoryAuthHeader = "X-JFrog-Event-Auth"

func init() { Register(artifactoryProvider{}) }

// artifactoryProvider is BodySigned for its signed-payload mode; in token
// mode the id is the body's hash anyway, so the body digest changes nothing.
type artifactoryProvider struct{ bodySignature }

var (
	_ Provider      = artifactoryProvider{}
	_ Signer        = artifactoryProvider{}
	_ EarlyVerifier = artifactoryProvider{}
	_ BodySigned    = artifactoryProvider{}
)

func (artifactoryProvider) Kind() string { return "artifactory" }

func (artifactoryProvider) Verify(req *Request, src *routing.Source) error {
	header := cmp.Or(src.Header, artifactoryAuthHeader)
	if value := strings.TrimSpace(req.Header.Get(header)); value == "" || len(src.AcceptedSecrets()) == 0 {
		return verifyToken(req, value, src, header+" header") // says which is missing
	}
	// The token itself (after "Bearer "/"Basic " in Authorization, as for
	// the other header kinds), or the body's HMAC keyed with it.
	if verifyHeaderToken(req, src, header) == nil || verifyHMACHex(req, src, header, "") == nil {
		return nil
	}
	return fmt.Errorf("%w: %s is neither the secret token nor the body's HMAC-SHA256", ErrUnauthorized, header)
}

// VerifyBeforeBody accepts the token mode before the body is read. A value
// that is not the token may be the body's HMAC-SHA256 (64 hex digits): that
// mode needs the body, so it is left to Verify; anything else is refused.
func (artifactoryProvider) VerifyBeforeBody(req *Request, src *routing.Source) error {
	header := cmp.Or(src.Header, artifactoryAuthHeader)
	value := strings.TrimSpace(req.Header.Get(header))
	if value == "" || len(src.AcceptedSecrets()) == 0 {
		return verifyToken(req, value, src, header+" header") // says which is missing
	}
	if verifyHeaderToken(req, src, header) == nil || looksLikeHexSHA256(value) {
		return nil
	}
	return fmt.Errorf("%w: %s is neither the secret token nor a hex HMAC-SHA256", ErrUnauthorized, header)
}

// looksLikeHexSHA256 reports whether s has the shape of a hex SHA-256.
func looksLikeHexSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

type artifactoryPayload struct {
	Domain    string `json:"domain"`
	EventType string `json:"event_type"`
	JPDOrigin string `json:"jpd_origin"`
	Source    string `json:"source"`
	Data      struct {
		RepoKey   string `json:"repo_key"`
		Path      string `json:"path"`
		SHA256    string `json:"sha256"`
		ImageName string `json:"image_name"`
		Tag       string `json:"tag"`
	} `json:"data"`
}

func (artifactoryProvider) Normalize(req *Request) (Result, error) {
	payload, err := requireJSON(req, "Artifactory", false)
	if err != nil {
		return Result{}, err
	}
	var p artifactoryPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return Result{}, fmt.Errorf("%w: Artifactory payload: %v", ErrMalformed, err)
	}
	if p.Domain == "" || p.EventType == "" {
		return Result{}, fmt.Errorf("%w: Artifactory payload has no domain or event_type", ErrMalformed)
	}
	host := ""
	if u, err := url.Parse(p.JPDOrigin); err == nil {
		host = u.Host
	}
	var ev event.Event
	switch {
	case p.Domain == "docker" && (p.EventType == "pushed" || p.EventType == "deleted"):
		typ := TypeImagePush
		if p.EventType == "deleted" {
			typ = TypeImageDelete
		}
		digest := ""
		if p.Data.SHA256 != "" {
			digest = "sha256:" + p.Data.SHA256 // of the manifest file
		}
		ev = newImageEvent("artifactory", "", typ, host, p.Data.RepoKey+"/"+p.Data.ImageName, p.Data.Tag, digest, payload)
	default:
		source := "urn:switchyard:artifactory"
		if host != "" {
			source = "https://" + host
		}
		ev = newEvent("artifactory", "", source, "com.jfrog.artifactory."+p.Domain+"."+p.EventType, payload)
		setExt(&ev, "repository", strings.Trim(p.Data.RepoKey+"/"+p.Data.Path, "/"))
	}
	setExt(&ev, "action", p.EventType)
	if !strings.HasPrefix(p.Source, "jfrt@") { // "jfrt@<id>" is a service, not a person
		setExt(&ev, "actor", p.Source)
	}
	if err := setData(&ev, payload); err != nil {
		return Result{}, err
	}
	return Result{Events: []event.Event{ev}}, nil
}

// Sign sends the secret token as Artifactory does without payload signing.
func (artifactoryProvider) Sign(req *Request, _, _ string, secret []byte) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(artifactoryAuthHeader, string(secret))
}
