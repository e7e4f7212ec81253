package ingest

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// providerKinds are the registered kinds less those the tests register.
func providerKinds() []string {
	return slices.DeleteFunc(Kinds(), func(k string) bool { return strings.HasPrefix(k, "test-") })
}

// earlyCase is how one kind presents a credential that does not depend on
// the body; nil for the kinds that sign the body.
type earlyCase func(t *testing.T, req *Request, secret []byte, iss *oidcIssuer)

func headerCred(name, prefix string) earlyCase {
	return func(_ *testing.T, req *Request, secret []byte, _ *oidcIssuer) {
		req.Header.Set(name, prefix+string(secret))
	}
}

// earlyKinds classifies every registered kind: its credential is checked
// before the body is read (EarlyVerifier), or it signs the body.
var earlyKinds = map[string]earlyCase{
	"gitlab":       headerCred("X-Gitlab-Token", ""),
	"dockerhub":    func(_ *testing.T, req *Request, secret []byte, _ *oidcIssuer) { req.PathToken = string(secret) },
	"quay":         func(_ *testing.T, req *Request, secret []byte, _ *oidcIssuer) { req.PathToken = string(secret) },
	"harbor":       headerCred("Authorization", ""),
	"distribution": headerCred("Authorization", "Bearer "),
	"acr":          headerCred("Authorization", "Bearer "),
	"artifactory":  headerCred("X-JFrog-Event-Auth", ""),
	"cloudevents":  headerCred("Authorization", "Bearer "),
	"gar": func(t *testing.T, req *Request, _ []byte, iss *oidcIssuer) {
		req.Header.Set("Authorization", "Bearer "+iss.sign(t, "RS256", iss.kid, iss.claims()))
	},
	"github": nil, "gitea": nil, "forgejo": nil, "bitbucket": nil, "bitbucket-server": nil, "nexus": nil, "generic-hmac": nil,
}

// TestEarlyVerifier: every kind whose credential is a header or path token
// (or an OIDC bearer token) is checked with no body at all, so an
// unauthenticated sender cannot make the router read up to the body cap
// first; the kinds that sign the body are not EarlyVerifiers.
func TestEarlyVerifier(t *testing.T) {
	if got := providerKinds(); len(got) != len(earlyKinds) {
		t.Fatalf("kinds %v: classify every kind in earlyKinds", got)
	}
	iss, other := newOIDCIssuer(t), newOIDCIssuer(t)
	secret := newSecret(t)
	for _, kind := range providerKinds() {
		present, known := earlyKinds[kind]
		if !known {
			t.Fatalf("kind %s is not classified in earlyKinds", kind)
		}
		t.Run(kind, func(t *testing.T) {
			ev, ok := lookupProvider(t, kind).(EarlyVerifier)
			if ok != (present != nil) {
				t.Fatalf("EarlyVerifier = %v, want %v", ok, present != nil)
			}
			if !ok {
				return
			}
			src := &routing.Source{Name: "s", Kind: kind, Secret: secret}
			if kind == "gar" {
				src = iss.source()
			}
			with := &Request{Header: http.Header{}}
			present(t, with, secret, iss)
			if err := ev.VerifyBeforeBody(with, src); err != nil {
				t.Fatalf("valid credential, nil body: %v", err)
			}
			for name, req := range map[string]*Request{
				"no credential":    {Header: http.Header{}},
				"wrong credential": func() *Request { r := &Request{Header: http.Header{}}; present(t, r, []byte("guess"), other); return r }(),
			} {
				if err := ev.VerifyBeforeBody(req, src); !errors.Is(err, ErrUnauthorized) {
					t.Errorf("%s: VerifyBeforeBody = %v, want ErrUnauthorized", name, err)
				}
			}
		})
	}
}

// The kinds whose mode decides leave the body's mode to Verify and refuse
// the rest at once.
func TestEarlyVerifierModes(t *testing.T) {
	secret := newSecret(t)
	af := &routing.Source{Name: "af", Kind: "artifactory", Secret: secret}
	for value, wantErr := range map[string]bool{
		hexHMAC([]byte("any key"), []byte("any body")): false, // may be the body's HMAC: Verify decides
		"not-the-token": true,
		"":              true,
	} {
		r := &Request{Header: http.Header{}}
		if value != "" {
			r.Header.Set("X-JFrog-Event-Auth", value)
		}
		if err := (artifactoryProvider{}).VerifyBeforeBody(r, af); (err != nil) != wantErr || err != nil && !errors.Is(err, ErrUnauthorized) {
			t.Errorf("artifactory %q: %v, want error=%v", value, err, wantErr)
		}
	}
	ce := &routing.Source{Name: "bus", Kind: "cloudevents", Secret: secret}
	structured := &Request{Header: http.Header{"Content-Type": {"application/cloudevents+json"}, "X-Signature": {"sha256=00"}}}
	if err := (cloudEventsProvider{}).VerifyBeforeBody(structured, ce); err != nil {
		t.Errorf("signed structured mode: %v, want nil (the signature needs the body)", err)
	}
	binary := ceBinary("com.example.x")
	binary.Set("X-Signature", "sha256=00")
	if err := (cloudEventsProvider{}).VerifyBeforeBody(&Request{Header: binary}, ce); !errors.Is(err, ErrUnsupportedMediaType) {
		t.Errorf("signed binary mode: %v, want ErrUnsupportedMediaType", err)
	}
}

// bodySignedKinds are the kinds whose signature covers the body alone, and
// whose delivery id is outside it.
var bodySignedKinds = []string{"artifactory", "bitbucket", "bitbucket-server", "forgejo", "gitea", "github", "nexus"}

// TestBodySigned: a captured signed body replayed with a new delivery id
// passes Verify and makes a new event id, so the server must also
// deduplicate on the body; the kinds where that holds say so.
func TestBodySigned(t *testing.T) {
	for _, kind := range providerKinds() {
		_, ok := lookupProvider(t, kind).(BodySigned)
		if want := slices.Contains(bodySignedKinds, kind); ok != want {
			t.Errorf("%s: BodySigned = %v, want %v", kind, ok, want)
		}
	}
	secret := newSecret(t)
	src := &routing.Source{Name: "gh", Kind: "github", Secret: secret}
	req := sampleRequest(t, "github", "push")
	githubProvider{}.Sign(req, "push", "d-1", secret)
	first, err := githubProvider{}.Normalize(req)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Delivery", "d-replayed")
	if err := (githubProvider{}).Verify(req, src); err != nil {
		t.Fatalf("a new delivery id on a captured body: %v (then github need not be BodySigned)", err)
	}
	again, err := githubProvider{}.Normalize(req)
	if err != nil || again.Events[0].ID() == first.Events[0].ID() {
		t.Fatalf("the replay's event id %q equals the first's (then github need not be BodySigned): %v", again.Events[0].ID(), err)
	}
}
