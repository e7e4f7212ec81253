package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Git comment commands. A verified comment event on a pull request may
// carry, one a line, /retest [trigger], /ok-to-test, /approve or /cancel
// [trigger]. Who may comment which is the source's `commands` grant in the
// root (policy.MayCommand); anything else is ignored with an audit record.
// Only a new comment runs commands (an edit never does), and each command
// makes an event whose id is the comment's id and the command, so a
// redelivered comment is deduplicated like any redelivery.

// prComment is a comment on a pull request.
type prComment struct {
	id       string // the host's comment id
	created  bool   // a new comment, not an edit or a deletion
	login    string // who commented
	body     string
	repo     string // owner/name, as the repository extension says
	number   string // the pull request's number
	byAuthor bool   // the commenter opened the pull request
}

// commentProvider is a provider whose comment events carry commands.
type commentProvider interface {
	// prComment reads the pull request comment ev (normalized) is, or nil
	// when it is not one.
	prComment(ev *event.Event) (*prComment, error)
	// pullRequestAt is the pull request's event at its current head, as
	// Normalize would make it, with id: what /retest and /ok-to-test run.
	pullRequestAt(ctx context.Context, src *routing.Source, c *prComment, ev *event.Event, id string) (*event.Event, error)
	// trustedPullRequest reports whether the host vouches for the author
	// of pull request event ev (a member or collaborator of the repository).
	trustedPullRequest(ev *event.Event) bool
}

// commandRE is one command line of a comment.
var commandRE = regexp.MustCompile(`(?m)^[ \t]*/(retest|cancel|ok-to-test|approve)(?:[ \t]+([a-z0-9][a-z0-9-]{0,62}))?[ \t]*\r?$`)

// command is one command of a comment, with its optional trigger.
type command struct{ name, trigger string }

