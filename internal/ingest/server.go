package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// DefaultMaxBody is GitHub's own maximum webhook payload, 25 MiB.
const DefaultMaxBody = 25 << 20

// retryAfter is what a 503 tells the sender to wait, in seconds.
const retryAfter = 5

// Publisher stores accepted events and their work durably. Publish returns
// nil only after every message was acknowledged; failures wrap
// queue.ErrUnavailable.
type Publisher interface {
	Publish(ctx context.Context, a queue.Accepted) error
}

// RulesSource returns the rules in force; a reload swaps them atomically.
// LastError is the last failed reload's error (nil after a good one): the
// old rules stay in force, and /readyz reports it.
type RulesSource interface {
	Rules() *routing.Rules
	LastError() error
}

// Config builds a Server.
type Config struct {
	Rules     RulesSource
	Publisher Publisher
	Logger    *slog.Logger
	// MaxBody caps request bodies; DefaultMaxBody when zero.
	MaxBody int64
	// Ready reports whether the queue can take writes, for /readyz.
	Ready func(ctx context.Context) error
	// Metrics, when set, serves GET /metrics.
	Metrics http.Handler
	// Audit, when set, receives every decision (queue.Queue.Audit).
	Audit func(queue.AuditRecord)
	// Status, when set, serves GET /v1/events/{id}.
	Status StatusReader
}

// Server is the HTTP front of the router.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	mux      *http.ServeMux
	draining atomic.Bool
	limits   limiters
	// now is the clock of rate limits (a test sets it).
	now func() time.Time
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, logger: cfg.Logger.With("component", "ingest"), mux: http.NewServeMux(), now: time.Now}
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
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// TargetRef is a matched target as the sender sees it in a 202.
type TargetRef struct {
	App       string `json:"app"`
	Trigger   string `json:"trigger"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// EventResult is one accepted event and what it fired.
type EventResult struct {
	ID      string      `json:"id"`
	Type    string      `json:"type"`
	Targets []TargetRef `json:"targets"`
}

// AcceptedResponse is the body of a 202. For a request carrying one event,
// ID, Type and Targets describe it; Events lists every event of the request.
type AcceptedResponse struct {
	EventResult
	Events []EventResult `json:"events,omitempty"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Rule is the endpoint scope rule that refused the request (403).
	Rule string `json:"rule,omitempty"`
}

func (s *Server) handleHook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("source")
	out, err := s.accept(r, name)
	rec := queue.AuditRecord{Kind: "webhook", Source: name, Remote: remoteHost(r)}
	if out.status != http.StatusUnauthorized {
		rec.Identity = "source:" + name
	}
	s.audit(rec, out, err)
	// The path token is never logged: only the source name is.
	log := s.logger.With("source", name, "status", out.status)
	if err != nil {
		log.Info("webhook refused", "error", err.Error())
		writeError(w, out, err)
		return
	}
	for _, e := range out.events {
		log.Info("webhook accepted", "event_id", e.ID, "type", e.Type, "targets", len(e.Targets))
	}
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

// writeError answers a refused request: the error, the scope rule that
// refused it, and when to retry.
func writeError(w http.ResponseWriter, out outcome, err error) {
	switch out.status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(out.retryAfter))
	}
	body := ErrorResponse{Error: err.Error()}
	var se *ScopeError
	if errors.As(err, &se) {
		body.Rule = se.Rule
	}
	writeJSON(w, out.status, body)
}

// writeAccepted answers a 202: the first (or only) event's id, type and
// targets, and every event when there are several.
func writeAccepted(w http.ResponseWriter, out outcome) {
	resp := AcceptedResponse{Events: out.events}
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
// that stored nothing.
func (s *Server) audit(rec queue.AuditRecord, out outcome, err error) {
	if s.cfg.Audit == nil {
		return
	}
	rec.Status = out.status
	if err != nil {
		rec.Decision, rec.Reason = decisionFor(out.status), err.Error()
		var se *ScopeError
		if errors.As(err, &se) {
			rec.Rule, rec.Reason = se.Rule, se.Message
		}
		s.cfg.Audit(rec)
		return
	}
	rec.Decision = queue.DecisionAccepted
	if len(out.events) == 0 {
		rec.Reason = "nothing to store (ping, handshake, or an event the provider ignores)"
		s.cfg.Audit(rec)
		return
	}
	for _, e := range out.events {
		a := rec
		a.EventID, a.Type, a.Targets = e.ID, e.Type, len(e.Targets)
		s.cfg.Audit(a)
	}
}

// decisionFor names the audit decision of an error status.
func decisionFor(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return queue.DecisionUnauthenticated
	case http.StatusForbidden:
		return queue.DecisionDenied
	case http.StatusTooManyRequests:
		return queue.DecisionRateLimited
	case http.StatusServiceUnavailable, http.StatusInternalServerError:
		return queue.DecisionUnavailable
	default:
		return queue.DecisionInvalid
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
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("%v: no source named %q", ErrUnknownSource, name)})
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

