package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
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

// statusKey is the status bucket key of a target: its event's key (see
// acceptedKey), then the app and the trigger.
func statusKey(eventKey, app, trigger string) string {
	return eventKey + "." + app + "." + trigger
}

func workStatusKey(w Work) string {
	return statusKey(acceptedKey(w.Source, w.Event.ID()), w.Target.App, w.Target.Unit())
}

// setStatus records a target's state. It is best effort: the state is
// for people; the delivery guarantees never depend on it, so a failure is
// logged and nothing else.
func (q *Queue) setStatus(ctx context.Context, w Work, state, reason string, attempts int) {
	if w.Event.Context == nil {
		return
	}
	st := TargetStatus{App: w.Target.App, Trigger: w.Target.Trigger, Namespace: w.Target.Namespace, Name: w.Target.Name,
		State: state, Reason: trimReason(reason), Attempts: attempts, Updated: time.Now().UTC()}
	data, err := json.Marshal(st)
	if err == nil {
		_, err = q.status.Put(ctx, workStatusKey(w), data)
	}
	if err != nil {
		q.logger.Warn("status not recorded", "event_id", w.Event.ID(), "app", w.Target.App, "state", state, "err", err)
	}
}

// setDeadLettered records dl's target as dead-lettered, with why.
func (q *Queue) setDeadLettered(ctx context.Context, dl DeadLetter) {
	q.setStatus(ctx, dl.Work, StateDeadLettered, dl.Reason+": "+dl.LastError, dl.Attempts)
}

// clearStatus sets a target back to queued (a dead letter retried).
func (q *Queue) clearStatus(ctx context.Context, w Work) {
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
	eventKey := acceptedKey(source, eventID)
	for _, t := range rec.Targets {
		st := TargetStatus{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name, State: StateQueued}
		entry, err := q.status.Get(ctx, statusKey(eventKey, t.App, routing.Target{Trigger: t.Trigger, Index: t.Index}.Unit()))
		switch {
		case err == nil:
			if err := json.Unmarshal(entry.Value(), &st); err != nil {
				return out, fmt.Errorf("status of %s/%s: %w", t.App, t.Trigger, err)
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
