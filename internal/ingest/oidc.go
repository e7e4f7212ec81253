package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// OIDC bearer tokens: senders that prove who they are with a token signed
// by an identity provider (Google Pub/Sub push, and agents) instead of a
// shared secret. go-oidc does the JOSE work: signature with the issuer's
// keys (fetched once, re-fetched when an unknown key id appears, so key
// rotation needs nothing from us), issuer, audience, expiry and not-before.

// oidcTimeout bounds one verification, key or discovery fetch included.
const oidcTimeout = 10 * time.Second

// oidcMaxKeySets caps the cache. Entries come from the manifest's sources,
// so the cap is only reached after many reloads with changing issuers; the
// cache then starts over rather than grow.
const oidcMaxKeySets = 64

// oidcSigningAlgs are the only algorithms accepted. Google signs with
// RS256; "none" and the HMAC algorithms are never accepted (an HS256 token
// "signed" with the public key is the classic confusion attack).
var oidcSigningAlgs = []string{oidc.RS256}

type oidcKeySetKey struct{ issuer, jwksURL string }

// oidcKeySets caches one remote key set per issuer and JWKS URL, safe for
// concurrent use: go-oidc's RemoteKeySet is meant to be long lived and
// shared, it caches keys and coalesces concurrent fetches.
var oidcKeySets = struct {
	sync.Mutex
	m map[oidcKeySetKey]oidc.KeySet
}{m: map[oidcKeySetKey]oidc.KeySet{}}

// oidcHTTPClient fetches discovery documents and keys.
var oidcHTTPClient = &http.Client{Timeout: oidcTimeout}

// oidcKeySet returns the cached key set for cfg, creating it on first use.
// Without a JWKS URL the issuer's discovery document names it; a failed
// discovery is not cached, so the next request tries again.
func oidcKeySet(ctx context.Context, cfg *routing.OIDC) (oidc.KeySet, error) {
	key := oidcKeySetKey{issuer: cfg.Issuer, jwksURL: cfg.JWKSURL}
	oidcKeySets.Lock()
	ks, ok := oidcKeySets.m[key]
	oidcKeySets.Unlock()
	if ok {
		return ks, nil
	}
	// The key set keeps this context as its configuration (the HTTP
	// client); go-oidc ignores its cancellation.
	clientCtx := oidc.ClientContext(context.Background(), oidcHTTPClient)
	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		// Discovery happens outside the lock: it is network I/O.
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, oidcHTTPClient), cfg.Issuer)
		if err != nil {
			return nil, fmt.Errorf("oidc discovery for %s: %w", cfg.Issuer, err)
		}
		var meta struct {
			JWKSURL string `json:"jwks_uri"`
		}
		if err := p.Claims(&meta); err != nil || meta.JWKSURL == "" {
			return nil, fmt.Errorf("oidc discovery for %s: no jwks_uri", cfg.Issuer)
		}
		jwksURL = meta.JWKSURL
	}
	oidcKeySets.Lock()
	defer oidcKeySets.Unlock()
	if ks, ok := oidcKeySets.m[key]; ok {
		return ks, nil // another request created it meanwhile
	}
	if len(oidcKeySets.m) >= oidcMaxKeySets {
		oidcKeySets.m = map[oidcKeySetKey]oidc.KeySet{}
	}
	ks = oidc.NewRemoteKeySet(clientCtx, jwksURL)
	oidcKeySets.m[key] = ks
	return ks, nil
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
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
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
	tok, err := verifier.Verify(ctx, raw)
	if err != nil {
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
