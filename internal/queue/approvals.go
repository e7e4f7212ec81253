package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// ApprovalsBucket holds every held event (policy.Approval), waiting or
// decided, keyed by event id then source: an approval names the id only.
const ApprovalsBucket = "switchyard-approvals"

// ErrApprovalExpired is a decision after the gate's timeout (409): the
// held targets end expired.
var ErrApprovalExpired error = conflictError("approval expired: nobody approved in time")

// ErrApprovalDecided is a decision contrary to the one already taken
// (approve after reject, or reject after approve): 409.
var ErrApprovalDecided error = conflictError("already decided")

// conflictError is a request the state of what it names refuses; its
// Conflict method lets ingest answer 409 without importing the queue.
type conflictError string

func (e conflictError) Error() string { return string(e) }

// Conflict reports true.
func (conflictError) Conflict() bool { return true }

// Decision is one decision on a held event.
type Decision = policy.ApprovalDecision

// approvalKey is a held event's key: the hash of its id (ids are
// arbitrary text), then its source, so an id alone lists its sources.
func approvalKey(source, eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return hex.EncodeToString(sum[:]) + "." + source
}

// keyToken reports whether name can be one token of a bucket key, as
// every source and endpoint name (a DNS label) can.
func keyToken(name string) bool {
	return name != "" && !strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	})
}

// approvalsKV returns the approvals bucket, created when create is set
// (the first held event creates it, with the streams' replicas).
func (q *Queue) approvalsKV(ctx context.Context, create bool) (jetstream.KeyValue, error) {
	kv, err := q.js.KeyValue(ctx, ApprovalsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) && create {
		kv, err = q.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      ApprovalsBucket,
			Description: "Events whose targets an approval gate holds, and the decision on them.",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    q.cfg.Replicas,
			TTL:         q.cfg.EventsMaxAge,
		})
	}
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, fmt.Errorf("approvals: %w", ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("approvals: %w: %w", ErrUnavailable, err)
	}
	return kv, nil
}

