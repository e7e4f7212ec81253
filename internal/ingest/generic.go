package ingest

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Generic HMAC sources, for tools that can only sign a JSON body. Two
// signatures are accepted:
//
//   - Standard Webhooks (https://www.standardwebhooks.com/, spec/standard-webhooks.md):
//     webhook-id, webhook-timestamp (Unix seconds, within 5 minutes of now)
//     and "webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>";
//     the event id is webhook-id, which the signature covers;
//   - the body alone: "X-Signature: sha256=<hex HMAC-SHA256 of the raw body>";
//     the event id is then a hash of the body.
//
// Everything else that names the event comes from the signed body: its
// type is the top-level string "type" (default dev.switchyard.generic; the
// reserved dev.switchyard. prefix is refused for any other type, because
// rules trust those types to come from a provider that derived them), its
// subject the top-level string "subject", and top-level string fields
// repository, ref, branch, tag, revision and actor become the extensions of
// those names. The unsigned headers that used to name them (X-Event-Type,
// X-Event-Subject, X-Delivery-Id) are refused rather than ignored, so a
// sender that still sends them learns why its events changed.

const (
	genericSignatureHeader = "X-Signature"
	// The Standard Webhooks headers.
	webhookIDHeader        = "Webhook-Id"
	webhookTimestampHeader = "Webhook-Timestamp"
	webhookSignatureHeader = "Webhook-Signature"
	// webhookTolerance is how far webhook-timestamp may be from now, either
	// way (the Standard Webhooks reference libraries' 5 minutes): an older
	// captured request is refused, a newer one is deduplicated by its id.
	webhookTolerance = 5 * time.Minute
	// webhookSecretPrefix marks a Standard Webhooks secret: the key is the
	// base64 after it.
	webhookSecretPrefix = "whsec_"
	// TypeGeneric is the type of a generic event that names none.
	TypeGeneric = "dev.switchyard.generic"
)

// genericUnsignedHeaders are the headers that once named the event; no
// signature covers them.
var genericUnsignedHeaders = []string{"X-Event-Type", "X-Event-Subject", "X-Delivery-Id"}

func init() { Register(genericProvider{}) }

// genericProvider is not BodySigned: with the body-only signature the id is
// already the body's hash, and with Standard Webhooks the id is signed, so
// two deliveries with equal bodies and their own ids are two events.
type genericProvider struct{}

var (
	_ Provider = genericProvider{}
	_ Signer   = genericProvider{}
)

func (genericProvider) Kind() string { return "generic-hmac" }

// Verify checks the Standard Webhooks signature when the request carries
// webhook-signature, else the body-only X-Signature.
func (genericProvider) Verify(req *Request, src *routing.Source) error {
	if req.Header.Get(webhookSignatureHeader) != "" {
		if err := verifyStandardWebhook(req, src, time.Now()); err != nil {
			return fmt.Errorf("verify standard webhooks signature: %w", err)
		}
		return nil
	}
	return verifyHMACHex(req, src, genericSignatureHeader, "sha256=")
}

