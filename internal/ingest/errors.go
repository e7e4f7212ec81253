package ingest

import (
	"errors"
	"net/http"

	"github.com/switchyard-dev/switchyard/internal/policy"
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
	// ErrBusy: too many request bodies in flight (503).
	ErrBusy = errors.New("busy")
	// ErrForbidden: authenticated, but outside the caller's scope (403);
	// policy's refusals (policy.ErrDenied) answer the same.
	ErrForbidden = policy.ErrDenied
	// ErrRateLimited: the caller's events per minute are used up (429).
	ErrRateLimited = policy.ErrRateLimited
)

// unavailable is how the publisher marks a failure a retry may heal
// (queue.ErrUnavailable), without ingest importing the queue.
type unavailable interface{ Unavailable() bool }

// conflict is how the approvals store marks a decision the held event's
// state refuses (queue.ErrApprovalExpired): 409.
type conflict interface{ Conflict() bool }

// notFound is how the status reader marks an event it does not hold.
type notFound interface{ NotFound() bool }

func isUnavailable(err error) bool {
	var u unavailable
	return errors.As(err, &u) && u.Unavailable()
}

func isNotFound(err error) bool {
	var n notFound
	return errors.As(err, &n) && n.NotFound()
}

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
	case errors.Is(err, policy.ErrDenied):
		return http.StatusForbidden
	case errors.Is(err, policy.ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.As(err, new(conflict)):
		return http.StatusConflict
	case isUnavailable(err), errors.Is(err, ErrNotReady), errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
