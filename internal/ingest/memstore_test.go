package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// memStore is the queue's contract held in memory, so that ingest's tests
// need no NATS server (the queue has its own tests; queue_integration_test.go
// keeps the few that are about the real queue). It is a Publisher, a
// StatusReader and an audit sink.
type memStore struct {
	mu     sync.Mutex
	events map[string]policy.EventStatus // by memKey(source, id)
	bodies map[string]bool               // by memKey(source, body digest)
	recs   []policy.Record
	fail   error // when set, Publish returns it and stores nothing
	// stored are the events stored, in order.
	stored []policy.Accepted
}

func newMemStore() *memStore {
	return &memStore{events: map[string]policy.EventStatus{}, bodies: map[string]bool{}}
}

// memKey joins a source and an id; a NUL is in neither.
func memKey(source, id string) string { return source + "\x00" + id }

// memAlreadyStored is queue.ErrAlreadyStored's contract.
type memAlreadyStored struct{}

func (memAlreadyStored) Error() string       { return "event already stored" }
func (memAlreadyStored) AlreadyStored() bool { return true }

// memNotFound is queue.ErrNotFound's contract.
type memNotFound struct{}

func (memNotFound) Error() string  { return "not found" }
func (memNotFound) NotFound() bool { return true }

// Publish stores the event unless it (or, with a BodyDigest, its body) is
// stored already, as the queue does.
func (m *memStore) Publish(_ context.Context, a policy.Accepted) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.events == nil {
		m.events, m.bodies = map[string]policy.EventStatus{}, map[string]bool{}
	}
	key := memKey(a.Source, a.Event.ID())
	if _, ok := m.events[key]; ok {
		return memAlreadyStored{}
	}
	if a.BodyDigest != "" && m.bodies[memKey(a.Source, a.BodyDigest)] {
		return memAlreadyStored{}
	}
	ext := a.Event.Extensions()
	st := policy.EventStatus{Source: a.Source, ID: a.Event.ID(), Type: a.Event.Type(), Accepted: time.Now().UTC(), Targets: []policy.TargetStatus{}}
	st.Identity, _ = ext["identity"].(string)
	st.Principal, _ = ext["principal"].(string)
	for _, t := range a.Targets {
		st.Targets = append(st.Targets, policy.TargetStatus{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name, State: policy.StateQueued})
	}
	m.events[key] = st
	m.stored = append(m.stored, a)
	if a.BodyDigest != "" {
		m.bodies[memKey(a.Source, a.BodyDigest)] = true
	}
	return nil
}

// Status returns a stored event with every target queued.
func (m *memStore) Status(_ context.Context, source, id string) (policy.EventStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.events[memKey(source, id)]
	if !ok {
		return policy.EventStatus{}, fmt.Errorf("event %s of %s: %w", id, source, memNotFound{})
	}
	st.Targets = append([]policy.TargetStatus(nil), st.Targets...)
	return st, nil
}

// Pending counts the work items stored: one per target, as the queue's.
func (m *memStore) Pending(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n uint64
	for _, st := range m.events {
		n += uint64(len(st.Targets))
	}
	return n, nil
}

// Audit records r; it is Config.Audit.
func (m *memStore) Audit(r policy.Record) { m.mu.Lock(); m.recs = append(m.recs, r); m.mu.Unlock() }

// records returns the audit records in order.
func (m *memStore) records() []policy.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]policy.Record(nil), m.recs...)
}
