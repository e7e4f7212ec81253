package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

func init() { Register(garProvider{}) }

// garProvider handles Google Artifact Registry (and Container Registry)
// notifications delivered by a Pub/Sub push subscription on the registry's
// "gcr" topic.
//
// Artifact Registry publishes one message per change, whose data is JSON
// {"action": "INSERT"|"DELETE", "digest": "<host>/<path>@sha256:...",
// "tag": "<host>/<path>:<tag>"}
// (https://cloud.google.com/artifact-registry/docs/configure-notifications).
// Pub/Sub pushes it wrapped as {"message": {"data": <base64>, "messageId",
// "publishTime", "attributes"}, "subscription"}
// (https://cloud.google.com/pubsub/docs/push), and authenticates the push
// with a Google-signed OIDC token in "Authorization: Bearer <jwt>" for the
// subscription's service account and audience
// (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions).
// Pub/Sub redelivers a message with the same messageId, which is the event
// id.
type garProvider struct{}

var (
	_ Provider      = garProvider{}
	_ SourceChecker = garProvider{}
	_ EarlyVerifier = garProvider{}
)

func (garProvider) Kind() string { return "gar" }

// CheckSource requires the oidc block: the token is the only credential
// Pub/Sub sends. A secret would never be checked, so it is refused rather
// than give a false sense of protection.
func (garProvider) CheckSource(src *routing.Source) error {
	if src.OIDC == nil || src.OIDC.Issuer == "" || src.OIDC.Audience == "" {
		return fmt.Errorf("kind gar authenticates Pub/Sub push by its OIDC token: oidc needs issuer (https://accounts.google.com) and audience")
	}
	if len(src.SecretRef.Env)+len(src.SecretRef.File) != 0 {
		return fmt.Errorf("kind gar does not use a secret (the OIDC token authenticates it): remove secret")
	}
	return nil
}

// Verify checks the Google-signed OIDC token against the source's oidc
// block: signature (RS256, keys from jwksURL or the issuer's discovery),
// issuer, audience, expiry, and the service account email when set.
func (garProvider) Verify(req *Request, src *routing.Source) error {
	if _, err := verifyOIDCBearer(context.Background(), req.Header, src.OIDC); err != nil {
		return fmt.Errorf("verify pub/sub push token: %w", err)
	}
	return nil
}

// VerifyBeforeBody checks the OIDC token: it is a header, not a signature.
func (p garProvider) VerifyBeforeBody(req *Request, src *routing.Source) error {
	return p.Verify(req, src)
}

// pubsubPush is a Pub/Sub push delivery (the default "PubsubWrapper"
// format).
type pubsubPush struct {
	Message *struct {
		Data        []byte            `json:"data"` // base64 in JSON
		MessageID   string            `json:"messageId"`
		MessageID2  string            `json:"message_id"`
		PublishTime string            `json:"publishTime"`
		Attributes  map[string]string `json:"attributes"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// garNotification is the message data Artifact Registry publishes.
type garNotification struct {
	Action string `json:"action"`
	Digest string `json:"digest"`
	Tag    string `json:"tag"`
}

func (garProvider) Normalize(req *Request) (Result, error) {
	payload, err := requireJSON(req, "Pub/Sub push", false)
	if err != nil {
		return Result{}, err
	}
	var push pubsubPush
	if err := json.Unmarshal(payload, &push); err != nil {
		return Result{}, fmt.Errorf("%w: pub/sub push: %v", ErrMalformed, err)
	}
	if push.Message == nil || len(push.Message.Data) == 0 {
		return Result{}, fmt.Errorf("%w: pub/sub push has no message data", ErrMalformed)
	}
	var n garNotification
	if err := json.Unmarshal(push.Message.Data, &n); err != nil {
		return Result{}, fmt.Errorf("%w: artifact registry notification: %v", ErrMalformed, err)
	}
	ref := n.Digest
	if ref == "" {
		ref = n.Tag
	}
	if n.Action == "" || ref == "" {
		return Result{}, fmt.Errorf("%w: artifact registry notification needs action and digest or tag", ErrMalformed)
	}
	host, path, _, digest := garSplitRef(n.Digest)
	tagHost, tagPath, tag, _ := garSplitRef(n.Tag)
	if n.Digest == "" {
		host, path = tagHost, tagPath
	}
	if host == "" || path == "" {
		return Result{}, fmt.Errorf("%w: %q is not an image reference", ErrMalformed, ref)
	}

	typ := "com.google.artifactregistry." + strings.ToLower(n.Action)
	switch n.Action {
	case "INSERT":
		typ = TypeImagePush
	case "DELETE":
		typ = TypeImageDelete
	}
	id := push.Message.MessageID
	if id == "" {
		id = push.Message.MessageID2
	}
	ev := newImageEvent("gar", id, typ, host, path, tag, digest, payload)
	ev.SetExtension("action", n.Action)
	setTime(&ev, push.Message.PublishTime, time.RFC3339Nano)
	// The original push body, unchanged, is the data; the notification is
	// in message.data (base64), as Pub/Sub delivered it.
	if err := setData(&ev, payload); err != nil {
		return Result{}, err
	}
	return Result{Events: []event.Event{ev}}, nil
}

// garSplitRef splits "host/path:tag" or "host/path@sha256:..." (or both,
// "host/path:tag@sha256:...") into its parts. The first path component is
// the registry host, as in every fully qualified reference a registry
// publishes. No library in go.mod parses image references
// (distribution/reference is not a dependency), and this is all it needs.
func garSplitRef(ref string) (host, path, tag, digest string) {
	if ref == "" {
		return "", "", "", ""
	}
	name := ref
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name, digest = name[:i], name[i+1:]
	}
	// A tag's colon comes after the last slash; a colon before it is a
	// host's port.
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
	}
	host, path, ok := strings.Cut(name, "/")
	if !ok {
		return "", "", "", ""
	}
	return host, path, tag, digest
}
