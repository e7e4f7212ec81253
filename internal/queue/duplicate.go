package queue

// ErrAlreadyStored is what Publish returns for an event it stored before (a
// redelivery): nothing new was published and the work is queued or done, so
// the caller answers as for a success and may say "duplicate". Callers that
// must not import this package detect it by its AlreadyStored method.
var ErrAlreadyStored error = alreadyStoredError{}

type alreadyStoredError struct{}

func (alreadyStoredError) Error() string { return "event stored before" }

// AlreadyStored marks the error as a successful, deduplicated publish.
func (alreadyStoredError) AlreadyStored() bool { return true }
