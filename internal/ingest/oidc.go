package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/time/rate"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// OIDC bearer tokens: senders that prove who they are with a token signed
// by an identity provider (Google Pub/Sub push, and agents) instead of a
// shared secret. go-oidc does the JOSE work: signature with the issuer's
// keys (fetched once, re-fetched when an unknown key id appears, so key
// rotation needs nothing from us), issuer, audience, expiry and not-before.
// The re-fetches are bounded here (jwksFetcher): a token with a made-up key
// id costs no request to the identity provider once the budget is spent.

// oidcTimeout bounds one verification, key or discovery fetch included.
const oidcTimeout = 10 * time.Second

// oidcMaxKeySets caps the cache. Entries come from the manifest's sources,
// so the cap is only reached after many reloads with changing issuers; the
// cache then starts over rather than grow.
const oidcMaxKeySets = 64

// jwksRefreshEvery and jwksRefreshBurst bound the key fetches of one key
// set: a burst of jwksRefreshBurst (the first fetch, and a rotation right
// after a probe with a made-up key id), then one per jwksRefreshEvery. The
// same refresh serves every token, so a genuine new key published by the
// issuer is picked up within jwksRefreshEvery even under such probes.
// A failed discovery is retried no sooner than jwksRefreshEvery either.
const (
	jwksRefreshEvery = 30 * time.Second
	jwksRefreshBurst = 3
	// jwksMaxBytes caps a key set document (Google's is about 2 KiB).
	jwksMaxBytes = 1 << 20
)

// oidcSigningAlgs are the only algorithms accepted. Google signs with
// RS256; "none" and the HMAC algorithms are never accepted (an HS256 token
// "signed" with the public key is the classic confusion attack).
var oidcSigningAlgs = []string{oidc.RS256}

type oidcKeySetKey struct{ issuer, jwksURL string }

// oidcKeys is one issuer's cached key set and the transport its fetches
// go through.
type oidcKeys struct {
	keySet  oidc.KeySet
	fetcher *jwksFetcher
}

// oidcKeySets caches one remote key set per issuer and JWKS URL, safe for
// concurrent use: go-oidc's RemoteKeySet is meant to be long lived and
// shared, it caches keys and coalesces concurrent fetches. failed holds the
// time of the last failed discovery per key, so an unreachable issuer is
// not asked again on every request.
var oidcKeySets = struct {
	sync.Mutex
	m      map[oidcKeySetKey]*oidcKeys
	failed map[oidcKeySetKey]time.Time
}{m: map[oidcKeySetKey]*oidcKeys{}, failed: map[oidcKeySetKey]time.Time{}}

// oidcHTTPClient fetches discovery documents.
var oidcHTTPClient = &http.Client{Timeout: oidcTimeout}

// errIdentityProviderUnreachable is the text a caller gets when the
// issuer's discovery document or keys cannot be had; the cause is logged.
const errIdentityProviderUnreachable = "the token could not be verified (identity provider unreachable)"

// verifyError is a credential check that failed on the router's side (the
// identity provider unreachable): Error is the public text, without the
// resolver, address or answer of the network error, which LogDetail gives
// for the logs. It is an ErrUnauthorized, and unwraps to its cause too.
type verifyError struct {
	public string
	cause  error
}

func (e *verifyError) Error() string { return ErrUnauthorized.Error() + ": " + e.public }

// Unwrap makes a verifyError an ErrUnauthorized, and reaches its cause.
func (e *verifyError) Unwrap() []error { return []error{ErrUnauthorized, e.cause} }

// LogDetail is the cause, for the server's log line only.
func (e *verifyError) LogDetail() string { return e.cause.Error() }

// idpError is a failed fetch from the identity provider (network, status,
// or a document that is not a key set).
type idpError struct{ err error }

func (e *idpError) Error() string { return "identity provider: " + e.err.Error() }
func (e *idpError) Unwrap() error { return e.err }

// errJWKSRefreshLimited is a key fetch refused by the budget: the token's
// key id is not in the key set fetched moments ago.
var errJWKSRefreshLimited = errors.New("key set refreshed too recently to fetch it again")

