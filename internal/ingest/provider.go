package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Request is what a provider sees of a webhook: the headers and the raw
// body, exactly as received.
type Request struct {
	Header http.Header
	Body   []byte
	// PathToken is the token in /v1/hooks/{source}/{token}, for senders
	// that can neither sign nor set headers (Docker Hub, Quay). Never
	// logged.
	PathToken string
	// SecretLine is set by verification: which of the source's accepted
	// secrets (1-based) verified the request, 0 for none. The audit record
	// carries its line in the secret file (routing.Source.SecretLine), never
	// the secret: during a rotation it shows whether the old one is used.
	SecretLine int
}

// Result is what a provider made of a verified request.
type Result struct {
	// Events are the normalized events; a request may carry several (a
	// registry notification envelope) or none (an event the router ignores).
	Events []event.Event
	// Ping is set for the provider's connectivity check, answered with 200.
	Ping bool
	// Reply, when set, is the answer the provider expects instead of a 202
	// (a subscription validation handshake). Events, if any, are still
	// stored first.
	Reply *Reply
}

// Reply is a provider-specific answer.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Provider verifies and normalizes the webhooks of one kind of sender.
type Provider interface {
	// Kind is the source kind in the root manifest ("github").
	Kind() string
	// Verify authenticates the raw request with the source's credentials
	// (any of src.AcceptedSecrets(), or src.OIDC), before anything decodes the body, in
	// constant time. Failures wrap ErrUnauthorized.
	Verify(req *Request, src *routing.Source) error
	// Normalize turns a verified request into CloudEvents. It needs no
	// secret, so `router normalize` can run it offline. Failures wrap
	// ErrMalformed or ErrUnsupportedMediaType.
	Normalize(req *Request) (Result, error)
}

// EarlyVerifier is a provider whose credential is in the headers or the path, not a body signature: it is checked before the body is read.
//
// The server calls VerifyBeforeBody first, with req.Body nil, and refuses
// the request on error without reading the body (an unauthenticated sender
// cannot make the router buffer up to the body cap); it then reads the body
// and calls Verify as for every provider. A kind whose mode decides (a
// token, or an HMAC of the body, in the same header) returns nil when the
// request's mode needs the body, and leaves the check to Verify. Failures
// wrap ErrUnauthorized (or ErrUnsupportedMediaType for a request the kind
// refuses whatever its body).
type EarlyVerifier interface {
	VerifyBeforeBody(req *Request, src *routing.Source) error
}

// BodySigned is a provider whose signature covers only the body: a captured body replayed with a new delivery id passes verification.
//
// The server deduplicates such deliveries on the body's SHA-256 as well as
// on the delivery id, so identical bodies with a new delivery id are the
// same delivery. Kinds whose events carry no delivery id outside the body
// need not implement it: their id is already the body's hash, or signed.
type BodySigned interface{ bodySigned() }

// bodySignature is embedded by the kinds whose signature covers the body
// alone, to make them BodySigned.
type bodySignature struct{}

func (bodySignature) bodySigned() {}

var (
	registryMu sync.RWMutex
	registry   = map[string]Provider{}
)

// Register makes a provider available by its kind. Providers register
// themselves from init in their own file; registering a kind twice is a
// programming error.
func Register(p Provider) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[p.Kind()]; dup {
		panic(fmt.Sprintf("ingest: provider kind %q registered twice", p.Kind()))
	}
	registry[p.Kind()] = p
}

// Lookup returns the provider for a source kind.
func Lookup(kind string) (Provider, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	p, ok := registry[kind]
	return p, ok
}

// Kinds lists the registered source kinds, sorted.
func Kinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Sorted(maps.Keys(registry))
}

// Normalize runs the provider of the given kind on a request without
// verifying it: `router normalize` uses it to show what rules will see.
func Normalize(kind string, req *Request) (Result, error) {
	p, ok := Lookup(kind)
	if !ok {
		return Result{}, fmt.Errorf("%w: %s", ErrUnknownSource, routing.UnknownName("provider kind", kind, Kinds()))
	}
	return p.Normalize(req)
}

// contentID is the event id for payloads without a delivery id: the same
// body always gets the same id, so a sender's retries deduplicate.
func contentID(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Signer is implemented by providers whose requests `router send` can sign
// the way the real sender does, to try a router end to end.
type Signer interface {
	// Sign sets the provider's headers on req for the given event name and
	// delivery id, and authenticates it with secret.
	Sign(req *Request, event, delivery string, secret []byte)
}

// SourceChecker is implemented by providers whose sources need more than a
// secret (an OIDC block, a header name); CheckSource is run at load.
type SourceChecker interface {
	CheckSource(src *routing.Source) error
}

// pathTokenProvider is implemented by the kinds whose senders authenticate
// with a token in the hook path (/v1/hooks/{source}/{token}), by embedding
// pathToken; the others are refused on that route rather than having the
// segment ignored.
type pathTokenProvider interface{ takesPathToken() }

// headerKinds are the kinds whose static credential header a source may
// rename with `header`.
var headerKinds = map[string]bool{"acr": true, "artifactory": true, "distribution": true, "harbor": true}

// CheckSource runs the source kind's own configuration checks; it is
// routing.Options.CheckSource.
func CheckSource(src *routing.Source) error {
	p, ok := Lookup(src.Kind)
	if !ok {
		return nil // the unknown kind is reported on its own
	}
	// A field the kind would ignore is refused: an operator who sets it
	// expects it to change something.
	if src.Header != "" && !headerKinds[src.Kind] {
		return fmt.Errorf("kind %q does not read its credential from a configurable header: remove header (kinds that do: %s)",
			src.Kind, strings.Join(slices.Sorted(maps.Keys(headerKinds)), ", "))
	}
	if src.AllowSHA1 && src.Kind != "github" {
		return fmt.Errorf("allowSHA1 is for kind github only")
	}
	if c, ok := p.(SourceChecker); ok {
		return c.CheckSource(src)
	}
	if src.OIDC != nil {
		return fmt.Errorf("kind %q does not authenticate with oidc", src.Kind)
	}
	if len(src.SecretRef.Env)+len(src.SecretRef.File) == 0 {
		return fmt.Errorf("kind %q needs a secret", src.Kind)
	}
	return nil
}

// LoadOptions are the routing options every command loads rules with: the
// registered kinds and their own checks.
func LoadOptions() routing.Options {
	return routing.Options{SourceKinds: Kinds(), CheckSource: CheckSource, EventTypes: NormalizedTypes()}
}

// Handshaker is implemented by providers whose senders check the endpoint
// with an OPTIONS request first (the CloudEvents webhook spec).
type Handshaker interface {
	Handshake(h http.Header) *Reply
}

// NormalizedTypes are the provider-independent types the normalizers
// produce: a trigger or grant that names another dev.switchyard. type gets
// a warning at load (a typo would never fire).
func NormalizedTypes() []string {
	return []string{TypeGitPush, TypeGitTag, TypeGitBranchDeleted, TypeGitTagDeleted,
		TypeGitPullRequest, TypeGitRelease, TypeImagePush, TypeImageDelete, TypeGeneric}
}
