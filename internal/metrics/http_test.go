package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHTTPLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	known := func(kind, name string) bool {
		return (kind == "source" && name == "github") || (kind == "endpoint" && name == "agent")
	}
	h, err := NewHTTP(reg, known, []string{"github"})
	if err != nil {
		t.Fatal(err)
	}
	handler := h.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "bad") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v1/hooks/github"},
		{"POST", "/v1/hooks/github/secret-path-token"},
		{"POST", "/v1/hooks/random-scanner-name"},
		{"POST", "/v1/hooks/bad"},
		{"POST", "/v1/events/agent"},
		{"GET", "/v1/events/some-event-id"},
		{"GET", "/metrics"},
	} {
		handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.path, nil))
	}
	got := series(t, reg, "switchyard_webhooks_total")
	want := map[string]float64{
		"code=202,source=endpoint/agent": 1,
		"code=202,source=github":         2,
		"code=202,source=unknown":        1,
		"code=401,source=unknown":        1,
	}
	if len(got) != len(want) {
		t.Errorf("series = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if n := len(series(t, reg, "switchyard_ingest_duration_seconds")); n != 3 {
		t.Errorf("duration series = %d, want 3 (github, endpoint/agent, unknown)", n)
	}
}

// series gathers the metric called name: its label sets ("k=v,k=v") and
// values (a histogram's sample count).
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
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
			v := m.GetCounter().GetValue()
			if m.GetHistogram() != nil {
				v = float64(m.GetHistogram().GetSampleCount())
			}
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

func TestHTTPSeriesExistAtStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewHTTP(reg, nil, []string{"github", "harbor"}); err != nil {
		t.Fatal(err)
	}
	if got := series(t, reg, "switchyard_webhooks_total"); len(got) != 2 || got["code=202,source=harbor"] != 0 {
		t.Errorf("series at start = %v, want github and harbor at 0", got)
	}
}
