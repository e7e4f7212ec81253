package ingest

import (
	"context"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingIssuer is a test identity provider (it stands for a remote one)
// that counts the key set and discovery fetches it answers.
type countingIssuer struct {
	*oidcIssuer
	jwksHits, discoveryHits atomic.Int64
	served                  atomic.Pointer[string] // the key id the key set serves
}

func newCountingIssuer(t *testing.T) *countingIssuer {
	t.Helper()
	ci := &countingIssuer{oidcIssuer: newOIDCIssuer(t)} // for its key and sign(); its server is not used
	kid := ci.kid
	ci.served.Store(&kid)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		ci.jwksHits.Add(1)
		b64 := base64.RawURLEncoding.EncodeToString
		writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": *ci.served.Load(),
			"n": b64(ci.key.N.Bytes()), "e": b64(big.NewInt(int64(ci.key.E)).Bytes()),
		}}})
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		ci.discoveryHits.Add(1)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ci.url, ci.jwksURL = srv.URL, srv.URL+"/jwks"
	return ci
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// A token with a made-up key id makes go-oidc fetch the issuer's keys
// again; without a bound, every such request is a fetch. With it, a small
// burst, then one fetch per jwksRefreshEvery whatever the number of tokens.
func TestOIDCUnknownKeyIDFetchesAreBounded(t *testing.T) {
	iss := newCountingIssuer(t)
	cfg := iss.source().OIDC
	if _, err := verifyOIDCBearer(context.Background(), bearer(iss.sign(t, "RS256", iss.kid, iss.claims())), cfg); err != nil {
		t.Fatal(err)
	}
	oidcKeySets.Lock()
	fetcher := oidcKeySets.m[oidcKeySetKey{issuer: cfg.Issuer, jwksURL: cfg.JWKSURL}].fetcher
	oidcKeySets.Unlock()
	clock := time.Now()
	fetcher.now = func() time.Time { return clock } // frozen: refills only when the test says

	for i := range 20 {
		_, err := verifyOIDCBearer(context.Background(), bearer(iss.sign(t, "RS256", "random-"+strconv.Itoa(i), iss.claims())), cfg)
		if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("token %d with an unknown key id: %v, want a plain 401", i, err)
		}
	}
	if got := iss.jwksHits.Load(); got != jwksRefreshBurst {
		t.Fatalf("%d key set fetches for 1 valid and 20 unknown key ids, want the burst of %d", got, jwksRefreshBurst)
	}
	if _, err := verifyOIDCBearer(context.Background(), bearer(iss.sign(t, "RS256", iss.kid, iss.claims())), cfg); err != nil {
		t.Fatalf("a valid token while the budget is spent: %v", err)
	}
	if got := iss.jwksHits.Load(); got != jwksRefreshBurst {
		t.Fatalf("a known key id fetched the key set (%d fetches)", got)
	}

	// The issuer rotates; once the window has passed, the new key is fetched
	// once and then served from the cache.
	rotated := "rotated-2"
	iss.kid = rotated
	iss.served.Store(&rotated)
	clock = clock.Add(jwksRefreshEvery)
	for range 3 {
		if _, err := verifyOIDCBearer(context.Background(), bearer(iss.sign(t, "RS256", iss.kid, iss.claims())), cfg); err != nil {
			t.Fatalf("token signed with the rotated key: %v", err)
		}
	}
	if got := iss.jwksHits.Load(); got != jwksRefreshBurst+1 {
		t.Fatalf("%d fetches after the rotation, want %d", got, jwksRefreshBurst+1)
	}
}

// A failed discovery is not retried on every request either.
func TestOIDCFailedDiscoveryIsNotRetriedAtOnce(t *testing.T) {
	iss := newCountingIssuer(t)
	cfg := iss.source().OIDC
	cfg.JWKSURL = "" // discovery, which answers 503
	for range 5 {
		_, err := verifyOIDCBearer(context.Background(), bearer(iss.sign(t, "RS256", iss.kid, iss.claims())), cfg)
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v", err)
		}
	}
	if got := iss.discoveryHits.Load(); got != 1 {
		t.Fatalf("%d discovery fetches for 5 requests, want 1", got)
	}
}

// When the issuer cannot be reached, the caller learns that and nothing
// more: not the issuer's address, the resolver, or its answer. The detail
// is for the logs (LogDetail).
func TestOIDCUnreachableIssuerErrorText(t *testing.T) {
	const want = "unauthorized: the token could not be verified (identity provider unreachable)"
	iss := newOIDCIssuer(t)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there now
	for _, tc := range []struct{ name, issuer, jwks string }{
		{"discovery", downURL, ""},
		{"key set", downURL + "/other", downURL + "/jwks"},
		{"key set answers 500", iss.url + "/x", iss.url + "/no-such-path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := iss.claims()
			claims["iss"] = tc.issuer
			cfg := iss.source().OIDC
			cfg.Issuer, cfg.JWKSURL = tc.issuer, tc.jwks
			_, err := verifyOIDCBearer(context.Background(), bearer(iss.sign(t, "RS256", iss.kid, claims)), cfg)
			if err == nil || err.Error() != want {
				t.Fatalf("error %q, want %q", err, want)
			}
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatal("not an ErrUnauthorized")
			}
			var ve *verifyError
			if !errors.As(err, &ve) || ve.LogDetail() == "" || strings.Contains(want, ve.LogDetail()) {
				t.Fatalf("no detail for the logs: %#v", err)
			}
		})
	}
}
