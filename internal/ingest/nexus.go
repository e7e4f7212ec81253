package ingest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Sonatype Nexus Repository webhooks ("Webhook: Repository" capability,
// https://help.sonatype.com/en/example-headers-and-payloads.html): with a
// secret key configured, X-Nexus-Webhook-Signature is the hex HMAC-SHA1 of
// the JSON body "hashed without whitespace". SHA-1 is the only scheme Nexus
// offers; as an HMAC it is still sound, and the key never leaves the two
// ends. X-Nexus-Webhook-Id names the event (rm:repository:component),
// X-Nexus-Webhook-Delivery identifies the delivery.
//
// A docker component created (or deleted) becomes image.push (image.delete)
// with repository "<repositoryName>/<component name>" and tag = version:
// the payload does not say on which host the repository's docker connector
// listens. Other components keep com.sonatype.nexus.component.<action>.

const (
	nexusSignatureHeader = "X-Nexus-Webhook-Signature"
	nexusEventHeader     = "X-Nexus-Webhook-Id"
	nexusDeliveryHeader  = "X-Nexus-Webhook-Delivery"
)

func init() { Register(nexusProvider{}) }

type nexusProvider struct{ bodySignature }

var (
	_ Provider   = nexusProvider{}
	_ Signer     = nexusProvider{}
	_ BodySigned = nexusProvider{}
)

func (nexusProvider) Kind() string { return "nexus" }

// Verify checks the HMAC-SHA1 of the body as received and, since Nexus
// documents hashing the JSON without whitespace, of its compact form.
func (nexusProvider) Verify(req *Request, src *routing.Source) error {
	secrets := src.AcceptedSecrets()
	if len(secrets) == 0 {
		return fmt.Errorf("%w: source has no secret configured", ErrUnauthorized)
	}
	sig := strings.TrimSpace(req.Header.Get(nexusSignatureHeader))
	if sig == "" {
		return fmt.Errorf("%w: missing %s header", ErrUnauthorized, nexusSignatureHeader)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrUnauthorized, nexusSignatureHeader)
	}
	var compact bytes.Buffer
	compacted := json.Compact(&compact, req.Body) == nil
	ok := anySecret(req, secrets, func(secret []byte) bool {
		ok := hmac.Equal(got, hmacSHA1(secret, req.Body))
		if compacted {
			ok = hmac.Equal(got, hmacSHA1(secret, compact.Bytes())) || ok
		}
		return ok
	})
	if !ok {
		return fmt.Errorf("%w: %s does not match the body", ErrUnauthorized, nexusSignatureHeader)
	}
	return nil
}

func hmacSHA1(key, msg []byte) []byte {
	mac := hmac.New(sha1.New, key)
	mac.Write(msg)
	return mac.Sum(nil)
}

type nexusPayload struct {
	Timestamp      string `json:"timestamp"`
	Initiator      string `json:"initiator"`
	RepositoryName string `json:"repositoryName"`
	Action         string `json:"action"`
	Component      *struct {
		Format  string `json:"format"`
		Name    string `json:"name"`
		Group   string `json:"group"`
		Version string `json:"version"`
	} `json:"component"`
}

func (nexusProvider) Normalize(req *Request) (Result, error) {
	payload, err := requireJSON(req, "Nexus", false)
	if err != nil {
		return Result{}, err
	}
	var p nexusPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return Result{}, fmt.Errorf("%w: Nexus payload: %v", ErrMalformed, err)
	}
	name := req.Header.Get(nexusEventHeader)
	if name == "" {
		return Result{}, fmt.Errorf("%w: missing %s header", ErrMalformed, nexusEventHeader)
	}
	id := req.Header.Get(nexusDeliveryHeader)
	actor, _, _ := strings.Cut(p.Initiator, "/") // "admin/127.0.0.1"
	var ev event.Event
	c := p.Component
	switch {
	case c != nil && c.Format == "docker" && (p.Action == "CREATED" || p.Action == "DELETED"):
		typ := TypeImagePush
		if p.Action == "DELETED" {
			typ = TypeImageDelete
		}
		ev = newImageEvent("nexus", id, typ, "", p.RepositoryName+"/"+c.Name, c.Version, "", payload)
	default:
		ev = newEvent("nexus", id, "urn:nexus:"+p.RepositoryName, "com.sonatype.nexus."+strings.ReplaceAll(strings.TrimPrefix(name, "rm:"), ":", ".")+"."+strings.ToLower(p.Action), payload)
		setExt(&ev, "repository", p.RepositoryName)
	}
	setExt(&ev, "action", strings.ToLower(p.Action))
	setExt(&ev, "actor", actor)
	setTime(&ev, p.Timestamp, "2006-01-02T15:04:05.000-0700")
	if err := setData(&ev, payload); err != nil {
		return Result{}, err
	}
	return Result{Events: []event.Event{ev}}, nil
}

// Sign sets the headers Nexus sends.
func (nexusProvider) Sign(req *Request, eventName, delivery string, secret []byte) {
	if eventName == "" {
		eventName = "rm:repository:component"
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set(nexusEventHeader, eventName)
	req.Header.Set(nexusDeliveryHeader, delivery)
	req.Header.Set(nexusSignatureHeader, hex.EncodeToString(hmacSHA1(secret, req.Body)))
}
