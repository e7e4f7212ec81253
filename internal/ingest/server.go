package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
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
}

// Server is the HTTP front of the router.
type Server struct {
	cfg    Config
	logger *slog.Logger
	mux    *http.ServeMux
}

// NewServer builds the HTTP handler for webhooks and probes.
func NewServer(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, logger: cfg.Logger.With("component", "ingest"), mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /v1/hooks/{source}", s.handleHook)
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
}

func (s *Server) handleHook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("source")
	status, events, err := s.accept(r, name)
	log := s.logger.With("source", name, "status", status)
	if err != nil {
		log.Info("webhook refused", "error", err.Error())
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		writeJSON(w, status, ErrorResponse{Error: err.Error()})
		return
	}
	if status == http.StatusOK {
		log.Info("webhook ping")
		writeJSON(w, status, map[string]string{"status": "pong"})
		return
	}
	resp := AcceptedResponse{Events: events}
	if len(events) > 0 {
		resp.EventResult = events[0]
	}
	if len(events) <= 1 {
		resp.Events = nil
	}
	for _, e := range events {
		log.Info("webhook accepted", "event_id", e.ID, "type", e.Type, "targets", len(e.Targets))
	}
	writeJSON(w, status, resp)
}

// accept runs one webhook through verify, normalize, route and publish, and
// returns the status to answer.
func (s *Server) accept(r *http.Request, name string) (int, []EventResult, error) {
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
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fail(fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, s.cfg.MaxBody))
		}
		return fail(fmt.Errorf("%w: read body: %v", ErrMalformed, err))
	}
	req := &Request{Header: r.Header, Body: body}
	if err := provider.Verify(req, src.Secret); err != nil {
		return fail(err)
	}
	res, err := provider.Normalize(req)
	if err != nil {
		return fail(err)
	}
	if res.Ping {
		return http.StatusOK, nil, nil
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
		targets := rules.Route(in)
		accepted := queue.Accepted{Source: src.Name, Event: *ev, Work: make([]queue.Work, len(targets))}
		refs := make([]TargetRef, len(targets))
		bare := withoutData(ev)
		for j, t := range targets {
			accepted.Work[j] = queue.Work{Source: src.Name, Event: bare, Target: t}
			refs[j] = TargetRef{App: t.App, Trigger: t.Trigger, Namespace: t.Namespace, Name: t.Name}
		}
		if err := s.cfg.Publisher.Publish(r.Context(), accepted); err != nil {
			// Events published before this one are stored; the sender's
			// retry is deduplicated, so answering 503 loses nothing.
			return fail(err)
		}
		results = append(results, EventResult{ID: ev.ID(), Type: ev.Type(), Targets: refs})
	}
	return http.StatusAccepted, results, nil
}

func fail(err error) (int, []EventResult, error) { return statusFor(err), nil, err }

// withoutData copies the event's attributes and extensions: work messages
// carry what dispatch needs, never the provider payload.
func withoutData(ev *event.Event) event.Event {
	bare := event.New()
	bare.Context = ev.Context.Clone()
	bare.SetDataContentType("")
	return bare
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
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
