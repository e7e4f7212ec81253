package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/package-url/packageurl-go"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// CloudEvents in: any sender that speaks CloudEvents 1.0 over HTTP
// (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md),
// in binary mode (ce-* headers, the body is the data), structured mode
// (application/cloudevents+json) or batch mode
// (application/cloudevents-batch+json). The sender authenticates with an
// HMAC-SHA256 of the raw body in "X-Signature: sha256=<hex>", or with the
// secret as a bearer token in "Authorization: Bearer <secret>". The HMAC
// covers the body only, so with it binary mode is refused: its ce-*
// attributes (type, id, subject, extensions) would be unsigned.
//
// CDEvents (https://github.com/cdevents/spec, carried as CloudEvents whose
// data is the CDEvent) are mapped to the normalized vocabulary where they
// have a meaning: artifact published/packaged with an OCI purl becomes an
// image push, change merged a git push, branch deleted a branch deletion.

// Headers of the cloudevents kind.
const (
	cloudEventsSignatureHeader = "X-Signature"
	// reservedTypePrefix is the router's own vocabulary (DESIGN.md 4).
	reservedTypePrefix = "dev.switchyard."
	cdeventsTypePrefix = "dev.cdevents."
)

func init() { Register(cloudEventsProvider{}) }

// cloudEventsProvider handles CloudEvents sent over HTTP by other buses and
// tools, CDEvents included.
type cloudEventsProvider struct{}

var (
	_ Provider      = cloudEventsProvider{}
	_ Handshaker    = cloudEventsProvider{}
	_ Signer        = cloudEventsProvider{}
	_ EarlyVerifier = cloudEventsProvider{}
)

func (cloudEventsProvider) Kind() string { return "cloudevents" }

// Verify accepts an HMAC signature or a bearer token, whichever the request
// carries. A request that presents a signature is judged by it alone: a
// wrong signature is refused even with a token beside it, and so is binary
// mode (see checkSignedMode).
func (cloudEventsProvider) Verify(req *Request, src *routing.Source) error {
	if req.Header.Get(cloudEventsSignatureHeader) != "" {
		if err := checkSignedMode(req.Header); err != nil {
			return err
		}
		if err := verifyHMACHex(req, src, cloudEventsSignatureHeader, "sha256="); err != nil {
			return fmt.Errorf("verify cloudevents signature: %w", err)
		}
		return nil
	}
	return verifyCloudEventsToken(req, src)
}

// VerifyBeforeBody checks the bearer token, and refuses binary mode with a
// signature, before the body is read; a signature itself needs the body.
func (cloudEventsProvider) VerifyBeforeBody(req *Request, src *routing.Source) error {
	if req.Header.Get(cloudEventsSignatureHeader) != "" {
		return checkSignedMode(req.Header)
	}
	return verifyCloudEventsToken(req, src)
}

// checkSignedMode refuses binary mode on an HMAC-signed request: the
// signature covers the body alone, so its ce-* headers could be rewritten
// on a captured request (any type, id, subject or extension). 415, not
// 400: the request is well formed, its encoding is what the router does
// not take with a signature, and the fix is the Content-Type.
func checkSignedMode(h http.Header) error {
	if cloudEventsMode(h) != binding.EncodingBinary {
		return nil
	}
	return fmt.Errorf("verify cloudevents signature: %w: binary mode (ce-* headers) is not covered by %s, which signs the body only: send structured mode (Content-Type: %s) or a batch (%s), or authenticate with Authorization: Bearer",
		ErrUnsupportedMediaType, cloudEventsSignatureHeader, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON)
}

// verifyCloudEventsToken checks "Authorization: Bearer <secret>". A token
// authenticates the sender, not the message, so every mode is taken with it.
func verifyCloudEventsToken(req *Request, src *routing.Source) error {
	if req.Header.Get("Authorization") == "" {
		return fmt.Errorf("verify cloudevents: %w: send %s: sha256=<hex> or Authorization: Bearer <secret>", ErrUnauthorized, cloudEventsSignatureHeader)
	}
	token, err := authorizationBearer(req.Header)
	if err == nil {
		err = verifyToken(req, token, src, "bearer token")
	}
	if err != nil {
		return fmt.Errorf("verify cloudevents: %w", err)
	}
	return nil
}

// Handshake answers the CloudEvents webhook abuse-protection check.
func (cloudEventsProvider) Handshake(h http.Header) *Reply { return cloudEventsHandshake(h) }

