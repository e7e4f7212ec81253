package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Unknown is the source label of requests to a source or endpoint the
// manifest does not name.
const Unknown = "unknown"

// Known reports whether name is a configured source (kind "source") or
// agent endpoint (kind "endpoint") in the rules in force.
type Known func(kind, name string) bool

// HTTP counts and times webhook requests (POST /v1/hooks/... and
// POST /v1/events/...): switchyard_webhooks_total{source,code} and
// switchyard_ingest_duration_seconds{source}. Agent endpoints are labelled
// "endpoint/<name>" so they cannot be mistaken for a source of that name.
type HTTP struct {
	known    Known
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP registers the webhook metrics with reg. sources are the sources
// configured at start: their series exist from the start, at zero.
func NewHTTP(reg prometheus.Registerer, known Known, sources []string) (*HTTP, error) {
	h := &HTTP{
		known: known,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_webhooks_total",
			Help: "Webhook and agent event requests answered, by configured source (else unknown) and HTTP status code.",
		}, []string{"source", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_ingest_duration_seconds",
			Help:    "Time from a webhook request's arrival to its answer (for a 202: verified, routed and stored).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"source"}),
	}
	var err error
	h.total = Register(reg, h.total, &err)
	h.duration = Register(reg, h.duration, &err)
	if err != nil {
		return nil, fmt.Errorf("webhook metrics: %w", err)
	}
	for _, s := range sources {
		h.total.WithLabelValues(s, "202")
		h.duration.WithLabelValues(s)
	}
	return h, nil
}

// Wrap returns next, measuring its webhook requests.
func (h *HTTP) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		source, ok := h.source(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		h.total.WithLabelValues(source, strconv.Itoa(code)).Inc()
		h.duration.WithLabelValues(source).Observe(time.Since(start).Seconds())
	})
}

// source is the label of a webhook request, and false for other requests.
func (h *HTTP) source(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost {
		return "", false
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/hooks/"); ok {
		name, _, _ := strings.Cut(rest, "/") // a path token is never a label
		if h.known != nil && h.known("source", name) {
			return name, true
		}
		return Unknown, true
	}
	if name, ok := strings.CutPrefix(r.URL.Path, "/v1/events/"); ok {
		if h.known != nil && !strings.Contains(name, "/") && h.known("endpoint", name) {
			return "endpoint/" + name, true
		}
		return Unknown, true
	}
	return "", false
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Register registers c with reg, or returns the collector registered
// before under its name (a second server or queue in one process, as in
// tests). The first other error is kept in *errp.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c
	case errors.As(err, &are):
		if old, ok := are.ExistingCollector.(C); ok {
			return old
		}
	}
	if *errp == nil {
		*errp = err
	}
	return c
}
