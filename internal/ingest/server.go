package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// DefaultMaxBody is GitHub's own maximum webhook payload, 25 MiB.
const DefaultMaxBody = 25 << 20

// retryAfter is what a 503 tells the sender to wait, in seconds.
const retryAfter = 5

// Publisher stores what policy accepted durably. Publish returns nil only
// after every message was acknowledged; a failure a retry may heal has an
// Unavailable() bool method that returns true (queue.ErrUnavailable); an
// event stored before is a success reported by an error with an
// AlreadyStored() bool method that returns true (queue.ErrAlreadyStored).
type Publisher interface {
	Publish(ctx context.Context, a policy.Accepted) error
}

// RulesSource returns the rules in force; a reload swaps them atomically.
// LastError is the last failed reload's error (nil after a good one): the
// old rules stay in force, and /readyz says so.
type RulesSource interface {
	Rules() *routing.Rules
	LastError() error
}

// Config builds a Server.
type Config struct {
	Rules     RulesSource
	Publisher Publisher
	Logger    *slog.Logger
	// MaxBody caps request bodies; DefaultMaxBody when zero. A source's
	// maxBodyBytes and an endpoint's scope lower it.
	MaxBody int64
	// MaxInflight caps the bytes of all bodies held at once;
	// DefaultMaxInflight when zero.
	MaxInflight int64
	// Ready reports whether the queue can take writes, for /readyz.
	Ready func(ctx context.Context) error
	// Metrics, when set, serves GET /metrics.
	Metrics http.Handler
	// Audit, when set, receives every decision policy names (queue.Queue.Audit).
	Audit func(policy.Record)
	// Status, when set, serves GET /v1/events/{id}.
	Status StatusReader
	// Runs, when set, fills in how each created run is doing (running,
	// succeeded, failed) for GET /v1/events/{id}, after the caller was
	// found allowed to read the event (report.RunStates).
	Runs RunStateReader
	// ReadyDetail, when set, adds notes to a ready /readyz (a hook the Git
	// host disabled); it never makes the router unready.
	ReadyDetail func() map[string]string
	// Approvals, when set, serves POST /v1/events/{id}/approve and /reject.
	Approvals ApprovalStore
	// Cancel, when set, runs /cancel comment commands.
	Cancel Canceller
	// Events, when set, finds the event a check run's Re-run runs again.
	Events EventFinder
	// Deferrer, when set, stores the webhooks of a burst as they came, to
	// be judged behind their 202 (Judge): while more than DeferAbove
	// webhooks are being answered at once (0: never).
	Deferrer   Deferrer
	DeferAbove int
}

// Server is the HTTP front of the router.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	mux      *http.ServeMux
	draining atomic.Bool
	meter    policy.Meter
	sampler  *policy.Sampler
	bodies   *bodyBudget
	// now is the clock of rate limits and audit sampling (a test sets it).
	now func() time.Time
	// hooksInflight counts the webhooks being answered, busyUntil is
	// when the last burst ends (UnixNano) (Busy).
	hooksInflight, busyUntil atomic.Int64
	// burstAbove is Config.DeferAbove when there is a Deferrer, else 0
	// (no bursts).
	burstAbove int64
	// deferAll defers every webhook a Deferrer may take (tests).
	deferAll bool
	// deferredBody is the 202 of a deferred webhook for the latest rules
	// revision, encoded once.
	deferredBody atomic.Pointer[encodedAnswer]
}

// Drain makes /readyz answer 503 from now on, so a load balancer stops
// sending new requests before the listener closes; requests that still
// arrive are served normally.
func (s *Server) Drain() { s.draining.Store(true) }

