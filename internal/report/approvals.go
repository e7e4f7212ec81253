package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// ApprovalStore is what reports need of the approvals store (*queue.Queue
// is one): a watch of every held event, and one held event read again.
type ApprovalStore interface {
	WatchApprovals(ctx context.Context) (jetstream.KeyWatcher, error)
	Approvals(ctx context.Context, source, eventID string) ([]policy.Approval, error)
}

// ApprovalWatcherConfig configures an ApprovalWatcher.
type ApprovalWatcherConfig struct {
	Store ApprovalStore
	// Status reports whether the events of a router source get commit
	// statuses (the source's report setting).
	Status func(source string) bool
	// Rules returns the rules in force: who approves a gate.
	Rules     func() *routing.Rules
	Publisher Publisher
	Logger    *slog.Logger
	// Retry is the delay before watching again after the store failed
	// (default 5 s).
	Retry time.Duration
}

// ApprovalWatcher turns what the approvals store records (a target held,
// rejected, expired) into commit statuses on the held event's commit.
//
// It reads the store rather than the store publishing reports: the queue
// package cannot import this one (report imports dispatch, which imports
// queue), the bucket is durable, and a watch replays its current values,
// so a router that was down when a target was held still reports it, and
// the report queue's dedup ids make every router's watch store each state
// once.
type ApprovalWatcher struct {
	cfg ApprovalWatcherConfig
	log *slog.Logger

	mu sync.Mutex
	// published holds the msg ids stored, per approvals key, so a watch
	// started again stores nothing twice.
	published map[string][]string
	now       func() time.Time
}

// NewApprovalWatcher returns an ApprovalWatcher; Run starts it.
func NewApprovalWatcher(cfg ApprovalWatcherConfig) *ApprovalWatcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	if cfg.Status == nil {
		cfg.Status = func(string) bool { return false }
	}
	return &ApprovalWatcher{cfg: cfg, log: cfg.Logger.With("component", "report-approvals"),
		published: map[string][]string{}, now: time.Now}
}

// Run watches until ctx ends, watching again when the store fails.
func (w *ApprovalWatcher) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := w.watchOnce(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("approvals watch failed: retrying", "error", err.Error())
		}
		sleep(ctx, w.cfg.Retry)
	}
	return nil
}

// watchOnce follows the store until its watch ends.
func (w *ApprovalWatcher) watchOnce(ctx context.Context) error {
	kw, err := w.cfg.Store.WatchApprovals(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = kw.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-kw.Updates():
			if !ok {
				return errors.New("approvals watch closed")
			}
			if e != nil {
				w.observe(ctx, e)
			}
		}
	}
}

// observe publishes the statuses one record calls for, retrying while
// JetStream refuses (the watch waits meanwhile: nothing is skipped).
func (w *ApprovalWatcher) observe(ctx context.Context, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		w.mu.Lock()
		delete(w.published, e.Key())
		w.mu.Unlock()
		return
	}
	var rec policy.Approval
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		w.log.Warn("approval record undecodable: no status", "error", err.Error())
		return
	}
	if !w.cfg.Status(rec.Source) {
		return
	}
	delay := 500 * time.Millisecond
	for _, j := range heldJobs(rec, w.approvers(rec.Gates), w.now().UTC()) {
		w.mu.Lock()
		done := slices.Contains(w.published[e.Key()], j.MsgID())
		w.mu.Unlock()
		for !done {
			pubCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := w.cfg.Publisher.Publish(pubCtx, j)
			cancel()
			if err == nil {
				break
			}
			w.log.Warn("approval status not queued: retrying", "event_id", j.Run.EventID, "app", j.Run.App, "trigger", j.Run.Trigger, "error", err.Error())
			if sleep(ctx, delay); ctx.Err() != nil {
				return
			}
			delay = min(2*delay, 30*time.Second)
		}
		w.mu.Lock()
		if !done {
			w.published[e.Key()] = append(w.published[e.Key()], j.MsgID())
		}
		w.mu.Unlock()
	}
}

