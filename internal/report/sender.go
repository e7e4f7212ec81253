package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// DecisionRejected is the audit decision of a report the Git host refused.
const DecisionRejected = "report-rejected"

// SenderConfig configures a Sender.
type SenderConfig struct {
	// Rules returns the rules in force: a source's report setting, token
	// and API URL are read when a report is posted, so a rotated token is
	// used at once.
	Rules func() *routing.Rules
	// CDEvents, when set, sends the CDEvents jobs; without it they wait.
	CDEvents *CDEvents
	// HTTPClient posts statuses (default: a 10 s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
	Metrics    *Metrics
	// Audit, when set, records each report a Git host refused.
	Audit func(policy.Record)
	// Approvals, when set, is read before an "awaiting approval" status is
	// posted: one made stale by a decision is skipped.
	Approvals ApprovalStore
	// Workers posting in this process, per kind (default 4).
	Workers int
	// AckWait is how long a post may take before the report is handed to
	// another sender (default 30 s).
	AckWait time.Duration
	// MaxAttempts of a report failing with 5xx or no answer (default 50,
	// hours with the backoff capped at BackoffMax).
	MaxAttempts             int
	BackoffBase, BackoffMax time.Duration // default 1 s and 5 min, full jitter
}

// Sender posts the queued reports. Run it on every router: the consumers
// are shared, each report goes to one sender at a time.
type Sender struct {
	q      *Queue
	cfg    SenderConfig
	log    *slog.Logger
	checks *checks
}

// NewSender returns a Sender of q's reports.
func NewSender(q *Queue, cfg SenderConfig) *Sender {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 50
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	return &Sender{q: q, cfg: cfg, log: cfg.Logger.With("component", "report"), checks: newChecks(cfg.HTTPClient.Transport)}
}

// Run posts reports until ctx ends; it returns nil then (failures are
// retried and logged, never fatal).
func (s *Sender) Run(ctx context.Context) error {
	kinds := []string{KindStatus}
	if s.cfg.CDEvents != nil {
		kinds = append(kinds, KindCDEvent)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, kind := range kinds {
		cons, err := s.q.consumer(ctx, kind, s.cfg.AckWait)
		for err != nil {
			s.log.Warn("report consumer not ready: retrying", "kind", kind, "error", err.Error())
			if sleep(ctx, 2*time.Second); ctx.Err() != nil {
				return nil
			}
			cons, err = s.q.consumer(ctx, kind, s.cfg.AckWait)
		}
		workers := s.cfg.Workers
		if kind == KindCDEvent {
			workers = 1 // keeps a run's queued, started and finished in order here
		}
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.work(ctx, cons)
			}()
		}
	}
	return nil
}

// work fetches one report at a time and handles it, until ctx ends.
func (s *Sender) work(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("report fetch failed", "error", err.Error())
			sleep(ctx, time.Second)
			continue
		}
		for msg := range batch.Messages() {
			s.handle(ctx, msg)
		}
	}
}

// errBusy says the record is being written by another sender: try again soon.
type errBusy struct{ wait time.Duration }

func (e errBusy) Error() string { return "report busy" }

// handle posts one report and settles its message: ack when done or
// skipped, term when refused or out of attempts, nak with a delay to retry.
func (s *Sender) handle(ctx context.Context, msg jetstream.Msg) {
	var j Job
	if err := json.Unmarshal(msg.Data(), &j); err != nil {
		s.log.Error("report dropped: undecodable", "error", err.Error())
		_ = msg.Term()
		return
	}
	attempt := 1
	if meta, err := msg.Metadata(); err == nil {
		attempt = int(meta.NumDelivered)
	}
	postCtx, cancel := context.WithTimeout(ctx, s.cfg.AckWait*2/3)
	var provider, result string
	var err error
	if j.Kind == KindCDEvent {
		provider = ProviderCDEvents
		result, err = s.cfg.CDEvents.send(postCtx, s.q, j)
	} else {
		provider, result, err = s.postStatus(postCtx, j)
	}
	cancel()
	attrs := []any{"kind", j.Kind, "state", j.State, "app", j.Run.App, "trigger", j.Run.Trigger,
		"namespace", j.Run.Namespace, "pipelinerun", j.Run.Name, "event_id", j.Run.EventID, "provider", provider}
	var busy errBusy
	switch {
	case err == nil:
		s.cfg.Metrics.count(provider, result)
		s.log.Debug("report "+result, attrs...)
		_ = msg.Ack()
	case errors.As(err, &busy):
		_ = msg.NakWithDelay(busy.wait)
	case ctx.Err() != nil:
		_ = msg.Nak() // stopping: another sender takes it
	case permanent(err):
		s.cfg.Metrics.count(provider, ResultRejected)
		s.log.Error("report rejected: dropped", append(attrs, "error", err.Error())...)
		s.audit(j, err)
		_ = msg.Term()
	case attempt >= s.cfg.MaxAttempts:
		s.cfg.Metrics.count(provider, ResultGaveUp)
		s.log.Error("report failed: out of attempts, dropped", append(attrs, "attempts", attempt, "error", err.Error())...)
		_ = msg.Term()
	default:
		delay := backoff(attempt, s.cfg.BackoffBase, s.cfg.BackoffMax)
		s.cfg.Metrics.count(provider, ResultRetried)
		s.log.Warn("report failed: retrying", append(attrs, "attempt", attempt, "retry_in", delay.String(), "error", err.Error())...)
		_ = msg.NakWithDelay(delay)
	}
}