// cloudEventsHandshake answers the OPTIONS validation request of the
// CloudEvents webhook spec
// (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/http-webhook.md#4-abuse-protection):
// the sender names itself in WebHook-Request-Origin and may deliver once the
// answer allows that origin. Allowing it grants nothing by itself: every
// delivery is still authenticated.
func cloudEventsHandshake(h http.Header) *Reply {
	origin := strings.TrimSpace(h.Get("WebHook-Request-Origin"))
	if origin == "" {
		return &Reply{Status: http.StatusBadRequest, Body: []byte(`{"error":"missing WebHook-Request-Origin header"}` + "\n")}
	}
	reply := &Reply{Status: http.StatusOK, Header: http.Header{}}
	reply.Header.Set("WebHook-Allowed-Origin", origin)
	if h.Get("WebHook-Request-Rate") != "" {
		reply.Header.Set("WebHook-Allowed-Rate", "*")
	}
	reply.Header.Set("Allow", "POST, OPTIONS")
	return reply
}

// cloudEventsMode is how a request carries CloudEvents, from its headers.
func cloudEventsMode(h http.Header) binding.Encoding {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case mt == event.ApplicationCloudEventsJSON:
		return binding.EncodingStructured
	case mt == event.ApplicationCloudEventsBatchJSON:
		return binding.EncodingBatch
	case h.Get("Ce-Specversion") != "":
		return binding.EncodingBinary
	}
	return binding.EncodingUnknown
}

// checkCloudEvent validates an incoming event's attributes and that it can
// be stored: the sdk refuses to encode data declared as JSON that is not
// JSON (a binary-mode body with Content-Type application/json, say), which
// would otherwise surface as a 500 at publish instead of the sender's 400.
func checkCloudEvent(ev *event.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if _, err := json.Marshal(ev); err != nil {
		return fmt.Errorf("data does not match its datacontenttype %q: %v", ev.DataContentType(), err)
	}
	return nil
}

// readCloudEvents decodes the CloudEvents of a request through the sdk-go
// HTTP binding, and checks each (checkCloudEvent). A batch is split first,
// so an error names the event it is about.
func readCloudEvents(req *Request) ([]event.Event, error) {
	mode := cloudEventsMode(req.Header)
	switch mode {
	case binding.EncodingStructured, binding.EncodingBinary:
		msg := cehttp.NewMessage(req.Header, io.NopCloser(bytes.NewReader(req.Body)))
		ev, err := binding.ToEvent(context.Background(), msg)
		if err != nil {
			return nil, fmt.Errorf("%w: cloudevent: %v", ErrMalformed, err)
		}
		if err := checkCloudEvent(ev); err != nil {
			return nil, fmt.Errorf("%w: cloudevent: %v", ErrMalformed, err)
		}
		return []event.Event{*ev}, nil
	case binding.EncodingBatch:
		var raws []json.RawMessage
		if err := json.Unmarshal(req.Body, &raws); err != nil {
			return nil, fmt.Errorf("%w: cloudevents batch: %v", ErrMalformed, err)
		}
		events := make([]event.Event, 0, len(raws))
		for i, raw := range raws {
			ev := event.New()
			if err := format.JSON.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("%w: cloudevents batch event %d: %v", ErrMalformed, i, err)
			}
			if err := checkCloudEvent(&ev); err != nil {
				return nil, fmt.Errorf("%w: cloudevents batch event %d: %v", ErrMalformed, i, err)
			}
			events = append(events, ev)
		}
		return events, nil
	}
	return nil, fmt.Errorf("%w: Content-Type %q: send a CloudEvent in binary mode (ce-* headers), %s or %s",
		ErrUnsupportedMediaType, req.Header.Get("Content-Type"), event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON)
}

// Normalize keeps each incoming event as it is (id, source, type, subject,
// time, data and its content type: in binary mode the body is the data, in
// structured mode the event's data), upgraded to CloudEvents 1.0, with
// provider=cloudevents. Only the router sets identity, so an incoming one
// is dropped. CDEvents are mapped (see cdevents below).
func (cloudEventsProvider) Normalize(req *Request) (Result, error) {
	events, err := readCloudEvents(req)
	if err != nil {
		return Result{}, err
	}
	out := make([]event.Event, 0, len(events))
	for i := range events {
		ev := events[i]
		// dev.switchyard.* types are what the router derives from a
		// verified provider payload; rules and bindings trust them (a
		// git.push's repository and branch select pipelines and
		// credentials). A bus that could claim them would impersonate a
		// Git host or registry, so it must send its own types (or
		// CDEvents, which the router maps itself).
		if strings.HasPrefix(ev.Type(), reservedTypePrefix) {
			return Result{}, fmt.Errorf("%w: event %q: type %q is reserved for the router's normalized events (%s*); send your own type or a CDEvent",
				ErrMalformed, ev.ID(), ev.Type(), reservedTypePrefix)
		}
		ev.Context = ev.Context.AsV1()
		ev.SetExtension("identity", nil)
		ev.SetExtension("provider", "cloudevents")
		if strings.HasPrefix(ev.Type(), cdeventsTypePrefix) {
			mapCDEvent(&ev)
		}
		if err := ev.Validate(); err != nil {
			return Result{}, fmt.Errorf("%w: event %q: %v", ErrMalformed, ev.ID(), err)
		}
		out = append(out, ev)
	}
	return Result{Events: out}, nil
}

