package ingest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// swHeader is a Standard Webhooks request's headers, signed with key (the
// source's secret bytes, or a whsec_ secret decoded by the test).
func swHeader(key []byte, id string, at time.Time, body []byte) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(hmacSHA256(key, []byte(id+"."+ts+"."+string(body)))))
	return h
}

// The published Standard Webhooks test vector: a sender's library and the
// router agree on the signed string, the base64 and the whsec_ key.
func TestStandardWebhooksVector(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	req := &Request{Header: h, Body: []byte(`{"test": 2432232314}`)}
	src := &routing.Source{Kind: "generic-hmac", Secret: []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}
	if err := verifyStandardWebhook(req, src, time.Unix(1614265330, 0)); err != nil {
		t.Fatal(err)
	}
	if err := verifyStandardWebhook(req, src, time.Unix(1614265330, 0).Add(6*time.Minute)); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("6 minutes later: %v, want ErrUnauthorized (replay window)", err)
	}
}

func TestGenericHMACStandardWebhooks(t *testing.T) {
	secret := newSecret(t)
	src := &routing.Source{Name: "ci", Kind: "generic-hmac", Secret: secret}
	body := readSample(t, "generic-hmac", "deploy.json")
	now := time.Now()
	tests := []struct {
		name   string
		header func() http.Header
		body   []byte
		ok     bool
	}{
		{name: "signed now", header: func() http.Header { return swHeader(secret, "msg-1", now, body) }, ok: true},
		{name: "4 minutes old", header: func() http.Header { return swHeader(secret, "msg-1", now.Add(-4*time.Minute), body) }, ok: true},
		{name: "6 minutes old (replay)", header: func() http.Header { return swHeader(secret, "msg-1", now.Add(-6*time.Minute), body) }},
		{name: "6 minutes ahead", header: func() http.Header { return swHeader(secret, "msg-1", now.Add(6*time.Minute), body) }},
		{name: "id changed after signing", header: func() http.Header {
			h := swHeader(secret, "msg-1", now, body)
			h.Set("webhook-id", "msg-2")
			return h
		}},
		{name: "timestamp changed after signing", header: func() http.Header {
			h := swHeader(secret, "msg-1", now.Add(-time.Minute), body)
			h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
			return h
		}},
		{name: "tampered body", header: func() http.Header { return swHeader(secret, "msg-1", now, body) }, body: append([]byte(" "), body...)},
		{name: "no id", header: func() http.Header {
			h := swHeader(secret, "", now, body)
			h.Del("webhook-id")
			return h
		}},
		{name: "wrong secret", header: func() http.Header { return swHeader([]byte("guess"), "msg-1", now, body) }},
		{name: "v1a only", header: func() http.Header {
			h := swHeader(secret, "msg-1", now, body)
			h.Set("webhook-signature", strings.Replace(h.Get("webhook-signature"), "v1,", "v1a,", 1))
			return h
		}},
		{name: "one of several signatures (rotation)", header: func() http.Header {
			h := swHeader(secret, "msg-1", now, body)
			h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString([]byte("old-key-signature"))+" "+h.Get("webhook-signature"))
			return h
		}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body
			if tt.body != nil {
				b = tt.body
			}
			req := &Request{Header: tt.header(), Body: b}
			err := genericProvider{}.Verify(req, src)
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Verify = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			res, err := genericProvider{}.Normalize(req)
			if err != nil {
				t.Fatal(err)
			}
			ev := res.Events[0]
			if ev.ID() != "msg-1" || ev.Type() != "com.acme.deploy.finished" || ev.Subject() != "staging" {
				t.Fatalf("id %q type %q subject %q, want the signed webhook-id and the body's type and subject", ev.ID(), ev.Type(), ev.Subject())
			}
		})
	}
}