// jwksFetcher is the HTTP transport of one key set. Every fetch go-oidc
// makes (the first, and one per unknown key id) takes a token of the
// budget, or fails at once without a request; a failed answer becomes an
// idpError, so verifyOIDCBearer can tell the issuer's failure from the
// token's.
type jwksFetcher struct {
	next    http.RoundTripper
	limiter *rate.Limiter
	now     func() time.Time // the budget's clock; tests move it
}

func newJWKSFetcher() *jwksFetcher {
	return &jwksFetcher{
		next:    http.DefaultTransport,
		limiter: rate.NewLimiter(rate.Every(jwksRefreshEvery), jwksRefreshBurst),
		now:     time.Now,
	}
}

// RoundTrip fetches the key set if the budget allows, and checks that the
// answer is one.
func (f *jwksFetcher) RoundTrip(req *http.Request) (*http.Response, error) {
	if !f.limiter.AllowN(f.now(), 1) {
		return nil, errJWKSRefreshLimited
	}
	resp, err := f.next.RoundTrip(req)
	if err != nil {
		return nil, &idpError{err}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	resp.Body.Close()
	switch {
	case err != nil:
		return nil, &idpError{fmt.Errorf("read keys: %w", err)}
	case resp.StatusCode != http.StatusOK:
		return nil, &idpError{fmt.Errorf("keys: %s", resp.Status)}
	case len(body) > jwksMaxBytes:
		return nil, &idpError{fmt.Errorf("keys: larger than %d bytes", jwksMaxBytes)}
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, &idpError{fmt.Errorf("keys: not a JWKS: %w", err)}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// keyErrKey is the context key under which verifyOIDCBearer receives the
// key set's own error: go-oidc reports it as text only (%v).
type keyErrKey struct{}

// reportingKeySet passes the key set's error to verifyOIDCBearer.
type reportingKeySet struct{ oidc.KeySet }

func (k reportingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.KeySet.VerifySignature(ctx, jwt)
	if slot, ok := ctx.Value(keyErrKey{}).(*error); ok && err != nil {
		*slot = err
	}
	return payload, err
}

// oidcKeySet returns the cached key set for cfg, creating it on first use.
// Without a JWKS URL the issuer's discovery document names it; a failed
// discovery is not cached, but is not retried within jwksRefreshEvery.
func oidcKeySet(ctx context.Context, cfg *routing.OIDC) (oidc.KeySet, error) {
	key := oidcKeySetKey{issuer: cfg.Issuer, jwksURL: cfg.JWKSURL}
	oidcKeySets.Lock()
	keys, ok := oidcKeySets.m[key]
	failedAt, failed := oidcKeySets.failed[key]
	oidcKeySets.Unlock()
	if ok {
		return keys.keySet, nil
	}
	if failed && time.Since(failedAt) < jwksRefreshEvery {
		return nil, &verifyError{errIdentityProviderUnreachable,
			fmt.Errorf("oidc discovery for %s failed %v ago; not retried before %v", cfg.Issuer, time.Since(failedAt).Round(time.Second), jwksRefreshEvery)}
	}
	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		// Discovery happens outside the lock: it is network I/O.
		u, err := discoverJWKSURL(ctx, cfg.Issuer)
		if err != nil {
			oidcKeySets.Lock()
			if len(oidcKeySets.failed) >= oidcMaxKeySets {
				oidcKeySets.failed = map[oidcKeySetKey]time.Time{}
			}
			oidcKeySets.failed[key] = time.Now()
			oidcKeySets.Unlock()
			return nil, &verifyError{errIdentityProviderUnreachable, err}
		}
		jwksURL = u
	}
	oidcKeySets.Lock()
	defer oidcKeySets.Unlock()
	delete(oidcKeySets.failed, key)
	if keys, ok := oidcKeySets.m[key]; ok {
		return keys.keySet, nil // another request created it meanwhile
	}
	if len(oidcKeySets.m) >= oidcMaxKeySets {
		oidcKeySets.m = map[oidcKeySetKey]*oidcKeys{}
	}
	fetcher := newJWKSFetcher()
	// The key set keeps this context as its configuration (the HTTP
	// client); go-oidc ignores its cancellation.
	clientCtx := oidc.ClientContext(context.Background(), &http.Client{Timeout: oidcTimeout, Transport: fetcher})
	keys = &oidcKeys{keySet: reportingKeySet{oidc.NewRemoteKeySet(clientCtx, jwksURL)}, fetcher: fetcher}
	oidcKeySets.m[key] = keys
	return keys.keySet, nil
}

// discoverJWKSURL reads jwks_uri from the issuer's discovery document.
func discoverJWKSURL(ctx context.Context, issuer string) (string, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, oidcHTTPClient), issuer)
	if err != nil {
		return "", fmt.Errorf("oidc discovery for %s: %w", issuer, err)
	}
	var meta struct {
		JWKSURL string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKSURL == "" {
		return "", fmt.Errorf("oidc discovery for %s: no jwks_uri", issuer)
	}
	return meta.JWKSURL, nil
}

// oidcClaims are the claims checked beyond the registered ones.
type oidcClaims struct {
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
}

// authorizationBearer returns the token of "Authorization: Bearer <token>".
func authorizationBearer(h http.Header) (string, error) {
	value := strings.TrimSpace(h.Get("Authorization"))
	if value == "" {
		return "", fmt.Errorf("%w: missing Authorization header", ErrUnauthorized)
	}
	scheme, token, ok := strings.Cut(value, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", fmt.Errorf("%w: Authorization must be Bearer <token>", ErrUnauthorized)
	}
	return token, nil
}

// verifyOIDCBearer checks the OIDC token in "Authorization: Bearer <jwt>"
// against cfg: RS256 signature with the issuer's keys, issuer, audience,
// expiry; and when cfg.Email is set, the email claim must equal it and be
// verified (Google service-account tokens carry both). The token itself is
// never put in an error.
func verifyOIDCBearer(ctx context.Context, h http.Header, cfg *routing.OIDC) (*oidc.IDToken, error) {
	if cfg == nil || cfg.Issuer == "" || cfg.Audience == "" {
		return nil, fmt.Errorf("%w: source has no oidc issuer and audience configured", ErrUnauthorized)
	}
	raw, err := authorizationBearer(h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, oidcTimeout)
	defer cancel()
	ks, err := oidcKeySet(ctx, cfg)
	if err != nil {
		return nil, err // a *verifyError: the detail is for the logs
	}
	algs := oidcSigningAlgs
	if len(cfg.Algorithms) > 0 {
		// Checked at load: never none or HS*.
		algs = cfg.Algorithms
	}
	verifier := oidc.NewVerifier(cfg.Issuer, ks, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: algs,
	})
	var keyErr error
	tok, err := verifier.Verify(context.WithValue(ctx, keyErrKey{}, &keyErr), raw)
	if err != nil {
		var idp *idpError
		switch {
		case errors.As(keyErr, &idp), errors.Is(keyErr, context.DeadlineExceeded):
			return nil, &verifyError{errIdentityProviderUnreachable, keyErr}
		case errors.Is(keyErr, errJWKSRefreshLimited):
			return nil, fmt.Errorf("%w: oidc token: signed with a key id the issuer does not publish", ErrUnauthorized)
		}
		return nil, fmt.Errorf("%w: oidc token: %v", ErrUnauthorized, err)
	}
	if cfg.Email != "" {
		var c oidcClaims
		if err := tok.Claims(&c); err != nil {
			return nil, fmt.Errorf("%w: oidc token claims: %v", ErrUnauthorized, err)
		}
		if c.Email != cfg.Email {
			return nil, fmt.Errorf("%w: oidc token email %q is not the source's %q", ErrUnauthorized, c.Email, cfg.Email)
		}
		if !c.EmailVerified {
			return nil, fmt.Errorf("%w: oidc token email is not verified", ErrUnauthorized)
		}
	}
	return tok, nil
}