// NewServer builds the HTTP handler for webhooks and probes.
func NewServer(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, logger: cfg.Logger.With("component", "ingest"), mux: http.NewServeMux(), now: time.Now, burstAbove: burstAbove(cfg),
		// Unauthenticated decisions: 20 a second on average, bursts of 200.
		sampler: policy.NewSampler(20, 200), bodies: newBodyBudget(max(cfg.MaxInflight, cfg.MaxBody))}
	s.mux.HandleFunc("POST /v1/hooks/{source}", s.handleHook)
	// Senders that cannot sign or set headers put a token in the path; it
	// is compared in constant time and never logged.
	s.mux.HandleFunc("POST /v1/hooks/{source}/{token}", s.handleHook)
	// The CloudEvents webhook validation handshake (Azure Event Grid with
	// the CloudEvents schema) probes the hook URL with OPTIONS.
	s.mux.HandleFunc("OPTIONS /v1/hooks/{source}", s.handleHandshake)
	s.mux.HandleFunc("OPTIONS /v1/hooks/{source}/{token}", s.handleHandshake)
	s.mux.HandleFunc("POST /v1/events/{endpoint}", s.handleEvents)
	s.mux.HandleFunc("GET /v1/events/{id}", s.handleEventStatus)
	s.mux.HandleFunc("POST /v1/events/{id}/approve", s.handleDecision(true))
	s.mux.HandleFunc("POST /v1/events/{id}/reject", s.handleDecision(false))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	// What no route takes gets a JSON 404 or 405, like every other error.
	s.mux.HandleFunc("/", s.handleUnrouted)
	return s
}

// routeMethods are the methods handleUnrouted offers in a 405's Allow.
var routeMethods = []string{http.MethodGet, http.MethodPost, http.MethodOptions}

// handleUnrouted answers a request no route takes: 405 with Allow when the
// path has routes for other methods, else 404.
func (s *Server) handleUnrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range routeMethods {
		probe := *r
		probe.Method = m
		if _, pattern := s.mux.Handler(&probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Error: fmt.Sprintf("method %s not allowed here: use %s",
			policy.Truncate(r.Method, policy.MaxNameLen), strings.Join(allow, " or "))})
		return
	}
	writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "not found: webhooks go to POST /v1/hooks/{source}, agents' events to POST /v1/events/{endpoint}"})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// TargetRef is a matched target as the sender sees it in a 202.
type TargetRef struct {
	App       string `json:"app"`
	Trigger   string `json:"trigger"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// State is set for a target an approval gate holds: awaiting-approval.
	State string `json:"state,omitempty"`
}

// EventResult is one accepted event and what it fired.
type EventResult struct {
	ID      string      `json:"id"`
	Type    string      `json:"type"`
	Targets []TargetRef `json:"targets"`
	// Duplicate says the event was stored before (a redelivery): nothing
	// new was queued, and its targets run once. ID and Targets are then
	// the stored event's: for a captured body replayed under a new
	// delivery id, the first delivery's.
	Duplicate bool `json:"duplicate,omitempty"`
	// sentID is the id the request carried, when ID is another one's.
	sentID string
}

// AcceptedResponse is the body of a 202. For a request carrying one event,
// ID, Type and Targets describe it; Events lists every event of the request.
type AcceptedResponse struct {
	EventResult
	Events []EventResult `json:"events,omitempty"`
	// RulesRevision is the revision of the rules that routed the request
	// (routing.Rules.Revision).
	RulesRevision string `json:"rulesRevision,omitempty"`
	// Deferred says the router was answering a burst: the webhook was
	// verified and stored as it came, and is routed and judged behind
	// this answer (no id, type or targets yet; once judged, the audit
	// trail and GET /v1/events/{id} show the outcome).
	Deferred bool `json:"deferred,omitempty"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Rule is the endpoint scope rule that refused the request (403).
	Rule string `json:"rule,omitempty"`
}

