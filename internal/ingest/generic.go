package ingest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Generic HMAC sources, for tools that can only sign a JSON body: the
// signature is "X-Signature: sha256=<hex HMAC-SHA256 of the raw body>".
// The event's type is X-Event-Type (default dev.switchyard.generic; the
// reserved dev.switchyard. prefix is refused for any other type, because
// rules trust those types to come from a provider that derived them), its
// id X-Delivery-Id or X-Request-Id (else a hash of the body), its subject
// X-Event-Subject; top-level string fields repository, ref, branch, tag,
// revision and actor of the body become the extensions of those names.

const (
	genericSignatureHeader = "X-Signature"
	genericTypeHeader      = "X-Event-Type"
	// TypeGeneric is the type of a generic event that names none.
	TypeGeneric = "dev.switchyard.generic"
)

func init() { Register(genericProvider{}) }

type genericProvider struct{}

var (
	_ Provider = genericProvider{}
	_ Signer   = genericProvider{}
)

func (genericProvider) Kind() string { return "generic-hmac" }

func (genericProvider) Verify(req *Request, src *routing.Source) error {
	return verifyHMACHex(req, src, genericSignatureHeader, "sha256=")
}

func (genericProvider) Normalize(req *Request) (Result, error) {
	payload, err := requireJSON(req, "a generic sender", false)
	if err != nil {
		return Result{}, err
	}
	typ := strings.TrimSpace(req.Header.Get(genericTypeHeader))
	switch {
	case typ == "":
		typ = TypeGeneric
	case strings.HasPrefix(typ, "dev.switchyard.") && typ != TypeGeneric:
		return Result{}, fmt.Errorf("%w: %s %q: the dev.switchyard. types are derived by the router, not sent", ErrMalformed, genericTypeHeader, typ)
	}
	id := req.Header.Get("X-Delivery-Id")
	if id == "" {
		id = req.Header.Get("X-Request-Id")
	}
	ev := newEvent("generic-hmac", id, "urn:switchyard:generic-hmac", typ, payload)
	if s := req.Header.Get("X-Event-Subject"); s != "" {
		ev.SetSubject(s)
	}
	var fields map[string]any
	if json.Unmarshal(payload, &fields) == nil {
		for _, name := range []string{"repository", "ref", "branch", "tag", "revision", "actor"} {
			if v, ok := fields[name].(string); ok {
				setExt(&ev, name, v)
			}
		}
	}
	if err := ev.Validate(); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := setData(&ev, payload); err != nil {
		return Result{}, err
	}
	return Result{Events: []event.Event{ev}}, nil
}

// Sign signs the body as a generic sender must.
func (genericProvider) Sign(req *Request, eventName, delivery string, secret []byte) {
	req.Header.Set("Content-Type", "application/json")
	if eventName != "" {
		req.Header.Set(genericTypeHeader, eventName)
	}
	req.Header.Set("X-Delivery-Id", delivery)
	req.Header.Set(genericSignatureHeader, "sha256="+hexHMAC(secret, req.Body))
}
