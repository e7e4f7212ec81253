package queue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// TestMetrics publishes through the timed publisher and dispatches one
// app's work successfully and another's into the dead-letter stream.
func TestMetrics(t *testing.T) {
	q := newQueue(t)
	m, reg := newMetrics(t)
	ctx := context.Background()
	p := m.Publisher(q)
	for _, id := range []string{"m-1", "m-2"} {
		if err := p.Publish(ctx, accepted("github", id, "api", "bad")); err != nil {
			t.Fatal(err)
		}
	}
	runConsume(t, q, measured(m), func(_ context.Context, w Work) error {
		if w.Target.App == "bad" {
			return Permanent(errors.New("invalid template"))
		}
		return nil
	})
	waitFor(t, "all work settled", func() bool {
		got := gather(t, reg, "switchyard_dispatch_total")
		return got["app=api,result=done"] == 2 && got["app=bad,result=dead_letter"] == 2
	})

	if got := gather(t, reg, "switchyard_publish_duration_seconds")[""]; got != 2 {
		t.Errorf("publish observations = %v, want 2", got)
	}
	if got := gather(t, reg, "switchyard_dispatch_duration_seconds")[""]; got != 4 {
		t.Errorf("dispatch observations = %v, want 4", got)
	}
	if got := gather(t, reg, "switchyard_event_to_pipelinerun_seconds")[""]; got != 2 {
		t.Errorf("event to pipelinerun observations = %v, want 2 (the successes)", got)
	}
	// The backlog was seen while there was work, and drops to zero.
	waitFor(t, "pending back to zero", func() bool {
		got := gather(t, reg, "switchyard_queue_pending")
		_, api := got["app=api"]
		return api && got["app=api"] == 0 && got["app=bad"] == 0
	})
	// Counted again when Consume next lists the apps (at most every
	// storedRefresh).
	waitFor(t, "dead letters counted", func() bool {
		return gather(t, reg, "switchyard_dead_letters")[""] == 2
	})
}

// TestRecordsKeptCounted: switchyard_records_kept counts the keys the
// broker holds for deduplication: one per event, one more for a body
// digest (what makes an embedded router's memory grow with the events
// kept, docs/performance.md).
func TestRecordsKeptCounted(t *testing.T) {
	q := newQueue(t)
	m, reg := newMetrics(t)
	ctx := context.Background()
	signed := accepted("github", "k-2", "api")
	signed.BodyDigest = strings.Repeat("ef", 32) + "/0"
	for _, a := range []policy.Accepted{accepted("github", "k-1", "api"), signed} {
		if err := q.Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	runConsume(t, q, measured(m), func(context.Context, Work) error { return nil })
	waitFor(t, "records counted", func() bool {
		return gather(t, reg, "switchyard_records_kept")[""] == 3
	})
}

// measured is fastRetry reporting to m.
func measured(m *Metrics) ConsumerConfig {
	cfg := fastRetry
	cfg.Metrics = m
	return cfg
}

// newMetrics returns the queue's metrics on a registry of their own.
func newMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// gather returns the metric called name by label set ("k=v,k=v"): a
// counter's or gauge's value, a histogram's sample count.
func gather(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if m.GetHistogram() != nil {
				v = float64(m.GetHistogram().GetSampleCount())
			}
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

// TestEventToPipelineRunCountsFromTheDeferred202: a webhook deferred
// during a burst was answered before its work was stored; the time to its
// PipelineRun counts from the answer.
func TestEventToPipelineRunCountsFromTheDeferred202(t *testing.T) {
	q := newQueue(t)
	m, reg := newMetrics(t)
	a := accepted("github", "d-1", "api")
	a.Answered = time.Now().Add(-90 * time.Second)
	if err := q.Publish(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	runConsume(t, q, measured(m), func(context.Context, Work) error { return nil })
	waitFor(t, "the work done", func() bool {
		return gather(t, reg, "switchyard_event_to_pipelinerun_seconds")[""] == 1
	})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "switchyard_event_to_pipelinerun_seconds" {
			if sum := f.GetMetric()[0].GetHistogram().GetSampleSum(); sum < 90 {
				t.Errorf("observed %.1fs from the 202 to the run, want at least the 90s since the answer", sum)
			}
		}
	}
}

// TestWorkCarriesItsAcceptanceTime: the handler gets when each work's
// event was accepted: the deferred webhook's 202, else when the work was
// stored (concurrency groups order their runs by it).
func TestWorkCarriesItsAcceptanceTime(t *testing.T) {
	q := newQueue(t)
	answered := time.Now().Add(-time.Minute).Round(0)
	deferred := accepted("github", "d-1", "api")
	deferred.Answered = answered
	before := time.Now()
	for _, a := range []policy.Accepted{deferred, accepted("github", "s-1", "api")} {
		if err := q.Publish(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now()
	var mu sync.Mutex
	got := map[string]time.Time{}
	runConsume(t, q, fastRetry, func(_ context.Context, w Work) error {
		mu.Lock()
		defer mu.Unlock()
		got[w.Event.ID()] = w.Accepted
		return nil
	})
	waitFor(t, "both handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	if !got["d-1"].Equal(answered) {
		t.Errorf("deferred webhook's work accepted at %v, want its 202 at %v", got["d-1"], answered)
	}
	if s := got["s-1"]; s.Before(before.Add(-time.Second)) || s.After(after.Add(time.Second)) {
		t.Errorf("work accepted at %v, want when it was stored (%v to %v)", s, before, after)
	}
}