func (s *Sender) audit(j Job, err error) {
	if s.cfg.Audit == nil {
		return
	}
	rec := policy.Record{Time: time.Now().UTC(), Decision: DecisionRejected, Kind: "report", Source: j.Run.Source,
		EventID: j.Run.EventID, Type: j.Kind + ":" + j.State, Reason: err.Error()}
	var pe *PostError
	if errors.As(err, &pe) {
		rec.Status = pe.StatusCode
	}
	s.cfg.Audit(rec)
}

// stateRank orders states: pending before any final state.
func stateRank(state string) int {
	if state == StatePending {
		return 0
	}
	return 1
}

// postStatus posts a status job unless its run's record says it (or a
// later state) was posted already. It claims the record before posting, so
// two senders never post a run's states at once.
func (s *Sender) postStatus(ctx context.Context, j Job) (provider, result string, err error) {
	src := s.cfg.Rules().Source(j.Run.Source)
	if src == nil || src.Report == "" || j.Run.Revision == "" || j.Run.Repository == "" {
		return "", ResultSkipped, nil
	}
	newP, ok := providers[src.Kind]
	if !ok && src.Report != routing.ReportChecks {
		return "", ResultSkipped, nil
	}
	provider = src.Kind
	if j.awaiting() {
		if ok, err := stillAwaiting(ctx, s.cfg.Approvals, j); err != nil || !ok {
			return provider, ResultSkipped, err
		}
	}
	key := statusKey(j.Run.UID)
	rec, rev, found, err := s.q.get(ctx, key)
	if err != nil {
		return provider, "", err
	}
	if !found && j.Held == nil && src.Report == routing.ReportChecks {
		rec.CheckRunID = s.heldCheckRun(ctx, j.Run) // the released run updates the held target's check run
	}
	if found {
		if stateRank(j.State) < stateRank(rec.State) || (stateRank(j.State) == stateRank(rec.State) && rec.settled()) {
			return provider, ResultSkipped, nil
		}
		if age := time.Since(rec.Claimed); !rec.settled() && !rec.Claimed.IsZero() && age < s.cfg.AckWait {
			return provider, "", errBusy{wait: s.cfg.AckWait - age}
		}
	}
	claimed, err := s.q.swap(ctx, key, record{State: j.State, Claimed: time.Now().UTC(), CheckRunID: rec.CheckRunID}, rev)
	if errors.Is(err, errConflict) {
		return provider, "", errBusy{wait: 200 * time.Millisecond}
	}
	if err != nil {
		return provider, "", err
	}
	checkRun := rec.CheckRunID
	if src.Report == routing.ReportChecks {
		checkRun, err = s.checks.post(ctx, src, j, s.targetURL(j), checkRun)
	} else {
		err = s.post(ctx, newP, src, j)
	}
	done := record{State: j.State, Posted: err == nil, CheckRunID: checkRun}
	if permanent(err) {
		done.Rejected = err.Error()
	}
	// Settled, or released for a retry; a lost write only risks a repeat.
	if _, werr := s.q.swap(ctx, key, done, claimed); werr != nil {
		s.log.Warn("report record not written", "pipelinerun", j.Run.Name, "state", j.State, "error", werr.Error())
	}
	if err != nil {
		return provider, "", err
	}
	return provider, ResultPosted, nil
}

func (s *Sender) post(ctx context.Context, newP newPoster, src *routing.Source, j Job) error {
	p, err := newP(src, s.cfg.HTTPClient)
	if err != nil {
		return &PostError{StatusCode: http.StatusBadRequest, msg: fmt.Sprintf("source %s: %v", src.Name, err)}
	}
	return p.Post(ctx, Status{
		Repository: j.Run.Repository, Revision: j.Run.Revision, State: j.State, Cancelled: j.Cancelled,
		Context: j.Run.Context(), Description: j.Description,
		TargetURL: s.targetURL(j), RepositoryURL: j.Run.EventSource,
	})
}

// heldCheckRun returns the check run posted while run's target was held,
// or 0: a lookup failure only costs a second check run.
func (s *Sender) heldCheckRun(ctx context.Context, run Run) int64 {
	rec, _, found, err := s.q.get(ctx, statusKey(HeldUID(run.Source, run.EventID, run.App, run.Trigger)))
	if err != nil || !found {
		return 0
	}
	return rec.CheckRunID
}

// targetURL is the link of j's status: none for a held target, whose run
// does not exist.
func (s *Sender) targetURL(j Job) string {
	if j.Held != nil {
		return ""
	}
	return targetURL(s.cfg.Rules().StatusURL(), j.Run)
}

// targetURL fills in the root's statusURL for a run; "" without one.
func targetURL(tmpl string, r Run) string {
	if tmpl == "" {
		return ""
	}
	return routing.ExpandStatusURL(tmpl, map[string]string{
		"namespace": r.Namespace, "name": r.Name, "uid": r.UID, "app": r.App, "trigger": r.Trigger, "event": r.EventID,
	})
}

// backoff is the delay before attempt+1: uniform in
// [base, min(max, base*2^(attempt-1))].
func backoff(attempt int, base, maxDelay time.Duration) time.Duration {
	d := maxDelay
	if attempt < 30 {
		d = min(maxDelay, base<<(attempt-1))
	}
	if d <= base {
		return d
	}
	return base + rand.N(d-base)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