// outcome is what accept decided: the status, the events stored, and a
// provider-specific reply if the provider asked for one.
type outcome struct {
	status int
	events []EventResult
	reply  *Reply
	// retryAfter is the Retry-After of a 429, in seconds.
	retryAfter int
}

// accept runs one webhook through verify, normalize, route and publish, and
// returns the status to answer.
func (s *Server) accept(r *http.Request, name string) (outcome, error) {
	rules := s.cfg.Rules.Rules()
	if rules == nil {
		return fail(ErrNotReady)
	}
	src := rules.Source(name)
	if src == nil {
		return fail(fmt.Errorf("%w: no source named %q", ErrUnknownSource, name))
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
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fail(fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, s.cfg.MaxBody))
		}
		return fail(fmt.Errorf("%w: read body: %v", ErrMalformed, err))
	}
	req := &Request{Header: r.Header, Body: body, PathToken: r.PathValue("token")}
	if err := provider.Verify(req, src); err != nil {
		return fail(err)
	}
	res, err := provider.Normalize(req)
	if err != nil {
		return fail(err)
	}
	if res.Ping {
		return outcome{status: http.StatusOK}, nil
	}

	// Every event is checked before the first is stored, so a delivery is
	// taken whole or refused whole.
	for i := range res.Events {
		if err := res.Events[i].Validate(); err != nil {
			return fail(fmt.Errorf("%w: the payload does not make a valid event: %v", ErrMalformed, err))
		}
	}
	results := make([]EventResult, 0, len(res.Events))
	for i := range res.Events {
		ev := &res.Events[i]
		ev.SetExtension("identity", "source:"+src.Name)
		in := routing.Input{Source: src.Name, Event: ev, Header: r.Header}
		if rules.UsesPaths() {
			// The only I/O before routing: a truncated GitHub push's changed
			// files, from the API, when the source has a token.
			in.Changes = ChangedFiles(r.Context(), src, ev)
		}
		accepted, result := acceptedEvent(src.Name, ev, rules.Route(in))
		if err := s.cfg.Publisher.Publish(r.Context(), accepted); err != nil {
			// Events published before this one are stored; the sender's
			// retry is deduplicated, so answering 503 loses nothing.
			return fail(err)
		}
		results = append(results, result)
	}
	return outcome{status: http.StatusAccepted, events: results, reply: res.Reply}, nil
}

func fail(err error) (outcome, error) { return outcome{status: statusFor(err)}, err }

// acceptedEvent is what is stored of one routed event (the event, and one
// work message per target) and what its sender is told. The queue drops
// the payload from work messages (queue.Publish), as it does for replays.
func acceptedEvent(source string, ev *event.Event, targets []routing.Target) (queue.Accepted, EventResult) {
	a := queue.Accepted{Source: source, Event: *ev, Work: make([]queue.Work, len(targets))}
	refs := make([]TargetRef, len(targets))
	for j, t := range targets {
		a.Work[j] = queue.Work{Source: source, Event: *ev, Target: t}
		refs[j] = TargetRef{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name}
	}
	return a, EventResult{ID: ev.ID(), Type: ev.Type(), Targets: refs}
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "draining: shutting down"})
		return
	}
	if s.cfg.Rules.Rules() == nil {
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
	resp := map[string]string{"status": "ready"}
	if err := s.cfg.Rules.LastError(); err != nil {
		// Still ready: the last good rules are in force.
		resp["rules"] = "last reload failed: " + err.Error()
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