// parseCommands returns the comment's commands, each once, in order.
func parseCommands(body string) []command {
	var out []command
	seen := map[command]bool{}
	for _, m := range commandRE.FindAllStringSubmatch(body, 16) {
		c := command{name: m[1], trigger: m[2]}
		if c.name == routing.CommandApprove || c.name == routing.CommandOkToTest {
			c.trigger = "" // they take none
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// commandEvents runs the commands of the comment events among events and
// returns what they store: the pull request events /retest and /ok-to-test
// make. /approve decides on the pull request's held events here. An error
// is one a retry may heal (the host's API, the queue): the delivery is
// answered 503 and its redelivery deduplicated.
func (s *Server) commandEvents(ctx context.Context, rules *routing.Rules, src *routing.Source, provider Provider, events []event.Event) ([]policy.Accepted, error) {
	cp, ok := provider.(commentProvider)
	if !ok || src.Commands == nil {
		return nil, nil
	}
	var out []policy.Accepted
	for i := range events {
		c, err := cp.prComment(&events[i])
		if err != nil || c == nil {
			continue // not a pull request comment: routed as any event
		}
		for _, cmd := range parseCommands(c.body) {
			rec := policy.Record{Kind: "command", Source: src.Name, Identity: policy.SourceIdentity(src.Name), Subject: c.login,
				EventID: commandID(c, cmd), Type: "/" + cmd.name, Status: 202}
			if !c.created {
				s.auditCommand(rec, "an edited comment runs no command", nil)
				continue
			}
			teams, err := s.teamsOf(ctx, src, cp, cmd.name, c.login)
			if err != nil {
				return nil, err
			}
			if err := policy.MayCommand(src, cmd.name, c.login, teams); err != nil {
				s.auditCommand(rec, "", err)
				continue
			}
			a, err := s.runCommand(ctx, rules, src, cp, &events[i], c, cmd, rec)
			if err != nil {
				return nil, err
			}
			out = append(out, a...)
		}
	}
	return out, nil
}

// teamMembers is a provider that can say which teams a login is in.
type teamMembers interface {
	// memberOf returns those of teams ("org/slug") login is an active
	// member of; an error a retry may heal has an Unavailable() method.
	memberOf(ctx context.Context, src *routing.Source, login string, teams []string) ([]string, error)
}

// teamsOf returns the teams granted command that login is a member of,
// asked of the host only when the login is not granted by name.
func (s *Server) teamsOf(ctx context.Context, src *routing.Source, cp commentProvider, command, login string) ([]string, error) {
	tm, ok := cp.(teamMembers)
	teams := src.Commands.Teams(command)
	if !ok || len(teams) == 0 || src.Commands.Allows(command, login, nil) {
		return nil, nil
	}
	member, err := tm.memberOf(ctx, src, login, teams)
	if err != nil && !isUnavailable(err) {
		s.logger.Warn("team membership not known", "source", src.Name, "login", login, "error", err.Error())
		return nil, nil // not known: not granted
	}
	return member, err
}

// commandID is the event id of a command: the comment's id and the command.
func commandID(c *prComment, cmd command) string {
	id := "comment-" + c.id + "-" + cmd.name
	if cmd.trigger != "" {
		id += "-" + cmd.trigger
	}
	return id
}

// runCommand runs one granted command.
func (s *Server) runCommand(ctx context.Context, rules *routing.Rules, src *routing.Source, cp commentProvider, ev *event.Event, c *prComment, cmd command, rec policy.Record) ([]policy.Accepted, error) {
	switch cmd.name {
	case routing.CommandRetest, routing.CommandOkToTest:
		a, err := s.rerun(ctx, rules, src, cp, ev, c, cmd, rec.EventID)
		if err != nil {
			if isUnavailable(err) {
				return nil, err
			}
			s.auditCommand(rec, "", err)
			return nil, nil
		}
		rec.Decision, rec.Targets = policy.DecisionAccepted, len(a.Targets)
		s.auditCommand(rec, fmt.Sprintf("re-runs pull request %s at %s", c.number, a.Event.Extensions()["revision"]), nil)
		return []policy.Accepted{a}, nil
	}
	// /approve and /cancel store no run: a marker event records that the
	// command ran, so a redelivered comment does not run it again.
	switch done, err := s.commandDone(ctx, src, rec.EventID); {
	case err != nil:
		return nil, err
	case done:
		s.auditCommand(rec, "duplicate: this comment's command ran before", nil)
		return nil, nil
	}
	var err error
	if cmd.name == routing.CommandApprove {
		err = s.approveComment(ctx, rules, src, c, rec)
	} else {
		err = s.cancelComment(ctx, src, c, cmd, rec)
	}
	if err != nil {
		return nil, err
	}
	marker := ev.Clone()
	marker.SetID(rec.EventID)
	marker.SetExtension("command", cmd.name)
	return []policy.Accepted{{Source: src.Name, Event: marker}}, nil
}

// commandDone reports whether the command event id was stored before.
func (s *Server) commandDone(ctx context.Context, src *routing.Source, id string) (bool, error) {
	if s.cfg.Status == nil {
		return false, nil
	}
	_, err := s.cfg.Status.Status(ctx, src.Name, id)
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("%w: look up command %s: %v", ErrNotReady, id, err)
	}
}

// Canceller cancels the running PipelineRuns of a pull request's events
// (trigger only, when not empty) and says how many it cancelled. A
// failure a retry may heal has an Unavailable() bool method. cmd/router
// implements it with the Kubernetes API; ingest never talks to it.
type Canceller interface {
	CancelPullRequest(ctx context.Context, source, repo, number, trigger string) (int, error)
}

// cancelComment runs /cancel [trigger].
func (s *Server) cancelComment(ctx context.Context, src *routing.Source, c *prComment, cmd command, rec policy.Record) error {
	if s.cfg.Cancel == nil {
		s.auditCommand(rec, "this router dispatches to no cluster: nothing to cancel", nil)
		return nil
	}
	n, err := s.cfg.Cancel.CancelPullRequest(ctx, src.Name, c.repo, c.number, cmd.trigger)
	if isUnavailable(err) {
		return err
	}
	if err == nil {
		rec.Decision, rec.Targets = policy.DecisionAccepted, n
	}
	s.auditCommand(rec, fmt.Sprintf("cancelled %d PipelineRuns of pull request %s", n, c.number), err)
	return nil
}

// rerun makes the pull request's event at its head for /retest and
// /ok-to-test, routes it to the pull request triggers (only trigger, when
// the comment names one) and has policy judge it like any event.
func (s *Server) rerun(ctx context.Context, rules *routing.Rules, src *routing.Source, cp commentProvider, ev *event.Event, c *prComment, cmd command, id string) (policy.Accepted, error) {
	pr, err := cp.pullRequestAt(ctx, src, c, ev, id)
	if err != nil {
		return policy.Accepted{}, err
	}
	targets := rules.Route(RouteInput(rules, src, pr, nil))
	if cmd.trigger != "" {
		kept := targets[:0]
		for _, t := range targets {
			if t.Trigger == cmd.trigger {
				kept = append(kept, t)
			}
		}
		targets = kept
	}
	req := policy.Request{Source: src.Name, Caller: policy.SourceCaller(src.Name), Event: pr, Targets: targets}
	if err := policy.Judge(rules, req); err != nil {
		return policy.Accepted{}, err
	}
	return policy.Accepted{Source: src.Name, Event: *pr, Targets: targets, Hold: policy.Gate(rules, req, s.now())}, nil
}

// approveComment approves the pull request's held events for the
// commenter, when every gate holding them names source:<name>/<login> and
// the commenter did not open the pull request.
func (s *Server) approveComment(ctx context.Context, rules *routing.Rules, src *routing.Source, c *prComment, rec policy.Record) error {
	if s.cfg.Approvals == nil {
		s.auditCommand(rec, "this router keeps no approvals", nil)
		return nil
	}
	held, err := s.cfg.Approvals.HeldFor(ctx, src.Name, c.repo, c.number)
	if err != nil {
		return err
	}
	if len(held) == 0 {
		s.auditCommand(rec, "nothing of pull request "+c.number+" awaits approval", nil)
	}
	caller := policy.Caller{Identity: policy.SourceIdentity(src.Name), Principal: c.login}
	for _, ap := range held {
		r := rec
		r.EventID, r.Rule = ap.Event.ID(), strings.Join(ap.Gates, ",")
		err := policy.MayDecide(rules, caller, ap)
		actor, _ := ap.Event.Extensions()["actor"].(string)
		if err == nil && (c.byAuthor || strings.EqualFold(c.login, actor)) {
			err = &policy.Denial{Rule: "approval.self", Message: c.login + " opened or updated this pull request and may not approve its runs"}
		}
		if err == nil {
			err = policy.JudgeStored(rules, ap.Source, &ap.Event, ap.Targets)
		}
		if err == nil {
			_, err = s.cfg.Approvals.Decide(ctx, policy.ApprovalDecision{Source: ap.Source, EventID: ap.Event.ID(), Approve: true, By: policy.Decider(caller), Now: s.now()})
		}
		if isUnavailable(err) {
			return err
		}
		if err == nil {
			r.Decision = policy.DecisionApproved
		}
		s.auditCommand(r, "approved by comment", err)
	}
	return nil
}

// auditCommand records what became of a command: done (rec.Decision set),
// refused (err) or ignored (why).
func (s *Server) auditCommand(rec policy.Record, why string, err error) {
	s.logger.Info("comment command", "source", rec.Source, "login", rec.Subject, "command", rec.Type, "event_id", rec.EventID, "why", why, "error", errString(err))
	if s.cfg.Audit == nil {
		return
	}
	rec.Reason = why
	var d *policy.Denial
	switch {
	case errors.As(err, &d):
		rec.Decision, rec.Rule, rec.Reason = policy.DecisionIgnored, d.Rule, d.Message
	case err != nil:
		rec.Decision, rec.Reason = policy.DecisionIgnored, err.Error()
	case rec.Decision == "":
		rec.Decision = policy.DecisionIgnored
	}
	s.cfg.Audit(rec)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// holdUntrusted drops the targets of a pull request event whose author
// the host does not vouch for, on a source whose commands hold them: they
// run when a granted commenter says /ok-to-test.
func (s *Server) holdUntrusted(src *routing.Source, provider Provider, ev *event.Event, targets []routing.Target) []routing.Target {
	cp, ok := provider.(commentProvider)
	if !ok || len(targets) == 0 || !src.Commands.HoldsUntrusted() || ev.Type() != TypeGitPullRequest || cp.trustedPullRequest(ev) {
		return targets
	}
	s.logger.Info("pull request waits for /ok-to-test", "source", src.Name, "event_id", ev.ID(), "targets", len(targets))
	return nil
}

// apiCall is a GET of a Git host's API: its URL, Accept header and
// Authorization value (which never appears in an error).
type apiCall struct{ url, accept, auth string }

// pullRequestEvent reads a pull request from the host's API (its head moves
// with every push) and normalizes it, with the comment's repository and
// sender, as the host's pull request delivery id with action: the event a
// /retest or /ok-to-test runs. eventHeader and deliveryHeader are the
// host's header names.
func pullRequestEvent(ctx context.Context, call apiCall, c *prComment, comment *event.Event, action string,
	normalize func(*Request) (Result, error), eventHeader, deliveryHeader, id string) (*event.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, githubAPITimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, call.url, nil)
	if err != nil {
		return nil, fmt.Errorf("pull request %s: %w", c.number, err)
	}
	req.Header.Set("Accept", call.accept)
	req.Header.Set("Authorization", call.auth)
	body, err := readAPI(req)
	if err != nil {
		return nil, fmt.Errorf("pull request %s: %w", c.number, err)
	}
	var from struct {
		Repository json.RawMessage `json:"repository"`
		Sender     json.RawMessage `json:"sender"`
	}
	if err := json.Unmarshal(comment.Data(), &from); err != nil {
		return nil, fmt.Errorf("comment payload: %w", err)
	}
	payload, err := json.Marshal(map[string]any{"action": action, "number": json.Number(c.number),
		"pull_request": json.RawMessage(body), "repository": from.Repository, "sender": from.Sender})
	if err != nil {
		return nil, fmt.Errorf("pull request %s: the API's answer is not JSON: %w", c.number, err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(eventHeader, "pull_request")
	h.Set(deliveryHeader, id)
	res, err := normalize(&Request{Body: payload, Header: h})
	if err != nil || len(res.Events) != 1 {
		return nil, fmt.Errorf("pull request %s: %v", c.number, err)
	}
	return &res.Events[0], nil
}
