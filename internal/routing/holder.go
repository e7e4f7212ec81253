package routing

import "sync/atomic"

// Holder holds the rules in force. Readers take one *Rules per event and use
// it for the whole event, so a reload never routes an event half by old and
// half by new rules.
type Holder struct {
	p atomic.Pointer[Rules]
}

// NewHolder returns a Holder with r in force.
func NewHolder(r *Rules) *Holder {
	h := &Holder{}
	h.p.Store(r)
	return h
}

// Rules returns the rules in force, or nil before any were loaded.
func (h *Holder) Rules() *Rules { return h.p.Load() }

// Swap puts r in force.
func (h *Holder) Swap(r *Rules) { h.p.Store(r) }