// The headers that used to name a generic event are covered by no
// signature: a captured body-signed request carrying them could be
// replayed as any type, id or subject. They are refused, naming the header.
func TestGenericHMACUnsignedHeadersRefused(t *testing.T) {
	secret := newSecret(t)
	src := &routing.Source{Name: "ci", Kind: "generic-hmac", Secret: secret}
	body := readSample(t, "generic-hmac", "deploy.json")
	for _, name := range []string{"X-Event-Type", "X-Delivery-Id", "X-Event-Subject"} {
		for _, scheme := range []string{"body-only", "standard-webhooks"} {
			t.Run(name+"/"+scheme, func(t *testing.T) {
				h := http.Header{"Content-Type": {"application/json"}, "X-Signature": {"sha256=" + hexHMAC(secret, body)}}
				if scheme == "standard-webhooks" {
					h = swHeader(secret, "msg-1", time.Now(), body)
				}
				h.Set(name, "com.example.replayed")
				req := &Request{Header: h, Body: body}
				if err := (genericProvider{}).Verify(req, src); err != nil {
					t.Fatal(err) // the signature is good: the header is the problem
				}
				_, err := genericProvider{}.Normalize(req)
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), name) {
					t.Fatalf("Normalize = %v, want ErrMalformed naming %s", err, name)
				}
			})
		}
	}
}

// A sender that signs the body alone and sends no naming header keeps
// working: its id is the body's hash (a resend of the same body is the same
// delivery), its type and subject the body's.
func TestGenericHMACBodyOnly(t *testing.T) {
	secret := newSecret(t)
	src := &routing.Source{Name: "ci", Kind: "generic-hmac", Secret: secret}
	body := readSample(t, "generic-hmac", "deploy.json")
	h := http.Header{"Content-Type": {"application/json"}, "X-Signature": {"sha256=" + hexHMAC(secret, body)}}
	h.Set("X-Request-Id", "added-by-a-proxy") // ignored, not refused
	req := &Request{Header: h, Body: body}
	if err := (genericProvider{}).Verify(req, src); err != nil {
		t.Fatal(err)
	}
	res, err := genericProvider{}.Normalize(req)
	if err != nil {
		t.Fatal(err)
	}
	if ev := res.Events[0]; ev.ID() != contentID(body) || ev.Type() != "com.acme.deploy.finished" || ev.Subject() != "staging" {
		t.Fatalf("id %q type %q subject %q", ev.ID(), ev.Type(), ev.Subject())
	}
	plain := []byte(`{"repository":"acme/web"}`)
	res, err = genericProvider{}.Normalize(&Request{Header: http.Header{"Content-Type": {"application/json"}}, Body: plain})
	if err != nil || res.Events[0].Type() != TypeGeneric || res.Events[0].Subject() != "" {
		t.Fatalf("a body that names nothing: %v %v", err, res.Events)
	}
}

func TestGenericHMACReservedType(t *testing.T) {
	for _, body := range []string{`{"type":"` + TypeGitPush + `"}`, `{"type":" dev.switchyard.image.push"}`} {
		req := &Request{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
		if _, err := lookupProvider(t, "generic-hmac").Normalize(req); !errors.Is(err, ErrMalformed) {
			t.Fatalf("a generic sender claiming %s: %v, want 400", body, err)
		}
	}
	ok := &Request{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"type":"` + TypeGeneric + `"}`)}
	if _, err := lookupProvider(t, "generic-hmac").Normalize(ok); err != nil {
		t.Fatal(err)
	}
}

// Sign (router send) makes a Standard Webhooks request that Verify takes
// and whose id is the delivery.
func TestGenericHMACSign(t *testing.T) {
	secret := []byte("whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 24)))
	src := &routing.Source{Name: "ci", Kind: "generic-hmac", Secret: secret}
	req := &Request{Header: http.Header{}, Body: readSample(t, "generic-hmac", "deploy.json")}
	genericProvider{}.Sign(req, "ignored", "d-42", secret)
	if err := (genericProvider{}).Verify(req, src); err != nil {
		t.Fatal(err)
	}
	res, err := genericProvider{}.Normalize(req)
	if err != nil || res.Events[0].ID() != "d-42" {
		t.Fatalf("%v %v", err, res.Events)
	}
	// The whsec_ key is the decoded bytes, as the reference libraries use.
	again := swHeader(bytes.Repeat([]byte{7}, 24), "d-43", time.Now(), req.Body)
	if err := (genericProvider{}).Verify(&Request{Header: again, Body: req.Body}, src); err != nil {
		t.Fatalf("signed with the decoded whsec_ key: %v", err)
	}
}
