package queue

import (
	"errors"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// ErrAlreadyStored is what Publish's answer to a redelivery is: an event
// stored before, so nothing new was published and the work is queued or
// done; the caller answers as for a success and may say "duplicate".
// Publish returns a *StoredBefore, for which errors.Is(err,
// ErrAlreadyStored) holds; callers that must not import this package detect
// it by its AlreadyStored method.
var ErrAlreadyStored = errors.New("event stored before")

// StoredBefore is Publish's answer to a redelivery: the record of the
// event stored before. For a body-signed delivery replayed under a new
// delivery id, that is the first delivery, with its own id and run names,
// which are what exists (the new id names nothing).
type StoredBefore struct {
	Record AcceptedRecord
}

func (e *StoredBefore) Error() string { return "event " + e.Record.ID + " stored before" }

// AlreadyStored marks the error as a successful, deduplicated publish.
func (*StoredBefore) AlreadyStored() bool { return true }

// Is makes errors.Is(err, ErrAlreadyStored) true.
func (*StoredBefore) Is(target error) bool { return target == ErrAlreadyStored }

// StoredEvent returns the id of the event stored before and its targets
// (app, trigger, namespace and run name only), for the answer to the
// sender.
func (e *StoredBefore) StoredEvent() (id string, targets []routing.Target) {
	targets = make([]routing.Target, len(e.Record.Targets))
	for i, t := range e.Record.Targets {
		targets[i] = routing.Target{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name, Index: t.Index}
	}
	return e.Record.ID, targets
}
