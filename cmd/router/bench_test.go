package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

func TestParseAPIServerMetrics(t *testing.T) {
	before := parseAPIServerMetrics([]byte(`# HELP apiserver_request_total x
apiserver_request_total{code="201",resource="pipelineruns",verb="POST"} 10
apiserver_request_total{code="429",resource="pipelineruns",verb="POST"} 1
apiserver_request_duration_seconds_bucket{resource="pipelineruns",verb="POST",le="0.05"} 5
apiserver_request_duration_seconds_bucket{resource="pipelineruns",verb="POST",le="0.1"} 10
apiserver_request_duration_seconds_bucket{resource="pipelineruns",verb="POST",le="+Inf"} 10
apiserver_request_duration_seconds_bucket{resource="pods",verb="POST",le="0.05"} 99
`))
	after := parseAPIServerMetrics([]byte(`apiserver_request_total{code="429",resource="pipelineruns",verb="POST"} 4
apiserver_flowcontrol_rejected_requests_total{flow_schema="service-accounts",reason="queue-full"} 2
apiserver_flowcontrol_request_wait_duration_seconds_bucket{execute="true",flow_schema="service-accounts",priority_level="workload-low",le="0.001"} 50
apiserver_flowcontrol_request_wait_duration_seconds_bucket{execute="true",flow_schema="service-accounts",priority_level="workload-low",le="0.1"} 100
apiserver_flowcontrol_request_wait_duration_seconds_bucket{execute="true",flow_schema="service-accounts",priority_level="workload-low",le="+Inf"} 100
apiserver_request_duration_seconds_bucket{resource="pipelineruns",verb="POST",le="0.05"} 104
apiserver_request_duration_seconds_bucket{resource="pipelineruns",verb="POST",le="0.1"} 110
apiserver_request_duration_seconds_bucket{resource="pipelineruns",verb="POST",le="+Inf"} 110
`))
	// 100 creates between the samples, 99 of them within 50 ms.
	want := "100 creates, server-side p99 ≤ 50 ms, APF queue wait p99 ≤ 100 ms; 429s: 3 (APF rejections 2)"
	if got := apiserverSummary(before, after); got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}

func TestLoadResultPercentiles(t *testing.T) {
	var r loadResult
	for i := 1; i <= 100; i++ {
		r.latencies = append(r.latencies, time.Duration(i)*time.Millisecond)
	}
	if r.p(50) != 50*time.Millisecond || r.p(99) != 99*time.Millisecond || r.p(100) != 100*time.Millisecond {
		t.Errorf("p50, p99, p100 = %s, %s, %s; want 50ms, 99ms, 100ms", r.p(50), r.p(99), r.p(100))
	}
}

// TestLimitHandler: the ingest limit's server answers 202 only for a
// correct signature, after the body is stored.
func TestLimitHandler(t *testing.T) {
	emb, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cret"
	h := limitHandler(js, secret)
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	for _, tc := range []struct {
		name, sig string
		want      int
	}{
		{"signed", "sha256=" + hex.EncodeToString(mac.Sum(nil)), http.StatusAccepted},
		{"wrong signature", "sha256=" + hex.EncodeToString(make([]byte, 32)), http.StatusUnauthorized},
		{"no signature", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set("X-Hub-Signature-256", tc.sig)
			req.Header.Set("X-GitHub-Delivery", "d-"+tc.name)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("status = %d, want %d", rec.Code, tc.want)
			}
		})
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stored messages = %d, want 1 (the signed one)", info.State.Msgs)
	}
}

