package routing

import (
	"sync/atomic"
	"time"
)

// Holder holds the rules in force. Readers take one *Rules per event and use
// it for the whole event, so a reload never routes an event half by old and
// half by new rules.
//
// It also remembers how the last reload went: a failed reload keeps the
// rules in force and records its error, which readiness reports as a detail
// (the router stays ready: it routes by the last good rules).
type Holder struct {
	p      atomic.Pointer[Rules]
	status atomic.Pointer[reloadStatus]
}

type reloadStatus struct {
	err error
	at  time.Time
}

// NewHolder returns a Holder with r in force.
func NewHolder(r *Rules) *Holder {
	h := &Holder{}
	h.p.Store(r)
	return h
}

// Rules returns the rules in force, or nil before any were loaded.
func (h *Holder) Rules() *Rules { return h.p.Load() }

// Swap puts r in force and clears the last reload error.
func (h *Holder) Swap(r *Rules) {
	h.p.Store(r)
	h.status.Store(&reloadStatus{at: time.Now()})
}

// SetError records that the last reload failed with err; the rules in force
// stay. A nil err clears the record.
func (h *Holder) SetError(err error) {
	h.status.Store(&reloadStatus{err: err, at: time.Now()})
}

// LastError returns the error of the last reload, or nil when it succeeded
// (or none happened since start). /readyz shows it as
// "rules: last reload failed: <error>" while staying ready.
func (h *Holder) LastError() error {
	if s := h.status.Load(); s != nil {
		return s.err
	}
	return nil
}

// LastReload returns when the last reload (successful or not) happened, or
// the zero time when none did.
func (h *Holder) LastReload() time.Time {
	if s := h.status.Load(); s != nil {
		return s.at
	}
	return time.Time{}
}
