package ingest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

const (
	garAudience = "https://router.example.com/v1/hooks/gar"
	garEmail    = "pubsub-push@my-project.iam.gserviceaccount.com"
)

// oidcIssuer is a test identity provider: an RSA key generated in the test,
// its JWKS (and discovery document) served over HTTP, and tokens signed
// the way Google signs Pub/Sub push tokens.
type oidcIssuer struct {
	key     *rsa.PrivateKey
	kid     string
	url     string // issuer URL, serving discovery
	jwksURL string
}

func newOIDCIssuer(t testing.TB) *oidcIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &oidcIssuer{key: key, kid: "test-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": iss.kid,
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"issuer": iss.url, "jwks_uri": iss.jwksURL,
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.url, iss.jwksURL = srv.URL, srv.URL+"/jwks"
	return iss
}

// claims are a Google push token's claims, valid for this issuer.
func (iss *oidcIssuer) claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss.url, "aud": garAudience, "azp": "113774264463038321964",
		"email": garEmail, "email_verified": true, "sub": "113774264463038321964",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// sign makes a compact JWS. alg RS256 signs with the key; HS256 "signs"
// with the PEM of the public key (the algorithm confusion attack); none
// leaves the signature empty.
func (iss *oidcIssuer) sign(t testing.TB, alg, kid string, claims map[string]any) string {
	t.Helper()
	hdr := map[string]string{"alg": alg, "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	hj, _ := json.Marshal(hdr)
	cj, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hj) + "." + base64.RawURLEncoding.EncodeToString(cj)
	var sig []byte
	switch alg {
	case "RS256":
		sum := sha256.Sum256([]byte(input))
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, iss.key, crypto.SHA256, sum[:]); err != nil {
			t.Fatal(err)
		}
	case "HS256":
		der, err := x509.MarshalPKIXPublicKey(&iss.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (iss *oidcIssuer) source() *routing.Source {
	return &routing.Source{Name: "gar", Kind: "gar", OIDC: &routing.OIDC{
		Issuer: iss.url, Audience: garAudience, JWKSURL: iss.jwksURL, Email: garEmail}}
}

func TestGARVerify(t *testing.T) {
	iss := newOIDCIssuer(t)
	h0, body := busSample(t, "gar", "insert")
	with := func(edit func(map[string]any)) map[string]any {
		c := iss.claims()
		edit(c)
		return c
	}
	valid := iss.sign(t, "RS256", iss.kid, iss.claims())
	tests := []struct {
		name    string
		auth    string
		src     func(*routing.Source)
		wantErr bool
	}{
		{name: "valid", auth: "Bearer " + valid},
		{name: "valid, lowercase scheme", auth: "bearer " + valid},
		{name: "valid by discovery (no jwksURL)", auth: "Bearer " + valid, src: func(s *routing.Source) { s.OIDC.JWKSURL = "" }},
		{name: "valid, any email when none configured", auth: "Bearer " + iss.sign(t, "RS256", iss.kid, with(func(c map[string]any) { c["email"] = "other@x.iam.gserviceaccount.com" })),
			src: func(s *routing.Source) { s.OIDC.Email = "" }},
		{name: "expired", auth: "Bearer " + iss.sign(t, "RS256", iss.kid, with(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), wantErr: true},
		{name: "wrong audience", auth: "Bearer " + iss.sign(t, "RS256", iss.kid, with(func(c map[string]any) { c["aud"] = "https://elsewhere.example.com" })), wantErr: true},
		{name: "wrong issuer", auth: "Bearer " + iss.sign(t, "RS256", iss.kid, with(func(c map[string]any) { c["iss"] = "https://accounts.example.com" })), wantErr: true},
		{name: "wrong email", auth: "Bearer " + iss.sign(t, "RS256", iss.kid, with(func(c map[string]any) { c["email"] = "attacker@evil.iam.gserviceaccount.com" })), wantErr: true},
		{name: "email not verified", auth: "Bearer " + iss.sign(t, "RS256", iss.kid, with(func(c map[string]any) { c["email_verified"] = false })), wantErr: true},
		{name: "alg none", auth: "Bearer " + iss.sign(t, "none", iss.kid, iss.claims()), wantErr: true},
		{name: "HS256 signed with the public key", auth: "Bearer " + iss.sign(t, "HS256", iss.kid, iss.claims()), wantErr: true},
		{name: "unknown kid", auth: "Bearer " + iss.sign(t, "RS256", "rotated-away", iss.claims()), wantErr: true},
		{name: "tampered claims", auth: "Bearer " + tamper(valid), wantErr: true},
		{name: "signed by another key", auth: "Bearer " + newOIDCIssuer(t).sign(t, "RS256", iss.kid, iss.claims()), wantErr: true},
		{name: "missing bearer", auth: "", wantErr: true},
		{name: "basic scheme", auth: "Basic " + valid, wantErr: true},
		{name: "not a jwt", auth: "Bearer not-a-token", wantErr: true},
		{name: "no oidc configured", auth: "Bearer " + valid, src: func(s *routing.Source) { s.OIDC = nil }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h0.Clone()
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			src := iss.source()
			if tt.src != nil {
				tt.src(src)
			}
			err := garProvider{}.Verify(&Request{Header: h, Body: body}, src)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error %v does not wrap ErrUnauthorized", err)
			}
		})
	}
}

// tamper swaps the token's claims for others, keeping the signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"x","aud":"y","exp":9999999999}`))
	return strings.Join(parts, ".")
}