// TestBenchPipelineRun: the raw phase creates what the router would.
func TestBenchPipelineRun(t *testing.T) {
	dir := t.TempDir()
	if err := writeFiles(dir, map[string]string{"root.yaml": benchRoot, "apps/web.yaml": benchApp}); err != nil {
		t.Fatal(err)
	}
	pr, err := benchPipelineRun(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Namespace != benchRouterNS || pr.Labels["switchyard.dev/app"] != "web" || len(pr.Spec.Params) != 2 {
		t.Errorf("rendered %s/%s labels %v params %v; want the web app's build run in %s with 2 params",
			pr.Namespace, pr.Name, pr.Labels, pr.Spec.Params, benchRouterNS)
	}
}

// rssGrowth compares the peaks of the second and last quarters of a soak,
// so start-up growth is not read as a leak: samples at 30, 40, 50 s peak
// at 102, those at 80, 90, 100 s at 103.
func TestRSSGrowth(t *testing.T) {
	d := 100 * time.Second
	var samples []soakSample
	for i, rss := range []float64{50, 90, 100, 101, 100, 102, 101, 100, 103, 102, 101} {
		samples = append(samples, soakSample{at: time.Duration(i) * 10 * time.Second, rss: rss})
	}
	if got, want := rssGrowth(samples, d), "102 MiB (peak of the second quarter) → 103 MiB (peak of the last quarter): +1.0%"; got != want {
		t.Errorf("rssGrowth = %q, want %q", got, want)
	}
	if got := rssGrowth(samples[:2], d); !strings.Contains(got, "too few samples") {
		t.Errorf("two early samples: %q", got)
	}
	if got, want := growthVerdict(samples, d), "RSS +1.0% (no live heap served: RSS alone), within the ±10% of a flat run: met"; got != want {
		t.Errorf("growthVerdict = %q, want %q", got, want)
	}
	samples[len(samples)-1].rss = 112.3 // 102 → 112.3: +10.1%
	if got := growthVerdict(samples, d); !strings.HasSuffix(got, "**not met**") {
		t.Errorf("growth past the noise: %q, want not met", got)
	}
	if got := growthVerdict(samples[:2], d); !strings.Contains(got, "too few samples") {
		t.Errorf("two early samples: %q", got)
	}
}

// A soak whose RSS peaks stay within the noise while its live heap keeps
// growing is not flat: the verdict needs both. The live heap's growth is
// read on its fitted line, from the middle of the second quarter (37.5 s)
// to the middle of the last (87.5 s).
func TestGrowthVerdictNeedsTheLiveHeapFlat(t *testing.T) {
	d := 100 * time.Second
	samples := func(livePerSecond float64) []soakSample {
		var out []soakSample
		for i, rss := range []float64{50, 90, 100, 101, 100, 102, 101, 100, 103, 102, 101} {
			at := time.Duration(i) * 10 * time.Second
			out = append(out, soakSample{at: at, rss: rss, live: 40 + livePerSecond*at.Seconds()})
		}
		return out
	}
	// 0.2 MiB a second: 47.5 MiB at 37.5 s, 57.5 MiB at 87.5 s, +21.1%.
	if got, want := growthVerdict(samples(0.2), d), "RSS +1.0%, live heap +21.1%, more than the ±10% of a flat run: **not met**"; got != want {
		t.Errorf("growing live heap: %q, want %q", got, want)
	}
	// 0.02 MiB a second: 40.75 → 41.75 MiB, +2.5%.
	if got, want := growthVerdict(samples(0.02), d), "RSS +1.0%, live heap +2.5%, within the ±10% of a flat run: met"; got != want {
		t.Errorf("flat live heap: %q, want %q", got, want)
	}
}

// The growth per event divides the growth between the quarters' peaks
// by the events sent between the peaks' times: 102 MiB at 50 s, 103 MiB
// at 80 s, 10 events a second: 1 MiB over 300 events.
func TestRSSPerEvent(t *testing.T) {
	d := 100 * time.Second
	var samples []soakSample
	for i, rss := range []float64{50, 90, 100, 101, 100, 102, 101, 100, 103, 102, 101} {
		samples = append(samples, soakSample{at: time.Duration(i) * 10 * time.Second, rss: rss})
	}
	if got, want := rssPerEvent(samples, d, 10), "3495 B per event sent between the two peaks (300 events in 30s)"; got != want {
		t.Errorf("rssPerEvent = %q, want %q", got, want)
	}
	if got := rssPerEvent(samples[:2], d, 10); !strings.Contains(got, "too few samples") {
		t.Errorf("two early samples: %q", got)
	}
}

// The live heap's growth per event is its slope after the first quarter,
// whatever the first quarter did and however the samples scatter about
// the line.
func TestLiveHeapPerEvent(t *testing.T) {
	d := 100 * time.Second
	var samples []soakSample
	for i, live := range []float64{5, 80, 90} { // start-up: not counted
		samples = append(samples, soakSample{at: time.Duration(i) * 10 * time.Second, rss: 1, live: live})
	}
	// 0.05 MiB a second, scattered ±1 MiB about the line in a pattern that
	// tilts no least-squares line (+1 -1 -1 +1 +1 -1 -1 +1 over 30-100 s).
	for i, noise := range []float64{1, -1, -1, 1, 1, -1, -1, 1} {
		sec := 30 + 10*i
		samples = append(samples, soakSample{at: time.Duration(sec) * time.Second, rss: 1, live: 100 + 0.05*float64(sec) + noise})
	}
	// 0.05 MiB a second at 10 events a second: 0.05 × 1,048,576 / 10 B.
	want := "5243 B per event (slope of the live heap after the first quarter, 8 samples)"
	if got := liveHeapPerEvent(samples, d, 10); got != want {
		t.Errorf("liveHeapPerEvent = %q, want %q", got, want)
	}
	for i := range samples {
		samples[i].live = 0 // a router without go_gc_heap_live_bytes
	}
	if got := liveHeapPerEvent(samples, d, 10); !strings.Contains(got, "too few samples") {
		t.Errorf("no live heap: %q", got)
	}
	if got := liveSeries(samples); !strings.HasPrefix(got, "n/a") {
		t.Errorf("liveSeries with no live heap = %q", got)
	}
}

// livePerRecord is the live heap's slope against the records kept, after
// the first quarter, and says when it cannot be known.
func TestLivePerRecord(t *testing.T) {
	d := 100 * time.Second
	var samples []soakSample
	samples = append(samples, soakSample{at: 10 * time.Second, rss: 1, live: 5, records: 0}) // start-up: not counted
	// 2,000 records every 10 s, 250 B each on top of 40 MiB, scattered
	// ±0.1 MiB in a pattern that tilts no least-squares line.
	for i, noise := range []float64{0.1, -0.1, -0.1, 0.1, 0.1, -0.1, -0.1, 0.1} {
		records := 2000 * float64(i+3)
		samples = append(samples, soakSample{at: time.Duration(30+10*i) * time.Second, rss: 1,
			live: 40 + (250*records)/(1<<20) + noise, records: records})
	}
	want := "250 B per record (6000 → 20000 records after the first quarter; nats-server's index of them alone: ~110 B per record, BenchmarkKeptKeyHeap)"
	if got := livePerRecord(samples, d); got != want {
		t.Errorf("livePerRecord = %q, want %q", got, want)
	}
	// Events expiring as fast as they come (--events-max-age 2m): the
	// count hardly moves and the heap's own noise would give any slope
	// (a soak printed -40930 B per record over 24052 → 24051).
	steady := slices.Clone(samples)
	for i := range steady {
		steady[i].records = 24050 + float64(i%3)
	}
	if got := livePerRecord(steady, d); !strings.HasPrefix(got, "n/a (records kept steady, 24050 to 24052") {
		t.Errorf("steady records: %q, want n/a", got)
	}
	for i := range samples {
		samples[i].records = -1 // a router without switchyard_records_kept
	}
	if got := livePerRecord(samples, d); !strings.HasPrefix(got, "n/a") {
		t.Errorf("no records series: %q", got)
	}
}

// The goal's limit is the burst of the median rate, with its own p99:
// not the fastest or the slowest of the bursts, nor a mix of them.
func TestMedianBurst(t *testing.T) {
	burst := func(ok int, p99 time.Duration) loadResult {
		return loadResult{ok: ok, elapsed: time.Second, latencies: []time.Duration{p99}}
	}
	bursts := []loadResult{burst(9000, 3*time.Millisecond), burst(12000, time.Millisecond), burst(7000, 9*time.Millisecond)}
	got := medianBurst(bursts)
	if got.ok != 9000 || got.p(99) != 3*time.Millisecond {
		t.Fatalf("median of 9000, 12000, 7000/s = %d/s with p99 %s; want the 9000/s burst and its 3 ms", got.ok, got.p(99))
	}
	if bursts[0].ok != 9000 || bursts[1].ok != 12000 {
		t.Fatal("medianBurst reordered its argument")
	}
	if got := medianBurst(bursts[:2]); got.ok != 9000 {
		t.Fatalf("median of two = %d/s, want the lower", got.ok)
	}
	if got := medianBurst(bursts[:1]); got.ok != 9000 {
		t.Fatalf("median of one = %d/s, want it", got.ok)
	}
}

// The router's PipelineRuns rate is the median of its bursts' rates, and
// a run's failures are every burst's, added up.
func TestRouterBurstsFigures(t *testing.T) {
	rates := []float64{464, 2, 442}
	if got := median(rates); got != 442 {
		t.Errorf("median(464, 2, 442) = %v, want 442", got)
	}
	if rates[0] != 464 || rates[1] != 2 {
		t.Error("median reordered its argument")
	}
	if got := median(rates[:2]); got != 2 {
		t.Errorf("median of two = %v, want the lower", got)
	}
	if got := median(nil); got != 0 {
		t.Errorf("median of none = %v, want 0", got)
	}
	if got, want := joinRates([]float64{463.6, 490.2}), "464, 490"; got != want {
		t.Errorf("joinRates = %q, want %q", got, want)
	}
	bursts := []loadResult{
		{codes: map[string]int{"503": 2}},
		{codes: map[string]int{}},
		{codes: map[string]int{"503": 1, "EOF": 4}},
	}
	if got, want := failures(bursts), "; failed: 503×3, EOF×4"; got != want {
		t.Errorf("failures = %q, want %q", got, want)
	}
	if got := failures(bursts[1:2]); got != "" {
		t.Errorf("failures of a clean burst = %q, want none", got)
	}
}

// The goal rows are ratios of figures of the same run, each with its
// verdict at the goal's bound.
func TestGoalRows(t *testing.T) {
	f := benchFigures{rawRate: 720, createdRate: 360, limitRate: 10000, ingestRate: 6999,
		limitP99: 5 * time.Millisecond, ingestP99: 10 * time.Millisecond, rssMiB: 149.5}
	want := []string{
		"50% (360 of 720/s): met",
		"70% (6999 of 10000/s): **not met**",
		"2.0× (10.0 ms of 5.0 ms): met",
		"150 MiB: met",
	}
	rows := goalRows(f)
	for i, w := range want {
		if rows[i].figure != w {
			t.Errorf("row %q = %q, want %q", rows[i].what, rows[i].figure, w)
		}
	}
	f.createdRate, f.ingestRate, f.ingestP99, f.rssMiB = 359, 7000, 10*time.Millisecond+time.Microsecond, 150
	for i, w := range []string{"**not met**", ": met", "**not met**", "**not met**"} {
		if got := goalRows(f)[i].figure; !strings.HasSuffix(got, w) {
			t.Errorf("past the bound, row %d = %q, want it to end %q", i, got, w)
		}
	}
	if got := goalRows(benchFigures{})[2].figure; !strings.HasSuffix(got, "**not met**") {
		t.Errorf("no measurement: %q, want not met", got)
	}
}

// TestBenchLimitCommand: the limit server the bench runs as a child
// process (`router bench-limit`) says it is ready, answers a signed push
// 202 and an unsigned one 401, and stops with its context.
func TestBenchLimitCommand(t *testing.T) {
	const secret = "s3cret"
	t.Setenv("GITHUB_WEBHOOK_SECRET", secret)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"bench-limit", "--listen", addr}, nil, io.Discard, io.Discard) }()
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bench-limit not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	for sig, want := range map[string]int{"sha256=" + hex.EncodeToString(mac.Sum(nil)): http.StatusAccepted, "": http.StatusUnauthorized} {
		req, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Hub-Signature-256", sig)
		req.Header.Set("X-GitHub-Delivery", "d-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("signature %q: status %d, want %d", sig, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("bench-limit exited %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bench-limit did not stop with its context")
	}
}
