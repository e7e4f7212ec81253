package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Approval gates: POST /v1/events/{id}/approve and .../reject release or
// drop the targets a gate holds. The approver authenticates like any
// endpoint caller (?endpoint=NAME picks the endpoint), before anything
// else is read; the body is never read, so an approval carries no
// parameters and cannot change what runs.

// ApprovalStore keeps held events (queue.Queue). Approvals returns those
// with an id (of source, or of any source when source is empty); none is
// an error with a NotFound() bool method. Decide approves or rejects; a
// decision the held event's state refuses (expired, decided otherwise)
// has a Conflict() bool method. HeldFor lists the events of a pull
// request awaiting approval, for /approve comments.
type ApprovalStore interface {
	Approvals(ctx context.Context, source, eventID string) ([]policy.Approval, error)
	Decide(ctx context.Context, d policy.ApprovalDecision) (policy.Approval, error)
	HeldFor(ctx context.Context, source, repo, number string) ([]policy.Approval, error)
}

// ApprovalResponse is the body of a decision's 200: the held event as it
// now stands.
type ApprovalResponse struct {
	ID        string      `json:"id"`
	Source    string      `json:"source"`
	State     string      `json:"state"`
	DecidedBy string      `json:"decidedBy,omitempty"`
	Decided   time.Time   `json:"decided,omitzero"`
	Deadline  time.Time   `json:"deadline"`
	Gates     []string    `json:"gates"`
	Targets   []TargetRef `json:"targets"`
}

// maxReasonLen bounds the optional ?reason= a decision records.
const maxReasonLen = 200

// handleDecision is POST /v1/events/{id}/approve (approve) or /reject.
func (s *Server) handleDecision(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out, ap, err := s.decide(r, approve)
		typ := ""
		if ap.Event.Context != nil {
			typ = ap.Event.Type()
		}
		rec := policy.Record{Kind: "approval", Source: policy.Truncate(ap.Source, policy.MaxNameLen), Remote: remoteHost(r),
			Identity: out.caller.Identity, Subject: out.caller.Principal, Status: out.status,
			EventID: policy.Truncate(r.PathValue("id"), policy.MaxNameLen), Type: typ, Rule: strings.Join(ap.Gates, ","), Targets: len(ap.Targets)}
		s.auditDecision(rec, ap, err)
		log := s.logger.With("event_id", rec.EventID, "status", out.status, "identity", out.caller.Identity, "principal", out.caller.Principal)
		if err != nil {
			s.logRefusal(log, "approval refused", err)
			if out.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard"`)
			}
			writeError(w, out, err)
			return
		}
		log.Info("approval decided", "state", ap.State)
		writeJSON(w, http.StatusOK, approvalResponse(ap))
	}
}

// decide authenticates, finds the held event, has policy judge the
// decider (and, to approve, the stored targets under the rules in force),
// and records the decision.
func (s *Server) decide(r *http.Request, approve bool) (outcome, policy.Approval, error) {
	var ap policy.Approval
	rules := s.cfg.Rules.Rules()
	if rules == nil || s.cfg.Approvals == nil {
		out, err := fail(ErrNotReady)
		return out, ap, err
	}
	c, err := s.authenticateAny(r, rules)
	if err != nil {
		out, err := fail(err)
		return out, ap, err
	}
	out := outcome{caller: c}
	if err := s.meter.Take(c, 1, s.now()); err != nil {
		out, err = out.fail(err)
		return out, ap, err
	}
	id := r.PathValue("id")
	found, err := s.cfg.Approvals.Approvals(r.Context(), r.URL.Query().Get("source"), id)
	switch {
	case isNotFound(err):
		err = fmt.Errorf("%w: no event %q awaits approval", ErrUnknownSource, policy.Truncate(id, policy.MaxNameLen))
	case err == nil && len(found) > 1:
		err = fmt.Errorf("%w: events of several sources have id %q: add ?source=NAME", ErrConflict, policy.Truncate(id, policy.MaxNameLen))
	case err == nil:
		ap = found[0]
		err = policy.MayDecide(rules, c, ap)
		if err == nil && approve {
			err = policy.JudgeStored(rules, ap.Source, &ap.Event, ap.Targets)
		}
	}
	if err != nil {
		out, err = out.fail(err)
		return out, ap, err
	}
	got, err := s.cfg.Approvals.Decide(r.Context(), policy.ApprovalDecision{Source: ap.Source, EventID: ap.Event.ID(), Approve: approve,
		By: policy.Decider(c), Reason: policy.Truncate(r.URL.Query().Get("reason"), maxReasonLen), Now: s.now()})
	if got.Source != "" {
		ap = got
	}
	if err != nil {
		out, err = out.fail(err)
		return out, ap, err
	}
	out.status = http.StatusOK
	return out, ap, nil
}

// ErrConflict: the request contradicts the state of what it names (409).
var ErrConflict error = conflictError("conflict")

type conflictError string

func (e conflictError) Error() string { return string(e) }
func (conflictError) Conflict() bool  { return true }

// authenticateAny authenticates the caller to ?endpoint=NAME, or to the
// first endpoint that accepts its token, as GET /v1/events/{id} does.
func (s *Server) authenticateAny(r *http.Request, rules *routing.Rules) (policy.Caller, error) {
	candidates := rules.Endpoints()
	if name := r.URL.Query().Get("endpoint"); name != "" {
		ep := rules.Endpoint(name)
		if ep == nil {
			return policy.Caller{}, fmt.Errorf("%w: no endpoint %q accepts this token", ErrUnauthorized, policy.Truncate(name, policy.MaxNameLen))
		}
		candidates = []*routing.Endpoint{ep}
	}
	err := fmt.Errorf("%w: no endpoint accepts this token", ErrUnauthorized)
	for _, ep := range candidates {
		c, _, aerr := authenticate(r.Context(), r.Header, ep)
		if aerr == nil {
			return c, nil
		}
		err = aerr
	}
	return policy.Caller{}, err
}

// auditDecision records a decision, or its refusal, with the decider.
func (s *Server) auditDecision(rec policy.Record, ap policy.Approval, err error) {
	if s.cfg.Audit == nil {
		return
	}
	switch {
	case err == nil && ap.State == policy.StateRejected:
		rec.Decision, rec.Reason = policy.DecisionRejected, ap.Reason
	case err == nil:
		rec.Decision, rec.Reason = policy.DecisionApproved, ap.Reason
	case ap.State == policy.StateExpired:
		rec.Decision, rec.Reason = policy.DecisionExpired, err.Error()
	default:
		rec.Decision, rec.Reason = policy.DecisionFor(rec.Status), err.Error()
		var d *policy.Denial
		if errors.As(err, &d) {
			rec.Rule, rec.Reason = d.Rule, d.Message
		}
		if rec.Identity == "" && !s.sampler.Keep(&rec, s.now()) {
			return
		}
	}
	s.cfg.Audit(rec)
}

func approvalResponse(ap policy.Approval) ApprovalResponse {
	resp := ApprovalResponse{ID: ap.Event.ID(), Source: ap.Source, State: ap.State, DecidedBy: ap.DecidedBy, Decided: ap.Decided,
		Deadline: ap.Deadline, Gates: ap.Gates, Targets: []TargetRef{}}
	for _, t := range ap.Targets {
		resp.Targets = append(resp.Targets, TargetRef{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name})
	}
	return resp
}

// heldCount is how many of e's targets an approval gate holds.
func heldCount(e EventResult) int {
	n := 0
	for _, t := range e.Targets {
		if t.State == policy.StateAwaitingApproval {
			n++
		}
	}
	return n
}
