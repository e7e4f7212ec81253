package ingest

// Tests added for mutants that lived in oidc.go (docs/testing.md,
// "Mutation testing"): the key set cache's bounds and the JWKS size cap.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// The cache keeps one key set per issuer: asking for another issuer's does
// not drop the first one's.
func TestOIDCKeySetCachedPerIssuer(t *testing.T) {
	a := &routing.OIDC{Issuer: "https://cache-a.example", Audience: "x", JWKSURL: "https://cache-a.example/jwks"}
	b := &routing.OIDC{Issuer: "https://cache-b.example", Audience: "x", JWKSURL: "https://cache-b.example/jwks"}
	first, err := oidcKeySet(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oidcKeySet(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	again, err := oidcKeySet(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if first != again {
		t.Error("the first issuer's key set was created again after another issuer's")
	}
}

// The cache never holds more than oidcMaxKeySets key sets.
func TestOIDCKeySetCacheIsBounded(t *testing.T) {
	for i := range oidcMaxKeySets + 2 {
		u := "https://bound-" + strconv.Itoa(i) + ".example"
		if _, err := oidcKeySet(context.Background(), &routing.OIDC{Issuer: u, Audience: "x", JWKSURL: u + "/jwks"}); err != nil {
			t.Fatal(err)
		}
		oidcKeySets.Lock()
		n := len(oidcKeySets.m)
		oidcKeySets.Unlock()
		if n > oidcMaxKeySets {
			t.Fatalf("%d key sets cached, the cap is %d", n, oidcMaxKeySets)
		}
	}
}

// failingDiscovery is an issuer host whose discovery always answers 503; it
// counts the requests.
func failingDiscovery(t *testing.T) (url string, hits *atomic.Int64) {
	t.Helper()
	hits = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, hits
}

// A failed discovery is remembered per issuer: another issuer failing does
// not make the first one's be retried at once.
func TestOIDCFailedDiscoveriesRememberedPerIssuer(t *testing.T) {
	url, hits := failingDiscovery(t)
	a := &routing.OIDC{Issuer: url + "/a", Audience: "x"}
	b := &routing.OIDC{Issuer: url + "/b", Audience: "x"}
	for _, cfg := range []*routing.OIDC{a, b, a, b} {
		if _, err := oidcKeySet(context.Background(), cfg); err == nil {
			t.Fatal("discovery answering 503: no error")
		}
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("%d discovery requests for two issuers asked twice each, want 2", got)
	}
}

// The memory of failed discoveries is bounded too.
func TestOIDCFailedDiscoveriesBounded(t *testing.T) {
	url, _ := failingDiscovery(t)
	for i := range oidcMaxKeySets + 2 {
		if _, err := oidcKeySet(context.Background(), &routing.OIDC{Issuer: url + "/f" + strconv.Itoa(i), Audience: "x"}); err == nil {
			t.Fatal("discovery answering 503: no error")
		}
		oidcKeySets.Lock()
		n := len(oidcKeySets.failed)
		oidcKeySets.Unlock()
		if n > oidcMaxKeySets {
			t.Fatalf("%d failed discoveries remembered, the cap is %d", n, oidcMaxKeySets)
		}
	}
}

// A key set of exactly jwksMaxBytes is read whole; one byte more is refused.
func TestJWKSSizeCap(t *testing.T) {
	doc := func(size int) string {
		return `{"keys":[]` + strings.Repeat(" ", size-len(`{"keys":[]}`)) + `}`
	}
	var body atomic.Pointer[string]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(*body.Load())) //nolint:errcheck // the client sees a short body
	}))
	t.Cleanup(srv.Close)
	for name, tc := range map[string]struct {
		size int
		ok   bool
	}{
		"at the cap":   {jwksMaxBytes, true},
		"over the cap": {jwksMaxBytes + 1, false},
	} {
		t.Run(name, func(t *testing.T) {
			d := doc(tc.size)
			body.Store(&d)
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := newJWKSFetcher().RoundTrip(req)
			if tc.ok && err != nil {
				t.Fatalf("a key set of %d bytes: %v", tc.size, err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("a key set of %d bytes was accepted", tc.size)
			}
			if err == nil {
				resp.Body.Close()
			}
		})
	}
}

// Configured algorithms replace the default: an issuer restricted to PS256
// has its RS256 tokens refused.
func TestOIDCConfiguredAlgorithmsOnly(t *testing.T) {
	iss := newOIDCIssuer(t)
	cfg := *iss.source().OIDC
	token := iss.sign(t, "RS256", iss.kid, iss.claims())
	if _, err := verifyOIDCBearer(context.Background(), bearer(token), &cfg); err != nil {
		t.Fatalf("RS256 token, default algorithms: %v", err)
	}
	cfg.Algorithms = []string{"PS256"}
	if _, err := verifyOIDCBearer(context.Background(), bearer(token), &cfg); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("RS256 token, only PS256 configured: %v, want ErrUnauthorized", err)
	}
}
