package policy

import (
	"fmt"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Approval states of a held target, next to the dispatch states.
const (
	// StateAwaitingApproval: stored, held until an approver approves.
	StateAwaitingApproval = "awaiting-approval"
	// StateRejected: an approver rejected it; it never runs.
	StateRejected = "rejected"
	// StateExpired: nobody approved it in time; it never runs.
	StateExpired = "expired"
)

// Decisions on held events, as the audit trail names them.
const (
	DecisionAwaitingApproval = "awaiting-approval" // stored, its gated targets held
	DecisionApproved         = "approved"
	DecisionRejected         = "rejected"
	DecisionExpired          = "expired"
)

// Hold is what an approval gate holds of one event: the targets that wait
// (as app/trigger), the gates that hold them, and until when.
type Hold struct {
	Gates    []string
	Targets  []string
	Deadline time.Time
}

// Holds reports whether h holds target app/trigger.
func (h *Hold) Holds(app, trigger string) bool {
	return h != nil && slices.Contains(h.Targets, app+"/"+trigger)
}

// Gate returns what the approval gates in force hold of an event judged
// allowed (Judge): the gate of the endpoint it came through and the gates
// of the apps its targets belong to, each selecting targets by trigger or
// by the environment the run gets. Nil when nothing is held. When several
// gates hold targets of one event, its approver must be named by each.
func Gate(rules *routing.Rules, req Request, now time.Time) *Hold {
	var gates []*routing.Approval
	if ep := req.Caller.Endpoint; ep != nil && ep.Approval != nil {
		gates = append(gates, ep.Approval)
	}
	envExt, _ := req.Event.Extensions()["environment"].(string)
	var h Hold
	var timeout time.Duration
	for _, t := range req.Targets {
		envs := renderedParam(t, "environment")
		if envExt != "" {
			envs = append(envs, envExt)
		}
		held := false
		for _, g := range append(slices.Clip(gates), rules.AppApproval(t.App)) {
			if g == nil || !g.Selects(t.App, t.Trigger, envs) {
				continue
			}
			held = true
			if !slices.Contains(h.Gates, g.Rule) {
				h.Gates = append(h.Gates, g.Rule)
				if timeout == 0 || g.Timeout < timeout {
					timeout = g.Timeout
				}
			}
		}
		if held {
			h.Targets = append(h.Targets, t.App+"/"+t.Trigger)
		}
	}
	if len(h.Targets) == 0 {
		return nil
	}
	h.Deadline = now.Add(timeout).UTC()
	return &h
}

// Approval is a held event as the approvals store keeps it: the event (its
// attributes, no data), the held targets as rendered when it was accepted,
// who sent it, and what became of it. An approval changes none of it.
type Approval struct {
	Source    string           `json:"source"`
	Event     event.Event      `json:"event"`
	Targets   []routing.Target `json:"targets"`
	Gates     []string         `json:"gates"`
	Identity  string           `json:"identity,omitempty"`
	Principal string           `json:"principal,omitempty"`
	Requested time.Time        `json:"requested"`
	Deadline  time.Time        `json:"deadline"`
	// State is StateAwaitingApproval, StateQueued (approved and released),
	// StateRejected or StateExpired.
	State string `json:"state"`
	// DecidedBy is who decided ("endpoint:ops alice", "operator:root").
	DecidedBy string    `json:"decidedBy,omitempty"`
	Decided   time.Time `json:"decided,omitzero"`
	Reason    string    `json:"reason,omitempty"`
}

// ApprovalDecision is one decision on a held event.
type ApprovalDecision struct {
	Source, EventID string
	Approve         bool
	// By names who decided (Decider); Reason is optional, for people.
	By, Reason string
	// Now is the decision's time; zero means time.Now.
	Now time.Time
}

// MayDecide allows (nil) or denies (a *Denial naming the rule) caller c
// approving or rejecting held event a, under the rules in force: c must be
// an approver of every gate holding it, and never its sender.
func MayDecide(rules *routing.Rules, c Caller, a Approval) error {
	// The same principal through another endpoint is still the sender.
	if c.Identity == a.Identity && c.Principal == a.Principal || c.Principal != "" && c.Principal == a.Principal {
		return &Denial{Rule: "approval.self", Message: fmt.Sprintf("%s sent this event and may not decide on it: another approver must", Decider(c))}
	}
	if c.Endpoint == nil && c.Principal == "" {
		return &Denial{Rule: "approval", Message: "only a named person approves: an endpoint's caller or a source's user"}
	}
	if c.Endpoint != nil {
		if _, ok := c.Endpoint.CallerScope(c.Principal); !ok {
			return &Denial{Rule: "callers", Message: fmt.Sprintf("principal %q matches no caller of endpoint %q", c.Principal, c.Endpoint.Name)}
		}
	}
	for _, rule := range a.Gates {
		g := rules.Gate(rule)
		if g == nil {
			return &Denial{Rule: rule, Message: "this gate is no longer in the rules in force: an operator decides with router approve or router reject"}
		}
		if !g.IsApprover(c.Identity, c.Principal) {
			return &Denial{Rule: rule + ".approvers", Message: fmt.Sprintf("%s %s is not an approver of this gate", c.Identity, c.Principal)}
		}
	}
	return nil
}

// Decider names who decided, for records: the identity and the principal.
func Decider(c Caller) string {
	if c.Principal == "" {
		return c.Identity
	}
	return c.Identity + " " + c.Principal
}