func (s *Server) handleHook(w http.ResponseWriter, r *http.Request) {
	s.noteBurst(s.hooksInflight.Add(1))
	defer s.hooksInflight.Add(-1)
	name := policy.Truncate(r.PathValue("source"), policy.MaxNameLen)
	out, err := s.accept(r, r.PathValue("source"))
	if err == nil && out.deferred {
		// Audited and logged when it is judged: one line per webhook, and
		// none written in the middle of a burst.
		s.logger.Debug("webhook deferred", "source", name, "bytes", r.ContentLength)
		s.writeDeferred(w, out.rulesRevision)
		return
	}
	rec := policy.Record{Kind: "webhook", Source: name, Remote: remoteHost(r), Identity: out.caller.Identity, SecretLine: out.secretLine}
	s.audit(rec, out, err)
	// The path token is never logged: only the source name is.
	log := s.logger.With("source", name, "status", out.status)
	if err != nil {
		s.logRefusal(log, "webhook refused", err)
		writeError(w, out, err)
		return
	}
	s.logAccepted(log, out)
	switch {
	case out.reply != nil:
		log.Info("webhook answered", "reply_status", out.reply.Status)
		writeReply(w, out.reply)
	case out.status == http.StatusOK:
		log.Info("webhook ping")
		writeJSON(w, out.status, map[string]string{"status": "pong"})
	default:
		writeAccepted(w, out)
	}
}

// logAccepted logs each event a webhook stored.
func (s *Server) logAccepted(log *slog.Logger, out outcome) {
	for _, e := range out.events {
		msg := "webhook accepted"
		if e.Duplicate {
			msg = "webhook duplicate"
		}
		if e.sentID != "" {
			log.Info(msg, "event_id", e.sentID, "duplicate_of", e.ID, "type", e.Type, "targets", len(e.Targets))
			continue
		}
		log.Info(msg, "event_id", e.ID, "type", e.Type, "targets", len(e.Targets))
	}
}

// logDetailer is an error whose public text leaves out what only the
// operator should see (an identity provider's network error).
type logDetailer interface{ LogDetail() string }

// logRefusal logs a refused request, with the detail the answer leaves out.
func (s *Server) logRefusal(log *slog.Logger, msg string, err error) {
	var d logDetailer
	if errors.As(err, &d) {
		log.Info(msg, "error", err.Error(), "detail", d.LogDetail())
		return
	}
	log.Info(msg, "error", err.Error())
}

// writeError answers a refused request: the error, the rule that refused
// it, and when to retry.
func writeError(w http.ResponseWriter, out outcome, err error) {
	switch out.status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(out.retryAfter))
	}
	body := ErrorResponse{Error: err.Error()}
	var d *policy.Denial
	if errors.As(err, &d) {
		body.Rule = d.Rule
	}
	writeJSON(w, out.status, body)
}

// writeAccepted answers a 202: the first (or only) event's id, type and
// targets, and every event when there are several.
func writeAccepted(w http.ResponseWriter, out outcome) {
	resp := AcceptedResponse{Events: out.events, RulesRevision: out.rulesRevision}
	if len(out.events) > 0 {
		resp.EventResult = out.events[0]
	}
	if len(out.events) <= 1 {
		resp.Events = nil
	}
	if resp.Targets == nil {
		resp.Targets = []TargetRef{}
	}
	writeJSON(w, out.status, resp)
}