// approvers names who may approve under the gates, from the rules in force.
func (w *ApprovalWatcher) approvers(gates []string) []string {
	var out []string
	var rules *routing.Rules
	if w.cfg.Rules != nil {
		rules = w.cfg.Rules()
	}
	for _, g := range gates {
		var gate *routing.Approval
		if rules != nil {
			gate = rules.Gate(g)
		}
		if gate == nil {
			out = appendNew(out, "an operator") // gate gone: router approve decides
			continue
		}
		for _, a := range gate.Approvers {
			out = appendNew(out, approverName(a))
		}
	}
	return out
}

// approverName writes an approver as the root does.
func approverName(a routing.Approver) string {
	name := "endpoint:" + a.Endpoint
	if a.Source != "" {
		name = "source:" + a.Source
	}
	if a.Principal != "" {
		name += "/" + a.Principal
	}
	return name
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// heldJobs returns the statuses a held event's record calls for, one per
// held app and trigger of an event with a revision: pending "awaiting
// approval" while it waits, failure once rejected, error once expired, and
// none once approved (its runs' statuses follow on the same context).
func heldJobs(rec policy.Approval, approvers []string, now time.Time) []Job {
	ext := rec.Event.Extensions()
	repo, _ := ext["repository"].(string)
	rev, _ := ext["revision"].(string)
	if repo == "" || rev == "" {
		return nil
	}
	var state, desc string
	held := &Held{Gates: rec.Gates, Deadline: rec.Deadline, State: rec.State}
	switch rec.State {
	case policy.StateAwaitingApproval:
		state, desc = StatePending, "awaiting approval by "+strings.Join(approvers, ", ")
	case policy.StateRejected:
		state, desc = StateFailure, "rejected by "+rec.DecidedBy
		if rec.Reason != "" {
			desc += ": " + rec.Reason
		}
	case policy.StateExpired:
		state, desc = StateError, "approval expired: nobody approved it by "+rec.Deadline.UTC().Format(time.RFC3339)
	default:
		return nil
	}
	var jobs []Job
	seen := map[string]bool{}
	for _, t := range rec.Targets {
		if seen[t.App+"/"+t.Trigger] {
			continue // one context per app and trigger
		}
		seen[t.App+"/"+t.Trigger] = true
		run := Run{UID: HeldUID(rec.Source, rec.Event.ID(), t.App, t.Trigger), Namespace: t.Namespace,
			App: t.App, Trigger: t.Trigger, Pipeline: t.PipelineRef, Source: rec.Source, Repository: repo, Revision: rev,
			EventID: rec.Event.ID(), EventSource: rec.Event.Source(), EventType: rec.Event.Type()}
		jobs = append(jobs, Job{Kind: KindStatus, State: state, Description: trimDescription(desc), Time: now,
			Run: run, Held: held, TimedOut: rec.State == policy.StateExpired})
	}
	return jobs
}

// HeldUID is the report key of a held target's status: a hash of the
// source, the event id, the app and the trigger (no run exists yet). The
// run an approval releases takes over its check run.
func HeldUID(source, eventID, app, trigger string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + eventID + "\x00" + app + "\x00" + trigger))
	return "held-" + hex.EncodeToString(sum[:16])
}

// stillAwaiting reports whether the held event of j still waits: an
// "awaiting approval" status found stale (approved, or decided) is not
// posted, so it never follows the run's own statuses.
func stillAwaiting(ctx context.Context, store ApprovalStore, j Job) (bool, error) {
	if store == nil {
		return true, nil
	}
	recs, err := store.Approvals(ctx, j.Run.Source, j.Run.EventID)
	if err != nil {
		if errors.Is(err, queue.ErrNotFound) {
			return false, nil // gone with the bucket's TTL: nothing waits
		}
		return false, err
	}
	for _, r := range recs {
		if r.State == policy.StateAwaitingApproval {
			return true, nil
		}
	}
	return false, nil
}