func TestGARCheckSource(t *testing.T) {
	ok := &routing.OIDC{Issuer: "https://accounts.google.com", Audience: garAudience}
	tests := []struct {
		name    string
		src     routing.Source
		wantErr bool
	}{
		{name: "oidc", src: routing.Source{Kind: "gar", OIDC: ok}},
		{name: "no oidc", src: routing.Source{Kind: "gar"}, wantErr: true},
		{name: "no audience", src: routing.Source{Kind: "gar", OIDC: &routing.OIDC{Issuer: "https://accounts.google.com"}}, wantErr: true},
		{name: "a secret is refused", src: routing.Source{Kind: "gar", OIDC: ok}, wantErr: true},
	}
	tests[len(tests)-1].src.SecretRef.Env = "GAR_SECRET"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckSource(&tt.src); (err != nil) != tt.wantErr {
				t.Fatalf("CheckSource() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestGARNormalizeGolden(t *testing.T) {
	const digest = "sha256:6ec128e26cd5b0b1e2bcb2b6d8f8f5e8a3c1d0e9f7b6a5c4d3e2f1a0b9c8d7e6"
	const repo = "us-east1-docker.pkg.dev/my-project/my-repo/hello-world"
	tests := []struct {
		name, wantID, wantType string
		wantExt                map[string]string
	}{
		{name: "insert", wantID: "2070443601311540", wantType: TypeImagePush,
			wantExt: map[string]string{"repository": repo, "tag": "1.1", "digest": digest, "action": "INSERT", "provider": "gar"}},
		{name: "insert-digest-only", wantID: "2070443601311541", wantType: TypeImagePush,
			wantExt: map[string]string{"repository": repo, "tag": "", "digest": digest}},
		{name: "delete", wantID: "2070443601311542", wantType: TypeImageDelete,
			wantExt: map[string]string{"repository": repo, "tag": "1.1", "digest": "", "action": "DELETE"}},
		{name: "gcr-insert", wantID: "2070443601311543", wantType: TypeImagePush,
			wantExt: map[string]string{"repository": "gcr.io/my-project/hello-world", "tag": "latest", "digest": digest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := busSample(t, "gar", tt.name)
			res, err := garProvider{}.Normalize(&Request{Header: h, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 1 {
				t.Fatalf("got %d events", len(res.Events))
			}
			ev := res.Events[0]
			if err := ev.Validate(); err != nil {
				t.Fatalf("not a valid CloudEvent: %v", err)
			}
			if ev.ID() != tt.wantID || ev.Type() != tt.wantType || ev.Source() != "https://"+tt.wantExt["repository"] && tt.wantExt["repository"] != "" {
				t.Errorf("id %q type %q source %q", ev.ID(), ev.Type(), ev.Source())
			}
			checkExt(t, ev, tt.wantExt)
			if string(ev.Data()) != string(body) {
				t.Error("data must be the original push body, unchanged")
			}
			checkGolden(t, "gar-"+tt.name, res.Events)
		})
	}
}

func garPush(data string) []byte {
	return []byte(`{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(data)) + `","messageId":"m-1"},"subscription":"projects/p/subscriptions/s"}`)
}

func TestGARNormalizeErrors(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		body    []byte
		wantErr error
		want    string // type when no error
	}{
		{name: "unknown action keeps a provider type", ct: "application/json",
			body: garPush(`{"action":"UPDATE","digest":"gcr.io/p/i@sha256:00"}`), want: "com.google.artifactregistry.update"},
		{name: "registry with a port", ct: "application/json",
			body: garPush(`{"action":"INSERT","tag":"registry.local:5000/p/i:v1"}`), want: TypeImagePush},
		{name: "malformed json", ct: "application/json", body: []byte(`{"message":`), wantErr: ErrMalformed},
		{name: "no message", ct: "application/json", body: []byte(`{"subscription":"s"}`), wantErr: ErrMalformed},
		{name: "data not base64", ct: "application/json", body: []byte(`{"message":{"data":"***"}}`), wantErr: ErrMalformed},
		{name: "data not json", ct: "application/json", body: garPush(`hello`), wantErr: ErrMalformed},
		{name: "no reference", ct: "application/json", body: garPush(`{"action":"INSERT"}`), wantErr: ErrMalformed},
		{name: "reference without host", ct: "application/json", body: garPush(`{"action":"INSERT","tag":"img:v1"}`), wantErr: ErrMalformed},
		{name: "text/plain", ct: "text/plain", body: garPush(`{}`), wantErr: ErrUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := garProvider{}.Normalize(&Request{Header: acrHeader(tt.ct), Body: tt.body})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 1 || res.Events[0].Type() != tt.want {
				t.Fatalf("events %+v", res.Events)
			}
		})
	}
	res, err := garProvider{}.Normalize(&Request{Header: acrHeader("application/json"), Body: garPush(`{"action":"INSERT","tag":"registry.local:5000/p/i:v1"}`)})
	if err != nil || res.Events[0].Extensions()["repository"] != "registry.local:5000/p/i" || res.Events[0].Extensions()["tag"] != "v1" {
		t.Fatalf("port: %v %v", err, res.Events)
	}
}

func FuzzGAR(f *testing.F) {
	for _, s := range []string{"insert", "insert-digest-only", "delete", "gcr-insert"} {
		_, body := busSample(f, "gar", s)
		f.Add(body)
	}
	f.Add(garPush(`{"action":"INSERT","tag":"a/b:c@d"}`))
	f.Add(garPush(`{"action":"DELETE","digest":"@"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := acrHeader("application/json")
		p := garProvider{}
		req := &Request{Header: h, Body: body}
		// Without a token nothing verifies, whatever the body.
		if err := p.Verify(req, &routing.Source{OIDC: &routing.OIDC{Issuer: "https://accounts.google.com", Audience: "a"}}); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Verify without token = %v", err)
		}
		res, err := p.Normalize(req)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedMediaType) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, ev := range res.Events {
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid CloudEvent: %v", err)
			}
			checkDataIsJSON(t, &ev)
			if string(ev.Data()) != string(body) {
				t.Fatal("data changed")
			}
		}
	})
}
