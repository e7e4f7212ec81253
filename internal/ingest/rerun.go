package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// A check run's "Re-run" button. Switchyard's check runs (report: checks)
// carry a "rerun" action and an external_id naming the source, app,
// trigger and event; GitHub sends a click as a check_run webhook with
// action requested_action. It runs the target again with `router replay
// --force` semantics: the original event, judged again under the rules in
// force with its original sender's identity, as a new event whose id (and
// so its runs' names) derives from the click's delivery id. Only a login
// granted `retest` in the source's commands may click; every click is
// audited with the login.

// rerunIdentifier is report.RerunAction: the button's identifier.
const rerunIdentifier = "rerun"

// checkRunExternalPrefix starts report.CheckRunExternalID's external_id.
const checkRunExternalPrefix = "switchyard:v1:"

// EventFinder finds a stored event with its payload (*queue.Queue is one).
// Its errors have NotFound() for an event not (or no longer) stored, and
// Unavailable() for one a retry may heal.
type EventFinder interface {
	StoredEvent(ctx context.Context, source, eventID string) (event.Event, error)
}

// ParseCheckRunExternalID reads a Switchyard check run's external_id
// (report.CheckRunExternalID); ok is false for any other.
func ParseCheckRunExternalID(s string) (source, app, trigger, eventID string, ok bool) {
	rest, found := strings.CutPrefix(s, checkRunExternalPrefix)
	if !found {
		return "", "", "", "", false
	}
	p := strings.SplitN(rest, ":", 4)
	if len(p) != 4 || p[0] == "" || p[1] == "" || p[2] == "" || p[3] == "" {
		return "", "", "", "", false
	}
	return p[0], p[1], p[2], p[3], true
}

// githubCheckRunAction is the part of a check_run requested_action
// payload a Re-run reads.
type githubCheckRunAction struct {
	Action   string `json:"action"`
	CheckRun struct {
		HeadSHA    string `json:"head_sha"`
		ExternalID string `json:"external_id"`
		App        *struct {
			ID int64 `json:"id"`
		} `json:"app"`
	} `json:"check_run"`
	RequestedAction *struct {
		Identifier string `json:"identifier"`
	} `json:"requested_action"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Sender *struct {
		Login string `json:"login"`
	} `json:"sender"`
}

// rerunEvents returns the re-runs the Re-run clicks among events make. An
// error is one a retry may heal: the delivery is answered 503.
func (s *Server) rerunEvents(ctx context.Context, rules *routing.Rules, src *routing.Source, provider Provider, events []event.Event) ([]policy.Accepted, error) {
	if src.Kind != "github" {
		return nil, nil
	}
	var out []policy.Accepted
	for i := range events {
		ev := &events[i]
		var p githubCheckRunAction
		if ev.Type() != "com.github.check_run" || json.Unmarshal(ev.Data(), &p) != nil || p.Action != "requested_action" ||
			p.RequestedAction == nil || p.RequestedAction.Identifier != rerunIdentifier {
			continue
		}
		a, err := s.rerunCheck(ctx, rules, src, provider, ev, &p)
		if err != nil {
			return nil, err
		}
		if a != nil {
			out = append(out, *a)
		}
	}
	return out, nil
}

// rerunCheck runs one Re-run click, or ignores it with an audit record.
func (s *Server) rerunCheck(ctx context.Context, rules *routing.Rules, src *routing.Source, provider Provider, click *event.Event, p *githubCheckRunAction) (*policy.Accepted, error) {
	login := ""
	if p.Sender != nil {
		login = p.Sender.Login
	}
	id := "rerun-" + click.ID()
	rec := policy.Record{Kind: "command", Source: src.Name, Identity: policy.SourceIdentity(src.Name), Subject: login,
		EventID: id, Type: "check_run.rerun", Status: 202}
	source, app, trigger, origID, ok := ParseCheckRunExternalID(p.CheckRun.ExternalID)
	switch {
	case !ok || source != src.Name:
		s.auditCommand(rec, "not a check run of this source's Switchyard", nil)
		return nil, nil
	case src.GitHubApp == nil || p.CheckRun.App == nil || p.CheckRun.App.ID != src.GitHubApp.AppID:
		s.auditCommand(rec, "not a check run of the source's githubApp", nil)
		return nil, nil
	}
	teams, err := s.teamsOfProvider(ctx, src, provider, login)
	if err != nil {
		return nil, err
	}
	if err := policy.MayCommand(src, routing.CommandRetest, login, teams); err != nil {
		s.auditCommand(rec, "", err)
		return nil, nil
	}
	switch done, err := s.commandDone(ctx, src, id); {
	case err != nil:
		return nil, err
	case done:
		s.auditCommand(rec, "duplicate: this click ran before", nil)
		return nil, nil
	}
	a, why, err := s.rerunTarget(ctx, rules, src, p, id, origID, app, trigger)
	if errors.Is(err, ErrNotReady) {
		return nil, err // the queue: the delivery's retry runs it
	}
	if err != nil || a == nil {
		s.auditCommand(rec, why, err)
		return nil, nil
	}
	rec.Decision, rec.Targets = policy.DecisionAccepted, len(a.Targets)
	s.auditCommand(rec, fmt.Sprintf("re-runs %s/%s of event %s (check run Re-run by %s)", app, trigger, origID, login), nil)
	return a, nil
}

// teamsOfProvider is teamsOf for a provider that may not read comments.
func (s *Server) teamsOfProvider(ctx context.Context, src *routing.Source, provider Provider, login string) ([]string, error) {
	cp, ok := provider.(commentProvider)
	if !ok {
		return nil, nil
	}
	return s.teamsOf(ctx, src, cp, routing.CommandRetest, login)
}

// rerunTarget rebuilds the original event under id and routes and judges
// it for app/trigger only, with the original sender's identity. A nil
// Accepted says why nothing runs.
func (s *Server) rerunTarget(ctx context.Context, rules *routing.Rules, src *routing.Source, p *githubCheckRunAction, id, origID, app, trigger string) (*policy.Accepted, string, error) {
	if s.cfg.Events == nil {
		return nil, "this router keeps no events to run again", nil
	}
	orig, err := s.cfg.Events.StoredEvent(ctx, src.Name, origID)
	if isNotFound(err) {
		return nil, "event " + origID + " is no longer stored", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: look up event %s: %v", ErrNotReady, origID, err)
	}
	ext := orig.Extensions()
	if p.Repository == nil || ext["repository"] != p.Repository.FullName || ext["revision"] != p.CheckRun.HeadSHA {
		return nil, "the check run's repository or commit is not its event's", nil
	}
	ev := orig.Clone()
	ev.SetID(id)
	in := routing.Input{Source: src.Name, Event: &ev}
	if rules.UsesPaths() {
		in.Changes = ChangedFiles(src, &ev)
	}
	var targets []routing.Target
	for _, t := range rules.Route(in) {
		if t.App == app && t.Trigger == trigger {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Sprintf("%s/%s no longer matches event %s", app, trigger, origID), nil
	}
	// Judged as the original request: its sender, under the rules in force.
	if err := policy.JudgeStored(rules, src.Name, &ev, targets); err != nil {
		return nil, "", err
	}
	identity, _ := ext["identity"].(string)
	principal, _ := ext["principal"].(string)
	caller, err := policy.CallerOf(rules, identity, principal)
	if err != nil {
		return nil, "", err
	}
	req := policy.Request{Source: src.Name, Caller: caller, Event: &ev, Targets: targets}
	return &policy.Accepted{Source: src.Name, Event: ev, Targets: targets, Hold: policy.Gate(rules, req, s.now())}, "", nil
}
