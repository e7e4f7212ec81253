package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// The ways senders authenticate, shared by the providers. Each compares in
// constant time and never puts the credential in an error.

// verifyHMACHex checks value, a hex HMAC-SHA256 of the raw body with the
// source's secret, after an optional prefix ("sha256="). Providers that sign
// this way but have no library to verify with (Gitea, Bitbucket, the generic
// and cloudevents kinds, Artifactory's signed payloads) use it; go-github's
// verifier is GitHub-only.
func verifyHMACHex(req *Request, src *routing.Source, header, prefix string) error {
	secrets := src.AcceptedSecrets()
	if len(secrets) == 0 {
		return fmt.Errorf("%w: source has no secret configured", ErrUnauthorized)
	}
	value := strings.TrimSpace(req.Header.Get(header))
	if value == "" {
		return fmt.Errorf("%w: missing %s header", ErrUnauthorized, header)
	}
	if prefix != "" {
		if len(value) < len(prefix) || !strings.EqualFold(value[:len(prefix)], prefix) {
			return fmt.Errorf("%w: %s must be %s<hex>", ErrUnauthorized, header, prefix)
		}
		value = value[len(prefix):]
	}
	got, err := hex.DecodeString(value)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrUnauthorized, header)
	}
	if !anySecret(req, secrets, func(secret []byte) bool { return hmac.Equal(got, hmacSHA256(secret, req.Body)) }) {
		return fmt.Errorf("%w: %s does not match the body", ErrUnauthorized, header)
	}
	return nil
}

// verifyToken compares a presented token with the source's secret in
// constant time. Both sides are hashed first so the comparison does not
// leak the secret's length either. Each of the source's secrets is compared.
func verifyToken(req *Request, presented string, src *routing.Source, where string) error {
	secrets := src.AcceptedSecrets()
	if len(secrets) == 0 {
		return fmt.Errorf("%w: source has no secret configured", ErrUnauthorized)
	}
	if presented == "" {
		return fmt.Errorf("%w: missing %s", ErrUnauthorized, where)
	}
	a := sha256.Sum256([]byte(presented))
	if !anySecret(req, secrets, func(secret []byte) bool {
		b := sha256.Sum256(secret)
		return subtle.ConstantTimeCompare(a[:], b[:]) == 1
	}) {
		return fmt.Errorf("%w: %s does not match the source's secret", ErrUnauthorized, where)
	}
	return nil
}

// verifyHeaderToken checks a static token sent in a header: src.Header if
// the source names one, else def. With Authorization, the value may carry
// a "Bearer " or "Basic " scheme in front of the token, or be the whole
// configured value; both forms are compared with the secret.
func verifyHeaderToken(req *Request, src *routing.Source, def string) error {
	header := src.Header
	if header == "" {
		header = def
	}
	value := strings.TrimSpace(req.Header.Get(header))
	if value == "" {
		return fmt.Errorf("%w: missing %s header", ErrUnauthorized, header)
	}
	if strings.EqualFold(header, "Authorization") {
		if scheme, token, ok := strings.Cut(value, " "); ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "Basic")) {
			// Either the token after the scheme or the whole value may be
			// what the operator stored; check both in constant time.
			errToken := verifyToken(req, strings.TrimSpace(token), src, header)
			errWhole := verifyToken(req, value, src, header)
			if errToken == nil || errWhole == nil {
				return nil
			}
			return errToken
		}
	}
	return verifyToken(req, value, src, header)
}

// pathToken authenticates senders that can neither sign nor set headers
// (Docker Hub, Quay) by a token in the hook path,
// /v1/hooks/{source}/{token}. Their providers embed it for Verify and Sign,
// and it makes them a pathTokenProvider: the only kinds whose route takes
// the token segment.
type pathToken struct{}

var (
	_ pathTokenProvider = pathToken{}
	_ EarlyVerifier     = pathToken{}
)

// Verify compares the token in the hook path with the source's secret.
func (pathToken) Verify(req *Request, src *routing.Source) error {
	return verifyToken(req, req.PathToken, src, "token in the hook path (/v1/hooks/{source}/{token})")
}

// VerifyBeforeBody checks the path token: it does not depend on the body.
func (p pathToken) VerifyBeforeBody(req *Request, src *routing.Source) error {
	return p.Verify(req, src)
}

// Sign puts the token where these senders carry it: in the URL.
func (pathToken) Sign(req *Request, _, _ string, secret []byte) {
	req.Header.Set("Content-Type", "application/json")
	req.PathToken = string(secret)
}

func (pathToken) takesPathToken() {}

// anySecret reports whether match holds for any of secrets, and records
// on req the line (1-based) of the first that did, for the audit trail. It
// tries every one, with no early exit, so the time taken does not depend
// on which secret matched (or on the secrets' bytes).
func anySecret(req *Request, secrets [][]byte, match func(secret []byte) bool) bool {
	line := 0
	for i, secret := range secrets {
		if match(secret) && line == 0 {
			line = i + 1
		}
	}
	if line > 0 && req.SecretLine == 0 {
		req.SecretLine = line
	}
	return line > 0
}

func hmacSHA256(key, msg []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(msg)
	return mac.Sum(nil)
}

// hexHMAC is the hex HMAC-SHA256 of msg: how most senders sign.
func hexHMAC(key, msg []byte) string { return hex.EncodeToString(hmacSHA256(key, msg)) }