// audit records the decision on one request, rec saying who sent what
// where: one record per stored event, or one for a refusal or a request
// that stored nothing. Records of requests nobody authenticated are
// sampled (policy.Sampler), so a flood cannot fill the audit stream.
func (s *Server) audit(rec policy.Record, out outcome, err error) {
	if s.cfg.Audit == nil {
		return
	}
	rec.Status, rec.RulesRevision = out.status, out.rulesRevision
	if err != nil {
		rec.EventID, rec.Type = out.eventID, out.eventType
		rec.Decision, rec.Reason = policy.DecisionFor(out.status), err.Error()
		var d *policy.Denial
		if errors.As(err, &d) {
			rec.Rule, rec.Reason = d.Rule, d.Message
		}
		if s.sampler.Keep(&rec, s.now()) {
			s.cfg.Audit(rec)
		}
		return
	}
	rec.Decision = policy.DecisionAccepted
	if len(out.events) == 0 {
		rec.Reason = "nothing to store (ping, handshake, or an event the provider ignores)"
		if s.sampler.Keep(&rec, s.now()) {
			s.cfg.Audit(rec)
		}
		return
	}
	for _, e := range out.events {
		a := rec
		a.EventID, a.Type, a.Targets = e.ID, e.Type, len(e.Targets)
		if e.Duplicate {
			a.Reason = "duplicate"
		}
		if e.sentID != "" {
			// Audited under the id sent: a replay is the sender's act.
			a.EventID, a.Reason = e.sentID, "duplicate of event "+e.ID+" (the same signed body under another delivery id)"
		}
		if held := heldCount(e); held > 0 && !e.Duplicate {
			a.Decision, a.Reason = policy.DecisionAwaitingApproval, fmt.Sprintf("%d of %d targets await approval", held, len(e.Targets))
		}
		s.cfg.Audit(a)
	}
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// handleHandshake answers a sender's OPTIONS probe for providers that
// define one; it stores nothing and needs no credential, since it can
// neither accept an event nor reveal anything but that the hook exists.
func (s *Server) handleHandshake(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("source")
	rules := s.cfg.Rules.Rules()
	if rules == nil {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: ErrNotReady.Error()})
		return
	}
	src := rules.Source(name)
	if src == nil {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: s.unknownName("source", name).Error()})
		return
	}
	p, _ := Lookup(src.Kind)
	hs, ok := p.(Handshaker)
	if !ok {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Error: fmt.Sprintf("source %q (kind %s) takes POST only", name, src.Kind)})
		return
	}
	reply := hs.Handshake(r.Header)
	s.logger.Info("webhook handshake", "source", name, "status", reply.Status)
	writeReply(w, reply)
}