// verifyStandardWebhook checks webhook-signature, a space-separated list
// of "v1,<base64>" (several during a secret rotation; other versions are
// skipped), against the HMAC of "<webhook-id>.<webhook-timestamp>.<body>".
func verifyStandardWebhook(req *Request, src *routing.Source, now time.Time) error {
	secrets := src.AcceptedSecrets()
	if len(secrets) == 0 {
		return fmt.Errorf("%w: source has no secret configured", ErrUnauthorized)
	}
	id := req.Header.Get(webhookIDHeader)
	ts := req.Header.Get(webhookTimestampHeader)
	if id == "" || ts == "" {
		return fmt.Errorf("%w: %s needs %s and %s", ErrUnauthorized, webhookSignatureHeader, webhookIDHeader, webhookTimestampHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not Unix seconds", ErrUnauthorized, webhookTimestampHeader)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > webhookTolerance || d < -webhookTolerance {
		return fmt.Errorf("%w: %s is more than %v from now (a replay, or a clock to set right)", ErrUnauthorized, webhookTimestampHeader, webhookTolerance)
	}
	var sigs [][]byte
	for _, sig := range strings.Fields(req.Header.Get(webhookSignatureHeader)) {
		version, value, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(value); err == nil {
			sigs = append(sigs, got)
		}
	}
	// Every listed secret against every v1 signature: either side may be
	// mid-rotation.
	if anySecret(req, secrets, func(secret []byte) bool {
		want := standardWebhookMAC(secret, id, ts, req.Body)
		return slices.ContainsFunc(sigs, func(got []byte) bool { return hmac.Equal(got, want) })
	}) {
		return nil
	}
	return fmt.Errorf("%w: no v1 signature in %s matches", ErrUnauthorized, webhookSignatureHeader)
}

// standardWebhookMAC is the Standard Webhooks HMAC-SHA256 of
// "<id>.<timestamp>.<body>". A "whsec_" secret is keyed with the base64
// bytes after the prefix, as the reference libraries do; any other secret
// with its own bytes.
func standardWebhookMAC(secret []byte, id, ts string, body []byte) []byte {
	key := secret
	if rest, ok := strings.CutPrefix(string(secret), webhookSecretPrefix); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil {
			key = k
		}
	}
	msg := make([]byte, 0, len(id)+len(ts)+2+len(body))
	msg = append(append(append(append(append(msg, id...), '.'), ts...), '.'), body...)
	return hmacSHA256(key, msg)
}

// genericBody is the part of the body that names the event.
type genericBody struct {
	Type    json.RawMessage `json:"type"`
	Subject json.RawMessage `json:"subject"`
}

// jsonString is raw's string value, or "" when it is absent or not a string.
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func (genericProvider) Normalize(req *Request) (Result, error) {
	for _, name := range genericUnsignedHeaders {
		if req.Header.Get(name) != "" {
			return Result{}, fmt.Errorf("%w: %s is not covered by the signature, so it is not read: put the type and subject in the body (\"type\", \"subject\"), and send the id as Standard Webhooks' webhook-id, which is signed", ErrMalformed, name)
		}
	}
	payload, err := requireJSON(req, "a generic sender", false)
	if err != nil {
		return Result{}, err
	}
	var named genericBody
	var fields map[string]any
	if json.Unmarshal(payload, &fields) == nil {
		_ = json.Unmarshal(payload, &named) // an object: cannot fail
	}
	typ := strings.TrimSpace(jsonString(named.Type))
	switch {
	case typ == "":
		typ = TypeGeneric
	case strings.HasPrefix(typ, "dev.switchyard.") && typ != TypeGeneric:
		return Result{}, fmt.Errorf("%w: type %q: the dev.switchyard. types are derived by the router, not sent", ErrMalformed, typ)
	}
	id := "" // newEvent's default: the body's hash
	if req.Header.Get(webhookSignatureHeader) != "" {
		id = req.Header.Get(webhookIDHeader) // verified with the body
	}
	ev := newEvent("generic-hmac", id, "urn:switchyard:generic-hmac", typ, payload)
	if s := jsonString(named.Subject); s != "" {
		ev.SetSubject(s)
	}
	for _, name := range []string{"repository", "ref", "branch", "tag", "revision", "actor"} {
		if v, ok := fields[name].(string); ok {
			setExt(&ev, name, v)
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

// Sign signs as a Standard Webhooks sender: the delivery becomes
// webhook-id, covered by the signature with the time and the body. The
// event name is not sent: the type is the body's "type".
func (genericProvider) Sign(req *Request, _, delivery string, secret []byte) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhookIDHeader, delivery)
	req.Header.Set(webhookTimestampHeader, ts)
	req.Header.Set(webhookSignatureHeader, "v1,"+base64.StdEncoding.EncodeToString(standardWebhookMAC(secret, delivery, ts, req.Body)))
}
