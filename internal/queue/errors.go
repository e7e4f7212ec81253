package queue

import "errors"

// ErrUnavailable reports that JetStream did not acknowledge a write. Ingest
// answers 503 with Retry-After: the sender must try again, and deduplication
// makes the retry safe.
var ErrUnavailable = errors.New("queue unavailable")

// permanentError marks a dispatch failure that retrying cannot fix.
type permanentError struct{ err error }

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

// IsPermanent reports whether err, or any error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