func writeReply(w http.ResponseWriter, r *Reply) {
	for k, vs := range r.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if len(r.Body) > 0 && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

// outcome is what accept decided: the status, who authenticated, the
// events stored, and a provider-specific reply if the provider asked for
// one.
type outcome struct {
	status int
	caller policy.Caller
	events []EventResult
	reply  *Reply
	// retryAfter is the Retry-After of a 429, in seconds.
	retryAfter int
	// eventID and eventType name the event a refusal is about, when one
	// was read.
	eventID, eventType string
	// rulesRevision is the revision of the rules that judged the request.
	rulesRevision string
	// tokenLine is the line of the endpoint's static token that matched.
	tokenLine int
	// secretLine is the line of the source's secret that verified it.
	secretLine int
	// deferred says the webhook was stored as it came, to be judged
	// behind the 202 (Judge): audited and logged then, not now.
	deferred bool
	// answered is when a deferred webhook got its 202 (Judge).
	answered time.Time
}

// accept runs one webhook through verify, normalize, route, judge and
// publish, and returns the status to answer.
func (s *Server) accept(r *http.Request, name string) (outcome, error) {
	rules := s.cfg.Rules.Rules()
	if rules == nil {
		return fail(ErrNotReady)
	}
	src := rules.Source(name)
	if src == nil {
		return fail(s.unknownName("source", name))
	}
	provider, ok := Lookup(src.Kind)
	if !ok {
		// Load validates kinds against the registry, so this means the
		// binary and the rules disagree: refuse rather than guess.
		return fail(fmt.Errorf("%w: source %q has unknown kind %q", ErrUnknownSource, name, src.Kind))
	}
	if _, ok := provider.(pathTokenProvider); !ok && r.PathValue("token") != "" {
		return fail(fmt.Errorf("%w: source %q (kind %s) does not take a token in the path: POST /v1/hooks/%s", ErrUnknownSource, name, src.Kind, name))
	}
	req, release, err := s.readVerified(r, src, provider)
	defer release()
	if err != nil {
		return fail(err)
	}
	out := outcome{caller: policy.SourceCaller(src.Name), rulesRevision: rules.Revision(), secretLine: src.SecretLine(req.SecretLine)}
	if s.deferNow(provider) {
		return s.deferRequest(r, rules, src, req, out)
	}
	return s.judge(r.Context(), rules, src, provider, req, out)
}

// judge runs a verified webhook through normalize, route, judge and
// publish, and returns the status to answer: at once, or behind a 202 the
// router answered while busy (Judge).
func (s *Server) judge(ctx context.Context, rules *routing.Rules, src *routing.Source, provider Provider, req *Request, out outcome) (outcome, error) {
	res, err := provider.Normalize(req)
	if err != nil {
		return out.fail(err)
	}
	if res.Ping {
		out.status = http.StatusOK
		return out, nil
	}
	// Every event is checked before the first is stored, so a delivery is
	// taken whole or refused whole.
	for i := range res.Events {
		if err := res.Events[i].Validate(); err != nil {
			return out.fail(fmt.Errorf("%w: the payload does not make a valid event: %v", ErrMalformed, err))
		}
	}
	accepted := make([]policy.Accepted, len(res.Events))
	for i := range res.Events {
		ev := &res.Events[i]
		carryTrace(req.Header, ev)
		in := RouteInput(rules, src, ev, req.Header)
		targets := s.holdUntrusted(src, provider, ev, rules.Route(in))
		if err := policy.Judge(rules, policy.Request{Source: src.Name, Caller: out.caller, Event: ev, Targets: targets}); err != nil {
			out.eventID, out.eventType = ev.ID(), ev.Type()
			return out.fail(fmt.Errorf("event %q: %w", ev.ID(), err))
		}
		accepted[i] = policy.Accepted{Source: src.Name, Event: *ev, Targets: targets,
			Hold: policy.Gate(rules, policy.Request{Source: src.Name, Caller: out.caller, Event: ev, Targets: targets}, s.now())}
	}
	cmds, err := s.commandEvents(ctx, rules, src, provider, res.Events)
	if err != nil {
		return out.fail(err)
	}
	accepted = append(accepted, cmds...)
	reruns, err := s.rerunEvents(ctx, rules, src, provider, res.Events)
	if err != nil {
		return out.fail(err)
	}
	accepted = append(accepted, reruns...)
	if _, ok := provider.(BodySigned); ok {
		setBodyDigests(accepted, req.Body)
	}
	for i := range accepted {
		accepted[i].Answered = out.answered
	}
	if err := s.publish(ctx, accepted, &out); err != nil {
		// Events published before this one are stored; the sender's retry
		// is deduplicated, so answering 503 loses nothing.
		return out.fail(err)
	}
	out.status, out.reply = http.StatusAccepted, res.Reply
	return out, nil
}

// readVerified checks a credential carried in the headers or the path
// before the body is read (an unauthenticated post then costs no body
// memory), reads the body within the source's cap and the in-flight
// budget, and verifies it. release returns the body's share of the budget.
func (s *Server) readVerified(r *http.Request, src *routing.Source, provider Provider) (req *Request, release func(), err error) {
	req = &Request{Header: r.Header, PathToken: r.PathValue("token")}
	if ev, ok := provider.(EarlyVerifier); ok {
		if err := ev.VerifyBeforeBody(req, src); err != nil {
			return nil, func() {}, err
		}
	}
	limit := s.cfg.MaxBody
	if src.MaxBodyBytes > 0 {
		limit = min(limit, src.MaxBodyBytes)
	}
	if req.Body, release, err = s.bodies.readBody(r, limit); err != nil {
		return nil, release, err
	}
	return req, release, provider.Verify(req, src)
}

// setBodyDigests marks the events of a body whose signature covers only
// the body: a captured body replayed with a new delivery id is the same
// delivery. The events one body makes (a push of several refs) are told
// apart by position.
func setBodyDigests(accepted []policy.Accepted, body []byte) {
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	for i := range accepted {
		accepted[i].BodyDigest = digest + "/" + strconv.Itoa(i)
	}
}

// RouteInput is the routing sequence every path shares (webhooks and
// explain): the event is stamped with the source's identity and the changed
// files are read from the payload when some rule reads paths. It does no
// I/O: a list the payload may have cut is left for dispatch to complete
// (ChangedFiles). Routing itself strips credential headers before any
// condition or binding reads them (routing.Rules.StripCredentials).
func RouteInput(rules *routing.Rules, src *routing.Source, ev *event.Event, header http.Header) routing.Input {
	ev.SetExtension("identity", policy.SourceIdentity(src.Name))
	in := routing.Input{Source: src.Name, Event: ev, Header: header, DataIsJSON: dataIsJSON(ev)}
	if rules.UsesPaths() {
		in.Changes = ChangedFiles(src, ev)
	}
	return in
}

// publish stores every accepted event, recording each in out as it is
// stored.
func (s *Server) publish(ctx context.Context, accepted []policy.Accepted, out *outcome) error {
	for _, a := range accepted {
		err := s.cfg.Publisher.Publish(ctx, a)
		var stored alreadyStored
		dup := errors.As(err, &stored) && stored.AlreadyStored()
		if err != nil && !dup {
			return err
		}
		res := resultOf(a)
		if dup {
			res.Duplicate = true
			storedAs(&res, a, err)
		}
		out.events = append(out.events, res)
	}
	return nil
}

// alreadyStored is the publisher's "stored before" answer to a redelivery
// (queue.ErrAlreadyStored): a success.
type alreadyStored interface{ AlreadyStored() bool }

// storedBefore is a "stored before" answer that says what was stored
// (queue.StoredBefore).
type storedBefore interface {
	StoredEvent() (id string, targets []routing.Target)
}

// storedAs makes res, the answer to a redelivery, name the event stored
// before, with its id and run names, when the publisher says which it was:
// a body-signed delivery replayed under a new delivery id is the first
// delivery, whose runs are the ones that exist.
func storedAs(res *EventResult, a policy.Accepted, err error) {
	var sb storedBefore
	if !errors.As(err, &sb) {
		return
	}
	id, targets := sb.StoredEvent()
	if id == "" {
		return
	}
	stored := resultOf(policy.Accepted{Event: a.Event, Targets: targets, Hold: a.Hold})
	res.Targets = stored.Targets
	if id != res.ID {
		res.ID, res.sentID = id, res.ID
	}
}

// unknownName is the 404 for a source or endpoint the rules in force do not
// have. After a failed reload the name may be in the files without being in
// force, so the answer says so (/readyz tells the same to anyone).
func (s *Server) unknownName(what, name string) error {
	err := fmt.Errorf("%w: no %s named %q", ErrUnknownSource, what, policy.Truncate(name, policy.MaxNameLen))
	if s.cfg.Rules.LastError() != nil {
		return fmt.Errorf("%w (the last reload of the rules failed, so the rules in force may not have it yet: see the router's log)", err)
	}
	return err
}

func fail(err error) (outcome, error) { return outcome{status: statusFor(err)}, err }

// fail is a refusal after the caller authenticated: it keeps who it was.
func (o outcome) fail(err error) (outcome, error) {
	o.status, o.events = statusFor(err), nil
	var rl *policy.RateLimit
	if errors.As(err, &rl) {
		o.retryAfter = int(math.Ceil(rl.RetryAfter.Seconds()))
	}
	return o, err
}

// resultOf is what the sender is told of one stored event.
func resultOf(a policy.Accepted) EventResult {
	refs := make([]TargetRef, len(a.Targets))
	for j, t := range a.Targets {
		refs[j] = TargetRef{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name}
		if a.Hold.Holds(t.App, t.Trigger) {
			refs[j].State = policy.StateAwaitingApproval
		}
	}
	return EventResult{ID: a.Event.ID(), Type: a.Event.Type(), Targets: refs}
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "draining: shutting down"})
		return
	}
	rules := s.cfg.Rules.Rules()
	if rules == nil {
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "no rules loaded"})
		return
	}
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
			writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "queue: " + err.Error()})
			return
		}
	}
	resp := map[string]string{"status": "ready", "rulesRevision": rules.Revision()}
	if s.cfg.Rules.LastError() != nil {
		// Still ready: the last good rules are in force. The problems
		// (with file paths) are in the router's log, not on this
		// unauthenticated endpoint.
		resp["rules"] = "last reload failed; the last good rules are in force (see the router's log)"
	}
	if s.cfg.ReadyDetail != nil {
		maps.Copy(resp, s.cfg.ReadyDetail())
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
