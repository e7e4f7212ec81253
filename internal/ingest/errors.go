package ingest

import (
	"errors"
	"net/http"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// Errors a provider or the server reports; each maps to one HTTP status in
// statusFor.
var (
	// ErrUnauthorized: missing or invalid signature or credential (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrMalformed: the request cannot be decoded (400).
	ErrMalformed = errors.New("malformed request")
	// ErrUnsupportedMediaType: a content type the provider does not send (415).
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrUnknownSource: no such hook (404).
	ErrUnknownSource = errors.New("unknown source")
	// ErrTooLarge: the body exceeds the cap (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrNotReady: the router has no rules or no queue yet (503).
	ErrNotReady = errors.New("not ready")
	// ErrForbidden: authenticated, but outside the caller's scope (403).
	ErrForbidden = errors.New("forbidden")
	// ErrRateLimited: the caller's events per minute are used up (429).
	ErrRateLimited = errors.New("rate limited")
)

// ScopeError is a refusal by one rule of an endpoint's scope; the 403 body
// names the rule, so a caller (an agent) can tell what to change.
type ScopeError struct {
	Rule    string // "scope.eventTypes", "scope.params", ...
	Message string
}

func (e *ScopeError) Error() string { return e.Rule + ": " + e.Message }

// Unwrap makes a ScopeError an ErrForbidden.
func (e *ScopeError) Unwrap() error { return ErrForbidden }

// statusFor maps an error to its HTTP status. It is the only place that
// does, so every handler answers the same way.
func statusFor(err error) int {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrUnknownSource):
		return http.StatusNotFound
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, queue.ErrUnavailable), errors.Is(err, ErrNotReady):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