// cdevent is the part of a CDEvent (https://github.com/cdevents/spec,
// spec.md "CDEvents format") the mapping reads.
type cdevent struct {
	Context struct {
		Type string `json:"type"`
	} `json:"context"`
	Subject struct {
		ID      string `json:"id"`
		Content struct {
			Repository json.RawMessage `json:"repository"`
		} `json:"content"`
	} `json:"subject"`
}

// cdeventRepository is a repository reference ({"id": "an-org/a-repo",
// "source"}) or, in some producers, the repository object (name, owner).
type cdeventRepository struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Owner string `json:"owner"`
}

// mapCDEvent maps a CDEvent to the normalized vocabulary where it has a
// meaning; others keep their type. The original type is kept in the
// cdeventtype extension either way, and the data (the CDEvent) is
// unchanged. A CDEvent whose data cannot be read keeps its type too: it is
// still a valid CloudEvent the sender is entitled to send.
func mapCDEvent(ev *event.Event) {
	orig := ev.Type()
	ev.SetExtension("cdeventtype", orig)
	var cd cdevent
	if err := json.Unmarshal(ev.Data(), &cd); err != nil {
		return
	}
	// Types are versioned: dev.cdevents.<subject>.<predicate>.<version>.
	name := strings.TrimPrefix(orig, cdeventsTypePrefix)
	switch {
	case strings.HasPrefix(name, "artifact.published.") || strings.HasPrefix(name, "artifact.packaged."):
		repo, tag, digest, ok := ociPurl(cd.Subject.ID)
		if !ok {
			return // not an image: no normalized meaning
		}
		ev.SetType(TypeImagePush)
		ev.SetExtension("repository", repo)
		setExt(ev, "tag", tag)
		setExt(ev, "digest", digest)
		if tag != "" {
			ev.SetSubject(tag)
		} else {
			ev.SetSubject(digest)
		}
	case strings.HasPrefix(name, "change.merged."):
		// A change is merged into its target branch; the CDEvents change
		// model does not name that branch (yet), so only the repository is
		// known.
		ev.SetType(TypeGitPush)
		setExt(ev, "repository", cdeventRepo(cd.Subject.Content.Repository))
		ev.SetExtension("action", "merged")
	case strings.HasPrefix(name, "branch.deleted."):
		if cd.Subject.ID == "" {
			return
		}
		setExt(ev, "repository", cdeventRepo(cd.Subject.Content.Repository))
		applyRef(ev, "refs/heads/"+strings.TrimPrefix(cd.Subject.ID, "refs/heads/"), true)
	}
}

func cdeventRepo(raw json.RawMessage) string {
	var r cdeventRepository
	if len(raw) == 0 || json.Unmarshal(raw, &r) != nil {
		return ""
	}
	if r.Owner != "" && r.Name != "" {
		return r.Owner + "/" + r.Name
	}
	return r.ID
}

// ociPurl reads an OCI package URL
// (https://github.com/package-url/purl-spec, type "oci"):
// pkg:oci/<name>@<digest>?repository_url=<host>/<path>&tag=<tag>. The
// repository is repository_url (which names the image, host included)
// without a scheme, or the bare name when the purl has none.
func ociPurl(s string) (repository, tag, digest string, ok bool) {
	p, err := packageurl.FromString(s)
	if err != nil || p.Type != "oci" || p.Name == "" {
		return "", "", "", false
	}
	q := p.Qualifiers.Map()
	repository = trimScheme(q["repository_url"])
	if repository == "" {
		repository = p.Name
	}
	return repository, q["tag"], p.Version, true
}

// Sign authenticates the request as a cloudevents sender does. A
// structured event or a batch is signed (X-Signature); any other body is
// sent in binary mode with the event name and delivery as ce-* headers,
// which a signature would not cover, so with the secret as a bearer token.
func (cloudEventsProvider) Sign(req *Request, eventName, delivery string, secret []byte) {
	switch cloudEventsMode(req.Header) {
	case binding.EncodingStructured, binding.EncodingBatch:
		req.Header.Set(cloudEventsSignatureHeader, "sha256="+hexHMAC(secret, req.Body))
		return
	case binding.EncodingUnknown:
		if eventName == "" {
			eventName = "com.example.event"
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", delivery)
		req.Header.Set("Ce-Source", "/switchyard/send")
		req.Header.Set("Ce-Type", eventName)
	}
	req.Header.Set("Authorization", "Bearer "+string(secret))
}