// hold stores what a's gates hold, and their awaiting-approval states,
// before the event is recorded as accepted: a 2xx means the hold is
// stored too. A hold stored by an earlier attempt is kept.
func (q *Queue) hold(ctx context.Context, a policy.Accepted) error {
	kv, err := q.approvalsKV(ctx, true)
	if err != nil {
		return err
	}
	ev := a.Event.Clone()
	ev.DataEncoded, ev.DataBase64 = nil, false
	ext := ev.Extensions()
	// Requested when the event was accepted: for a webhook stored in a
	// burst, its 202, before it was judged (and its released work keeps
	// that place in a concurrency group).
	requested := time.Now()
	if !a.Answered.IsZero() && a.Answered.Before(requested) {
		requested = a.Answered
	}
	rec := policy.Approval{Source: a.Source, Event: ev, Gates: a.Hold.Gates, Requested: requested.UTC(),
		Deadline: a.Hold.Deadline, State: policy.StateAwaitingApproval}
	rec.Identity, _ = ext["identity"].(string)
	rec.Principal, _ = ext["principal"].(string)
	for _, t := range a.Targets {
		if a.Hold.Holds(t.App, t.Trigger) {
			rec.Targets = append(rec.Targets, t)
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("hold: encode: %w", err)
	}
	if _, err := kv.Create(ctx, approvalKey(a.Source, ev.ID()), data); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("hold: %w: %w", ErrUnavailable, err)
	}
	reason := fmt.Sprintf("held by %s until %s", strings.Join(rec.Gates, ", "), rec.Deadline.Format(time.RFC3339))
	for _, t := range rec.Targets {
		st := TargetStatus{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name,
			State: policy.StateAwaitingApproval, Reason: reason, Updated: rec.Requested}
		data, _ := json.Marshal(st) // a struct of strings and a time
		if _, err := q.status.Put(ctx, statusKey(a.Source, ev.ID(), t.App, t.Unit()), data); err != nil {
			return fmt.Errorf("hold: status: %w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// Approvals returns the held events with id eventID: of source, or of
// any source when source is empty. None is an error wrapping ErrNotFound.
func (q *Queue) Approvals(ctx context.Context, source, eventID string) ([]policy.Approval, error) {
	if source != "" && !keyToken(source) {
		return nil, fmt.Errorf("approval of event %s: source %q: %w", eventID, source, ErrNotFound)
	}
	kv, err := q.approvalsKV(ctx, false)
	if err != nil {
		return nil, err
	}
	keys := []string{approvalKey(source, eventID)}
	if source == "" {
		lister, err := kv.ListKeysFiltered(ctx, approvalKey("*", eventID))
		if err != nil {
			return nil, fmt.Errorf("approvals: %w: %w", ErrUnavailable, err)
		}
		keys = nil
		for k := range lister.Keys() {
			keys = append(keys, k)
		}
	}
	var out []policy.Approval
	for _, k := range keys {
		rec, _, err := getApproval(ctx, kv, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("approval of event %s: %w", eventID, ErrNotFound)
	}
	return out, nil
}

func getApproval(ctx context.Context, kv jetstream.KeyValue, key string) (policy.Approval, uint64, error) {
	var rec policy.Approval
	entry, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return rec, 0, fmt.Errorf("approval: %w", ErrNotFound)
	case err != nil:
		return rec, 0, fmt.Errorf("approval: %w: %w", ErrUnavailable, err)
	}
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return rec, 0, fmt.Errorf("approval: decode: %w", err)
	}
	return rec, entry.Revision(), nil
}

// Decide approves or rejects a held event. Approving releases its held
// targets as work with the message ids Publish would have given them (so a
// second approval, even racing the first, queues nothing twice), then
// records the decision; the same decision again returns the record and no
// error. A decision past the deadline expires the event and returns
// ErrApprovalExpired; one contrary to an earlier decision returns
// ErrApprovalDecided. Who may decide is policy's (MayDecide), asked first.
func (q *Queue) Decide(ctx context.Context, d Decision) (policy.Approval, error) {
	if d.Now.IsZero() {
		d.Now = time.Now()
	}
	kv, err := q.approvalsKV(ctx, false)
	if err != nil {
		return policy.Approval{}, err
	}
	key := approvalKey(d.Source, d.EventID)
	for {
		rec, rev, err := getApproval(ctx, kv, key)
		if err != nil {
			return rec, err
		}
		want := policy.StateRejected
		if d.Approve {
			want = policy.StateQueued
		}
		switch {
		case rec.State == want:
			return rec, nil
		case rec.State == policy.StateExpired:
			return rec, ErrApprovalExpired
		case rec.State != policy.StateAwaitingApproval:
			return rec, fmt.Errorf("%w: the event is %s", ErrApprovalDecided, rec.State)
		case d.Now.After(rec.Deadline):
			want, d.By, d.Reason = policy.StateExpired, "", fmt.Sprintf("nobody approved it by %s", rec.Deadline.Format(time.RFC3339))
		case d.Approve:
			if err := q.release(ctx, rec); err != nil {
				return rec, err
			}
		}
		rec.State, rec.DecidedBy, rec.Decided, rec.Reason = want, d.By, d.Now.UTC(), trimReason(d.Reason)
		switch err := q.putApproval(ctx, kv, key, rec, rev); {
		case errors.Is(err, jetstream.ErrKeyExists):
			continue // decided meanwhile: judge again on what was stored
		case err != nil:
			return rec, err
		}
		if want != policy.StateQueued {
			q.setHeldStatus(ctx, rec, want, rec.Reason)
		}
		if want == policy.StateExpired {
			return rec, ErrApprovalExpired
		}
		return rec, nil
	}
}

// putApproval writes rec over revision rev: ErrKeyExists when another
// decision came first.
func (q *Queue) putApproval(ctx context.Context, kv jetstream.KeyValue, key string, rec policy.Approval, rev uint64) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("approval: encode: %w", err)
	}
	if _, err := kv.Update(ctx, key, data, rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		return fmt.Errorf("approval: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// release queues rec's held targets: their states first, so dispatch's
// later state is not overwritten, then their work, acknowledged.
func (q *Queue) release(ctx context.Context, rec policy.Approval) error {
	q.setHeldStatus(ctx, rec, policy.StateQueued, "approved")
	msgs := make([]outMsg, 0, len(rec.Targets))
	for _, t := range rec.Targets {
		m, err := workMessage(Work{Source: rec.Source, Event: rec.Event, Target: t}, workMsgID(rec.Source, rec.Event.ID(), t.App, t.Trigger))
		if err != nil {
			return err
		}
		if !rec.Requested.IsZero() { // held as it was accepted
			m.msg.Header.Set(acceptedHeader, rec.Requested.UTC().Format(time.RFC3339Nano))
		}
		msgs = append(msgs, m)
	}
	return q.publishAll(ctx, msgs)
}

// setHeldStatus records state for each of rec's held targets.
func (q *Queue) setHeldStatus(ctx context.Context, rec policy.Approval, state, reason string) {
	for _, t := range rec.Targets {
		q.setStatus(ctx, Work{Source: rec.Source, Event: rec.Event, Target: t}, state, reason, 0)
	}
}

// SweepApprovals expires every held event whose deadline is before now,
// recording each expiry in the audit trail, and returns how many it
// expired. Replicas may sweep together: one decision wins each event.
func (q *Queue) SweepApprovals(ctx context.Context, now time.Time) (int, error) {
	kv, err := q.approvalsKV(ctx, false)
	if errors.Is(err, ErrNotFound) {
		return 0, nil // nothing was ever held
	}
	if err != nil {
		return 0, err
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("sweep approvals: %w: %w", ErrUnavailable, err)
	}
	var due []policy.Approval
	for k := range lister.Keys() {
		rec, _, err := getApproval(ctx, kv, k)
		if err == nil && rec.State == policy.StateAwaitingApproval && now.After(rec.Deadline) {
			due = append(due, rec)
		}
	}
	n := 0
	for _, rec := range due {
		got, err := q.Decide(ctx, Decision{Source: rec.Source, EventID: rec.Event.ID(), Now: now})
		if !errors.Is(err, ErrApprovalExpired) || !got.Decided.Equal(now.UTC()) {
			continue // decided (or expired) by someone else meanwhile
		}
		n++
		q.Audit(policy.Record{Time: now.UTC(), Decision: policy.DecisionExpired, Kind: "approval", Source: rec.Source,
			Identity: rec.Identity, Subject: rec.Principal, EventID: rec.Event.ID(), Type: rec.Event.Type(),
			Status: 409, Reason: got.Reason, Rule: strings.Join(rec.Gates, ","), Targets: len(rec.Targets)})
	}
	return n, nil
}

// RunApprovalSweeper sweeps every interval until ctx ends.
func (q *Queue) RunApprovalSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := q.SweepApprovals(ctx, time.Now()); err != nil {
			q.logger.Warn("approval sweep failed", "err", err)
		} else if n > 0 {
			q.logger.Info("approvals expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// HeldFor returns the events of source awaiting approval whose
// repository and pullrequest extensions are repo and number: what an
// /approve comment on that pull request decides on.
func (q *Queue) HeldFor(ctx context.Context, source, repo, number string) ([]policy.Approval, error) {
	if !keyToken(source) {
		return nil, nil
	}
	kv, err := q.approvalsKV(ctx, false)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeysFiltered(ctx, "*."+source)
	if err != nil {
		return nil, fmt.Errorf("held for pull request: %w: %w", ErrUnavailable, err)
	}
	var out []policy.Approval
	for k := range lister.Keys() {
		rec, _, err := getApproval(ctx, kv, k)
		if err != nil || rec.State != policy.StateAwaitingApproval {
			continue
		}
		ext := rec.Event.Extensions()
		if ext["repository"] == repo && ext["pullrequest"] == number {
			out = append(out, rec)
		}
	}
	return out, nil
}

// WatchApprovals watches every held event of the approvals bucket (created
// if no event was held yet), current values first: the report package
// turns each hold and decision into commit statuses from it.
func (q *Queue) WatchApprovals(ctx context.Context) (jetstream.KeyWatcher, error) {
	kv, err := q.approvalsKV(ctx, true)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch approvals: %w: %w", ErrUnavailable, err)
	}
	return w, nil
}
