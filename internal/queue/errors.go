package queue

import (
	"errors"
	"time"
)

// ErrUnavailable reports that JetStream did not acknowledge a write. Ingest
// answers 503 with Retry-After: the sender must try again, and deduplication
// makes the retry safe.
// Callers that must not import this package detect it by its
// Unavailable method.
var ErrUnavailable error = unavailableError{}

type unavailableError struct{}

func (unavailableError) Error() string { return "queue unavailable" }

// Unavailable marks the error as one a retry may heal.
func (unavailableError) Unavailable() bool { return true }

// permanentError marks a dispatch failure that retrying cannot fix, at
// once (after == 0) or once it persisted for after attempts.
type permanentError struct {
	err   error
	after int
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (an invalid PipelineRun, a
// forbidden namespace): the consumer dead-letters the work at once instead
// of redelivering it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// PermanentAfter marks err as permanent once the work has failed attempts
// times; earlier failures are retried with backoff. It is for errors that
// are almost always permanent but not right after a restart: an API server
// that just started answers 403 until its RBAC caches are filled.
// PermanentAfter(nil, n) is nil.
func PermanentAfter(err error, attempts int) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err, after: attempts}
}

// permanentAt reports whether err is permanent at the given attempt.
func permanentAt(err error, attempt int) bool {
	var p *permanentError
	return errors.As(err, &p) && attempt >= p.after
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// Permanent or PermanentAfter.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfterError carries the server's own hint of when to retry.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks a transient err with the delay the failing server asked
// for (an HTTP Retry-After on a 429 or 503): the consumer waits at least
// that long, capped by its BackoffMax, before the next attempt.
// RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: d}
}

// RetryDelay returns the delay a RetryAfter in err's chain asks for.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}
