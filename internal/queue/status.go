package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// The status vocabulary is policy's: GET /v1/events/{id} reports it.
const (
	StateQueued       = policy.StateQueued
	StateCreated      = policy.StateCreated
	StateFailed       = policy.StateFailed
	StateDeadLettered = policy.StateDeadLettered
)

// TargetStatus and EventStatus are policy's status types.
type (
	TargetStatus = policy.TargetStatus
	EventStatus  = policy.EventStatus
)

// statusKey is the status bucket key of a target of the event eventID of
// source: the event's key in the long form these keys always had
// (recordRef.legacyKey), then the app and the target's unit
// (routing.Target.Unit: its trigger, and its index when not 0).
func statusKey(source, eventID, app, unit string) string {
	return acceptedKey(source, eventID).legacyKey() + "." + app + "." + unit
}

func workStatusKey(w Work) string {
	return statusKey(w.Source, w.Event.ID(), w.Target.App, w.Target.Unit())
}

// setStatus records a target's state. It is best effort: the state is
// for people; the delivery guarantees never depend on it, so a failure is
// logged and nothing else.
//
// The state goes into the event's accepted record (inRecord), so an
// event's targets cost nats-server no subject of their own: it keeps every
// subject of a kept event in memory, for as long as the event is kept. Where the record cannot
// take it — not written yet (dispatch can finish before Publish records
// the event), updated by other targets too often in a row, or undecodable
// — the target gets a key of its own in the status bucket, as every
// target did before; Status reads both and keeps the later.
func (q *Queue) setStatus(ctx context.Context, w Work, state, reason string, attempts int) {
	if w.Event.Context == nil {
		return
	}
	ts := TargetState{State: state, Reason: trimReason(reason), Attempts: attempts, Updated: time.Now().UTC()}
	stored, err := q.inRecord(ctx, w, &ts)
	if err == nil && !stored {
		st := TargetStatus{App: w.Target.App, Trigger: w.Target.Trigger, Namespace: w.Target.Namespace, Name: w.Target.Name,
			State: ts.State, Reason: ts.Reason, Attempts: ts.Attempts, Updated: ts.Updated}
		data, merr := json.Marshal(st)
		if err = merr; err == nil {
			_, err = q.status.Put(ctx, workStatusKey(w), data)
		}
	}
	if err != nil {
		q.logger.Warn("status not recorded", "event_id", w.Event.ID(), "app", w.Target.App, "state", state, "err", err)
	}
}

// recordUpdates is how many times inRecord tries to update a record other
// targets of the event update at the same time, before it gives up.
const recordUpdates = 8

// inRecord sets w's target's state in its event's accepted record (nil
// clears it), with a compare-and-set on the record's revision so that
// targets finishing together keep each other's states. It reports false,
// with no error, when the record cannot take the state: there is none (not
// yet written, or expired), it does not decode, it lists no such target,
// or recordUpdates attempts lost to other writers.
func (q *Queue) inRecord(ctx context.Context, w Work, ts *TargetState) (bool, error) {
	// Only the accepted-events bucket: a record in the legacy bucket is
	// never written to, its targets' states go to their own keys.
	key := acceptedKey(w.Source, w.Event.ID()).key()
	unit := w.Target.Unit()
	for range recordUpdates {
		entry, err := q.accepted.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("read accepted record: %w", err)
		}
		var rec AcceptedRecord
		if json.Unmarshal(entry.Value(), &rec) != nil {
			return false, nil
		}
		i := slices.IndexFunc(rec.Targets, func(t AcceptedTarget) bool { return t.App == w.Target.App && t.unit() == unit })
		if i < 0 {
			return false, nil
		}
		if ts == nil && rec.Targets[i].Status == nil {
			return true, nil // nothing to clear
		}
		rec.Targets[i].Status = ts
		data, err := json.Marshal(rec)
		if err != nil {
			return false, fmt.Errorf("encode accepted record: %w", err)
		}
		_, err = q.accepted.Update(ctx, key, data, entry.Revision())
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, jetstream.ErrKeyExists): // not a lost race
			return false, fmt.Errorf("update accepted record: %w", err)
		}
	}
	return false, nil
}

// setDeadLettered records dl's target as dead-lettered, with why.
func (q *Queue) setDeadLettered(ctx context.Context, dl DeadLetter) {
	q.setStatus(ctx, dl.Work, StateDeadLettered, dl.Reason+": "+dl.LastError, dl.Attempts)
}

// clearStatus sets a target back to queued (a dead letter retried): its
// state leaves the record and its own key, wherever it was written.
func (q *Queue) clearStatus(ctx context.Context, w Work) {
	if _, err := q.inRecord(ctx, w, nil); err != nil {
		q.logger.Warn("status not cleared", "event_id", w.Event.ID(), "app", w.Target.App, "err", err)
	}
	if err := q.status.Delete(ctx, workStatusKey(w)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		q.logger.Warn("status not cleared", "event_id", w.Event.ID(), "app", w.Target.App, "err", err)
	}
}

// Status returns an accepted event's targets and their states. An event
// that was never accepted (or has expired) gives an error wrapping
// ErrNotFound.
func (q *Queue) Status(ctx context.Context, source, eventID string) (EventStatus, error) {
	rec, err := q.Accepted(ctx, source, eventID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return EventStatus{}, fmt.Errorf("event %s of %s: %w", eventID, source, ErrNotFound)
	}
	if err != nil {
		return EventStatus{}, err
	}
	out := EventStatus{Source: rec.Source, ID: rec.ID, Type: rec.Type, Identity: rec.Identity, Principal: rec.Principal, Accepted: rec.Time, Targets: []TargetStatus{}}
	for _, t := range rec.Targets {
		st := TargetStatus{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name, State: StateQueued}
		if s := t.Status; s != nil {
			st.State, st.Reason, st.Attempts, st.Updated = s.State, s.Reason, s.Attempts, s.Updated
		}
		// The target's own key: held for approval, dispatched before the
		// record was written, or recorded by a router before the states
		// moved into the record. The later of the two states counts.
		entry, err := q.status.Get(ctx, statusKey(source, eventID, t.App, t.unit()))
		switch {
		case err == nil:
			var own TargetStatus
			if err := json.Unmarshal(entry.Value(), &own); err != nil {
				return out, fmt.Errorf("status of %s/%s: %w", t.App, t.Trigger, err)
			}
			if t.Status == nil || own.Updated.After(st.Updated) {
				st = own
			}
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return out, fmt.Errorf("status of %s/%s: %w", t.App, t.Trigger, err)
		}
		out.Targets = append(out.Targets, st)
	}
	return out, nil
}

// trimReason keeps a state's reason to one readable line.
func trimReason(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = s[:499] + "…"
	}
	return s
}
