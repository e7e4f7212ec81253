package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
	"github.com/switchyard-dev/switchyard/test/k8senv"
)

// benchConfig is every flag of `router bench`.
type benchConfig struct {
	events      int
	concurrency int
	timeout     time.Duration
	routerBin   string   // the binary run as `router serve`; default this one
	routerArgs  []string // passed to the child `router serve`
	// soak, when set, replaces the three phases by one steady run of the
	// router this long, at soakRate events/s, sampling RSS every soakEvery.
	soak      time.Duration
	soakRate  int
	soakEvery time.Duration
}

// Namespaces of the two phases that create PipelineRuns.
const (
	benchRawNS    = "bench-raw"
	benchRouterNS = "bench"
)

func newBenchCmd(s ioStreams) *cobra.Command {
	var cfg benchConfig
	cmd := &cobra.Command{
		Use:   "bench [flags] [-- router serve flags]",
		Short: "Measure the router against a real kube-apiserver",
		Long: `Starts a kube-apiserver + etcd with Tekton's CRDs (test/k8s/up.sh) and an embedded NATS, then
measures side by side: raw PipelineRun creates, the HTTP + HMAC + one JetStream publish limit,
and ` + "`router serve`" + ` end to end (flags after -- are passed to it). Run it from the repository.`,
		Example: `  # The default run: 3000 raw creates, then bursts of 3000 signed pushes, 20 senders
  router bench

  # Compare an older build, with more dispatch concurrency for the router under test
  router bench --router-binary /tmp/router-old -- --dispatch-concurrency 64

  # Ten minutes at 200 pushes a second: does the router's memory grow?
  router bench --soak 10m --soak-rate 200`,
		Args: func(cmd *cobra.Command, args []string) error {
			if n := cmd.ArgsLenAtDash(); n > 0 || (n < 0 && len(args) > 0) {
				return errors.New("router serve flags go after --")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.events <= 0 || cfg.concurrency <= 0 {
				return errors.New("--events and --concurrency must be positive")
			}
			if cfg.soak < 0 || cfg.soakRate <= 0 || cfg.soakEvery <= 0 {
				return errors.New("--soak, --soak-rate and --soak-sample must be positive")
			}
			cfg.routerArgs = args
			return codeErr(runBench(cmd.Context(), cfg, s.Out, s.Err))
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.events, "events", 3000, "signed GitHub pushes (distinct delivery ids) per burst (the limit and the router are each measured in three), and raw creates")
	f.IntVar(&cfg.concurrency, "concurrency", 20, "concurrent senders (and concurrent raw creates)")
	f.StringVar(&cfg.routerBin, "router-binary", "", "router binary to measure (default: this one), e.g. an older build to compare")
	f.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "give up after this long (with --soak: after the soak and this long)")
	f.DurationVar(&cfg.soak, "soak", 0, "instead of the three phases, run the router end to end this long at --soak-rate and report its memory over time")
	f.IntVar(&cfg.soakRate, "soak-rate", 100, "with --soak: signed pushes per second")
	f.DurationVar(&cfg.soakEvery, "soak-sample", 30*time.Second, "with --soak: how often the router's RSS is read")
	return cmd
}

func runBench(ctx context.Context, cfg benchConfig, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout+cfg.soak)
	defer cancel()
	b := &bench{cfg: cfg, progress: stderr}
	rows, err := b.run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "router bench: %v\n", err)
		return 1
	}
	printBench(stdout, cfg, rows)
	return 0
}

// bench is one run of `router bench`.
type bench struct {
	cfg      benchConfig
	progress io.Writer
	cluster  *k8senv.Cluster
	admin    *rest.Config
	router   *rest.Config // the router's least-privilege identity
	kubecfg  string       // its kubeconfig file
	dir      string       // rules, and the router's data
	measured benchFigures // what the phases measured, for the goals
}

// benchFigures are the numbers issue 12's goals compare, as measured in
// one run.
type benchFigures struct {
	rawRate, createdRate  float64       // raw creates, router's PipelineRuns (per second)
	limitRate, ingestRate float64       // 202s per second: the limit, the router
	limitP99, ingestP99   time.Duration // their p99s
	rssMiB                float64       // the router's peak RSS
}

// goalRows compares f with issue 12's goals: each a ratio of two figures
// of this run.
func goalRows(f benchFigures) []benchRow {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	ratio := func(a, b float64) float64 {
		if b <= 0 {
			return 0
		}
		return a / b
	}
	created := ratio(f.createdRate, f.rawRate)
	ingest := ratio(f.ingestRate, f.limitRate)
	p99 := ratio(float64(f.ingestP99), float64(f.limitP99))
	return []benchRow{
		{"goal: PipelineRuns/s ≥ 50% of raw creates", fmt.Sprintf("%.0f%% (%.0f of %.0f/s): %s", 100*created, f.createdRate, f.rawRate, verdict(created >= 0.5))},
		{"goal: 202s/s ≥ 70% of the ingest limit", fmt.Sprintf("%.0f%% (%.0f of %.0f/s): %s", 100*ingest, f.ingestRate, f.limitRate, verdict(ingest >= 0.7))},
		{"goal: 202 p99 ≤ 2× the limit's", fmt.Sprintf("%.1f× (%s of %s): %s", p99, ms(f.ingestP99), ms(f.limitP99), verdict(f.limitP99 > 0 && p99 <= 2))},
		{"goal: peak RSS < 150 MiB", fmt.Sprintf("%.0f MiB: %s", f.rssMiB, verdict(f.rssMiB > 0 && f.rssMiB < 150))},
	}
}

// benchRow is one line of the result table.
type benchRow struct{ what, figure string }

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) ([]benchRow, error) {
	b.logf("starting kube-apiserver + etcd with Tekton CRDs (test/k8s/up.sh)")
	cluster, err := k8senv.Start(ctx)
	if err != nil {
		return nil, err
	}
	b.cluster = cluster
	defer func() {
		if err := cluster.Stop(); err != nil {
			b.logf("stop cluster: %v", err)
		}
	}()
	b.admin = cluster.AdminConfig()
	if b.kubecfg, err = cluster.RouterKubeconfig(ctx, benchRawNS, benchRouterNS); err != nil {
		return nil, err
	}
	if b.router, err = k8senv.ConfigFromKubeconfig(b.kubecfg); err != nil {
		return nil, err
	}
	if b.dir, err = os.MkdirTemp("", "switchyard-bench-router-"); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(b.dir)
	if err := writeFiles(filepath.Join(b.dir, "rules"), map[string]string{"root.yaml": benchRoot, "apps/web.yaml": benchApp}); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if b.cfg.soak > 0 {
		return b.soak(ctx)
	}
	var rows []benchRow
	raw, err := b.rawCreates(ctx)
	if err != nil {
		return nil, err
	}
	rows = append(rows, raw...)
	limit, err := b.ingestLimit(ctx)
	if err != nil {
		return nil, err
	}
	rows = append(rows, limit...)
	routed, err := b.endToEnd(ctx)
	if err != nil {
		return nil, err
	}
	rows = append(rows, routed...)
	return append(rows, goalRows(b.measured)...), nil
}

// rawCreates creates cfg.events PipelineRuns straight to the API server,
// cfg.concurrency at a time, with the router's identity and no client-side
// rate limit: the API server's own limit. They are the PipelineRun the
// router renders for the sample push, so the server does the same work.
func (b *bench) rawCreates(ctx context.Context) ([]benchRow, error) {
	template, err := benchPipelineRun(ctx, filepath.Join(b.dir, "rules"))
	if err != nil {
		return nil, fmt.Errorf("raw creates: %w", err)
	}
	cfg := rest.CopyConfig(b.router)
	cfg.QPS, cfg.Burst = -1, 0
	client, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("raw creates: %w", err)
	}
	before, err := b.apiserverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	admin, err := versioned.NewForConfig(b.admin)
	if err != nil {
		return nil, fmt.Errorf("raw creates: %w", err)
	}
	// The same observer as in the router phase, so both pay for a watch.
	if _, err := watchRuns(ctx, admin, benchRawNS); err != nil {
		return nil, err
	}
	b.logf("raw creates: %d PipelineRuns, %d concurrent", b.cfg.events, b.cfg.concurrency)
	res := runLoad(ctx, b.cfg.events, b.cfg.concurrency, 0, b.progressFunc("raw creates"), func(ctx context.Context, i int) (int, error) {
		pr := template.DeepCopy()
		pr.Name, pr.Namespace = fmt.Sprintf("raw-%06d", i), benchRawNS
		_, err := client.TektonV1().PipelineRuns(benchRawNS).Create(ctx, pr, metav1.CreateOptions{})
		if err != nil {
			return 0, err
		}
		return http.StatusCreated, nil
	})
	after, err := b.apiserverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	b.measured.rawRate = res.perSecond()
	return []benchRow{
		{fmt.Sprintf("limit: raw PipelineRun creates, %d concurrent", b.cfg.concurrency),
			res.figures() + res.failures()},
		{"  API server during raw creates", apiserverSummary(before, after)},
	}, nil
}

func (b *bench) progressFunc(phase string) func(done, total int) {
	return func(done, total int) { b.logf("%s: %d/%d", phase, done, total) }
}

// ingestLimit measures a minimal ingest built in this run: read the body,
// verify GitHub's HMAC, one synchronous JetStream publish to a file-stored
// stream, 202. It runs twice: as a child process, as the router runs (the
// goal's limit: a server never shares its process with its senders), and
// in the bench's own process, beside its senders, as earlier versions of
// the bench measured it.
func (b *bench) ingestLimit(ctx context.Context) ([]benchRow, error) {
	secret := benchSecret()
	child, err := startBenchLimit(ctx, secret)
	if err != nil {
		return nil, err
	}
	own, bursts := b.measureLimit(ctx, "ingest limit", child.url, secret, limitBursts)
	child.stop()
	b.measured.limitRate, b.measured.limitP99 = own.perSecond(), own.p(99)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ingest limit: %w", err)
	}
	stop, err := serveLimit(ctx, ln, secret)
	if err != nil {
		return nil, fmt.Errorf("ingest limit: %w", err)
	}
	defer stop()
	inProcess, _ := b.measureLimit(ctx, "ingest limit in the bench's process", "http://"+ln.Addr().String(), secret, 1)
	return []benchRow{
		{"limit: HTTP + HMAC verify + one synchronous JetStream publish (file store) + 202, own process",
			fmt.Sprintf("%s%s (the median of %d bursts: %s/s)", own.figures(), own.failures(), limitBursts, burstRates(bursts))},
		{"  the same in the bench's process, beside its senders", inProcess.figures() + inProcess.failures()},
	}, nil
}

// limitBursts is how many bursts the goal's limit is measured in. One
// burst of 3,000 lasts a third of a second, and the same server's rate
// moved by a third between runs: the median of three is the limit the
// router is compared with.
const limitBursts = 3

// routerBursts is how many bursts the router is measured in, each on an
// idle router, for the same reason: eight bursts of one router measured
// 5,655 to 11,154/s, the API server's own periodic work landing in some
// bursts and not others (docs/performance.md, "The router measured as
// the limit is").
const routerBursts = limitBursts

// measureLimit warms a limit server up, sends it bursts bursts, and returns
// the burst of the median rate and every burst in order.
func (b *bench) measureLimit(ctx context.Context, phase, url, secret string, bursts int) (loadResult, []loadResult) {
	b.warmUp(ctx, phase, url+"/", secret)
	results := make([]loadResult, bursts)
	for i := range results {
		burst := phase
		if bursts > 1 {
			burst = fmt.Sprintf("%s, burst %d of %d", phase, i+1, bursts)
		}
		b.logf("%s: %d signed pushes, %d concurrent", burst, b.cfg.events, b.cfg.concurrency)
		res := sendPushes(ctx, url+"/", secret, fmt.Sprintf("limit%d", i), b.cfg, b.progressFunc(burst))
		b.logf("%s: %d answered in %s: %s", burst, res.ok, res.elapsed.Round(time.Millisecond), res.figures())
		results[i] = res
	}
	return medianBurst(results), results
}

// medianBy is the element of xs whose key is the median (the lower one of
// an even count), without reordering xs; the zero T for none.
func medianBy[T any](xs []T, key func(T) float64) T {
	var none T
	if len(xs) == 0 {
		return none
	}
	sorted := slices.Clone(xs)
	slices.SortStableFunc(sorted, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return sorted[(len(sorted)-1)/2]
}

// median is the median of rates, 0 for none.
func median(rates []float64) float64 {
	return medianBy(rates, func(r float64) float64 { return r })
}

// burstRates is each burst's rate, in order.
func burstRates(bursts []loadResult) string {
	rates := make([]float64, len(bursts))
	for i, b := range bursts {
		rates[i] = b.perSecond()
	}
	return joinRates(rates)
}

// joinRates is rates, each rounded to a whole number a second, in order.
func joinRates(rates []float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = fmt.Sprintf("%.0f", r)
	}
	return strings.Join(parts, ", ")
}

// failures is the failures of every burst together.
func failures(bursts []loadResult) string {
	all := loadResult{codes: map[string]int{}}
	for _, b := range bursts {
		for k, n := range b.codes {
			all.codes[k] += n
		}
	}
	return all.failures()
}

// medianBurst is the burst of the median rate.
func medianBurst(bursts []loadResult) loadResult {
	return medianBy(bursts, loadResult.perSecond)
}

// serveLimit serves the limit's handler on ln, with its own embedded NATS
// server in a temporary directory, until stop is called.
func serveLimit(ctx context.Context, ln net.Listener, secret string) (stop func(), err error) {
	dir, err := os.MkdirTemp("", "switchyard-bench-nats-")
	if err != nil {
		return nil, err
	}
	emb, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cleanup := func() { emb.Shutdown(); os.RemoveAll(dir) }
	nc, err := emb.Connect()
	if err != nil {
		cleanup()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage})
	}
	if err != nil {
		nc.Close()
		cleanup()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("POST /", limitHandler(js, secret))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close(); nc.Close(); cleanup() }, nil
}

// startBenchLimit runs the limit server as a child process of this binary
// (`router bench-limit`, hidden), as the router runs.
func startBenchLimit(ctx context.Context, secret string) (*benchRouter, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("ingest limit: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ingest limit: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	r := &benchRouter{url: "http://" + addr, logs: k8senv.NewTailBuffer(16 << 10), exited: make(chan struct{})}
	r.cmd = exec.Command(self, "bench-limit", "--listen", addr)
	r.cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET="+secret)
	return r, r.start(ctx, "ingest limit")
}

// newBenchLimitCmd is the limit server bench runs as a child process.
func newBenchLimitCmd(s ioStreams) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    "bench-limit --listen ADDR",
		Short:  "The ingest limit server `router bench` runs as a child process",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			stop, err := serveLimit(ctx, ln, os.Getenv("GITHUB_WEBHOOK_SECRET"))
			if err != nil {
				return err
			}
			defer stop()
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "listen address")
	return cmd
}

// limitHandler is the least an ingest can do and still mean "2xx means
// stored".
func limitHandler(js jetstream.JetStream, secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 25<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Hub-Signature-256"))) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get("X-GitHub-Delivery")
		if _, err := js.Publish(r.Context(), "bench.github", body, jetstream.WithMsgID(id)); err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// benchPipelineRun is what the router creates for the sample push under
// the bench rules: normalized, routed and rendered as dispatch does.
func benchPipelineRun(ctx context.Context, rulesDir string) (*pipelinev1.PipelineRun, error) {
	rules, err := routing.LoadDir(rulesDir, ingest.LoadOptions())
	if err != nil {
		return nil, err
	}
	src := rules.Source("github")
	req := &ingest.Request{Header: http.Header{}, Body: samplePush}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "bench-template")
	res, err := ingest.Normalize(src.Kind, req)
	if err != nil {
		return nil, err
	}
	if len(res.Events) == 0 {
		return nil, errors.New("the sample push became no event")
	}
	ev := &res.Events[0]
	targets := rules.Route(ingest.RouteInput(rules, src, ev, req.Header))
	if len(targets) == 0 {
		return nil, errors.New("the sample push matched no trigger")
	}
	return dispatch.Render(ctx, queue.Work{Source: src.Name, Event: *ev, Target: targets[0]})
}

// benchRules is the router's rules: one GitHub source, one app with one
// trigger every push matches.
const benchRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: GITHUB_WEBHOOK_SECRET}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [` + benchRouterNS + `]
    sources: [github]
`

const benchApp = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match:
      types: [dev.switchyard.git.push]
      repositories: [acme/web]
      branches: [main]
    run:
      pipelineRef: build-and-test
      params:
        - {name: repo-url, value: $(body.repository.clone_url)}
        - {name: revision, value: $(extensions.revision)}
`

// endToEnd runs `router serve` as a child process with the given flags,
// and sends it routerBursts bursts of the pushes, each once the previous
// one's PipelineRuns all exist; its figures are the median burst's.
func (b *bench) endToEnd(ctx context.Context) ([]benchRow, error) {
	secret := benchSecret()
	child, err := startBenchRouter(ctx, b.cfg.routerBin, b.dir, b.kubecfg, secret, b.cfg.routerArgs)
	if err != nil {
		return nil, err
	}
	defer child.stop()
	b.logf("router: serving on %s (pid %d, flags %q)", child.url, child.cmd.Process.Pid, b.cfg.routerArgs)
	b.warmUp(ctx, "router", child.url+"/v1/hooks/github", secret)
	child.waitIdle(ctx)

	before, err := b.apiserverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	admin, err := versioned.NewForConfig(b.admin)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	runs, err := watchRuns(ctx, admin, benchRouterNS)
	if err != nil {
		return nil, err
	}
	// Each burst starts on an idle router: the previous burst's runs all
	// exist and every webhook it stored is judged.
	bursts := make([]loadResult, routerBursts)
	createdRates := make([]float64, routerBursts)
	var created int
	var firstPeakMiB float64
	var firstPeak string
	for i := range bursts {
		burst := fmt.Sprintf("router, burst %d of %d", i+1, routerBursts)
		start := time.Now()
		res := sendPushes(ctx, child.url+"/v1/hooks/github", secret, fmt.Sprintf("e2e%d", i), b.cfg, func(done, total int) {
			b.logf("%s: %d/%d accepted, %d PipelineRuns", burst, done, total, runs.count())
		})
		b.logf("%s: %d answered in %s: %s; %d PipelineRuns so far", burst, res.ok, res.elapsed.Round(time.Millisecond), res.figures(), runs.count())
		n, err := b.waitForRuns(ctx, runs, created+res.ok, child)
		if err != nil {
			return nil, err
		}
		createdRates[i] = perSecond(n-created, runs.lastAt().Sub(start))
		b.logf("%s: %d PipelineRuns in %s", burst, n-created, runs.lastAt().Sub(start).Round(10*time.Millisecond))
		created = n
		bursts[i] = res
		child.waitIdle(ctx)
		if i == 0 {
			// The goal's load is one burst: its peak is read before the
			// next one.
			firstPeakMiB, firstPeak = child.peakRSS()
		}
	}
	res := medianBurst(bursts)
	after, err := b.apiserverMetrics(ctx)
	if err != nil {
		return nil, err
	}
	_, peak := child.peakRSS()
	own := child.ownMetrics(ctx)
	b.measured.ingestRate, b.measured.ingestP99 = res.perSecond(), res.p(99)
	b.measured.createdRate, b.measured.rssMiB = median(createdRates), firstPeakMiB
	return []benchRow{
		{"router, flags " + flagsLabel(b.cfg.routerArgs) + ": 202s",
			fmt.Sprintf("%s%s (the median of %d bursts: %s/s)", res.figures(), failures(bursts), routerBursts, burstRates(bursts))},
		{"router: PipelineRuns created",
			fmt.Sprintf("%.0f/s, from a burst's first send to its last run (the median of %d bursts: %s/s)", median(createdRates), routerBursts, joinRates(createdRates))},
		{"  API server during the router's bursts", apiserverSummary(before, after)},
		{"router: its own metrics", own},
		{"router: peak RSS (VmHWM)", fmt.Sprintf("%s after the first burst (%d pushes, the goal's load); %s after all %d", firstPeak, b.cfg.events, peak, routerBursts)},
	}, nil
}

// waitForRuns waits until want PipelineRuns exist, the router exits or
// ctx ends.
func (b *bench) waitForRuns(ctx context.Context, runs *runWatch, want int, child *benchRouter) (int, error) {
	last := time.Now()
	for {
		n := runs.count()
		if n >= want {
			return n, nil
		}
		if time.Since(last) >= time.Second {
			b.logf("router: %d/%d PipelineRuns", n, want)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("router: %d of %d PipelineRuns after the timeout: %w", n, want, ctx.Err())
		case <-child.exited:
			return n, fmt.Errorf("router exited early; log tail:\n%s", child.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runWatch counts the PipelineRuns created in a namespace, from a watch:
// polling a list of thousands of objects would load the API server that
// is being measured.
type runWatch struct {
	mu    sync.Mutex
	names map[string]bool
	last  time.Time // when the last new one was seen
}

func (w *runWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.names)
}

func (w *runWatch) lastAt() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// watchRuns starts counting ns's PipelineRuns until ctx ends.
func watchRuns(ctx context.Context, client versioned.Interface, ns string) (*runWatch, error) {
	list, err := client.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("watch pipelineruns: %w", err)
	}
	w := &runWatch{names: map[string]bool{}, last: time.Now()}
	for _, pr := range list.Items {
		w.names[pr.Name] = true
	}
	go w.run(ctx, client, ns, list.ResourceVersion)
	return w, nil
}

// run follows the watch, resuming from the last resource version when the
// server closes it.
func (w *runWatch) run(ctx context.Context, client versioned.Interface, ns, rv string) {
	for ctx.Err() == nil {
		wi, err := client.TektonV1().PipelineRuns(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range wi.ResultChan() {
			pr, ok := ev.Object.(*pipelinev1.PipelineRun)
			if !ok {
				continue
			}
			rv = pr.ResourceVersion
			if ev.Type != watch.Added {
				continue
			}
			w.mu.Lock()
			if !w.names[pr.Name] {
				w.names[pr.Name] = true
				w.last = time.Now()
			}
			w.mu.Unlock()
		}
		wi.Stop()
	}
}

func flagsLabel(args []string) string {
	if len(args) == 0 {
		return "default"
	}
	return "`" + strings.Join(args, " ") + "`"
}

func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// benchSecret is a fresh webhook secret for one phase.
func benchSecret() string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(time.Now().UnixNano(), 10)))
	return hex.EncodeToString(sum[:16])
}

// benchRouter is a child `router serve`.
type benchRouter struct {
	cmd    *exec.Cmd
	url    string
	logs   *k8senv.TailBuffer
	exited chan struct{}
}

// startBenchRouter starts this binary's `router serve` on a free port and
// waits until it is ready.
func startBenchRouter(ctx context.Context, bin, dir, kubeconfig, secret string, extra []string) (*benchRouter, error) {
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
		bin = self
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	args := []string{"serve", "--rules", filepath.Join(dir, "rules"), "--data-dir", filepath.Join(dir, "data"),
		"--listen", addr, "--dispatch", "kube", "--kubeconfig", kubeconfig}
	r := &benchRouter{url: "http://" + addr, logs: k8senv.NewTailBuffer(16 << 10), exited: make(chan struct{})}
	r.cmd = exec.Command(bin, append(args, extra...)...)
	r.cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET="+secret, "KUBECONFIG=")
	return r, r.start(ctx, "router")
}

// start starts r's command and waits (at most a minute) until its /readyz
// answers 200; what names it in errors.
func (r *benchRouter) start(ctx context.Context, what string) error {
	r.cmd.Stderr = r.logs
	r.cmd.Stdout = r.logs
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.exited:
			return fmt.Errorf("%s exited before it was ready; log tail:\n%s", what, r.logs.String())
		case <-ctx.Done():
			r.stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	r.stop()
	return fmt.Errorf("%s not ready after a minute; log tail:\n%s", what, r.logs.String())
}

// waitIdle waits (at most 15 s) until the router has judged every webhook
// it stored during the warm-up (switchyard_intake_pending 0), so the
// measured burst starts on an idle router. A router without the metric
// (an older build) gets a second.
func (r *benchRouter) waitIdle(ctx context.Context) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pending, ok := r.series(ctx, "switchyard_intake_pending")
		if !ok {
			time.Sleep(time.Second)
			return
		}
		if pending == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metrics reads the router's /metrics.
func (r *benchRouter) metrics(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// series reads one unlabelled series from the router's /metrics.
func (r *benchRouter) series(ctx context.Context, name string) (float64, bool) {
	data, err := r.metrics(ctx)
	if err != nil {
		return 0, false
	}
	value, found := 0.0, false
	eachSample(data, func(series string, v float64) {
		if series == name {
			value, found = v, true
		}
	})
	return value, found
}

// peakRSS is the child's VmHWM from /proc (Linux only), in MiB (0 when
// unknown) and as the table shows it.
func (r *benchRouter) peakRSS() (mib float64, text string) {
	if runtime.GOOS != "linux" {
		return 0, "n/a (not Linux)"
	}
	mib, err := r.statusMiB("VmHWM")
	if err != nil {
		return 0, "n/a: " + err.Error()
	}
	return mib, fmt.Sprintf("%.0f MiB", mib)
}

// statusMiB reads a memory field of the child's /proc/<pid>/status ("VmRSS",
// "VmHWM"), in MiB.
func (r *benchRouter) statusMiB(field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				return 0, fmt.Errorf("%s: %w", field, err)
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, r.cmd.Process.Pid)
}

// stop ends the child with SIGTERM, then SIGKILL.
func (r *benchRouter) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// loadResult is what runLoad measured.
type loadResult struct {
	ok        int
	codes     map[string]int // failures by status code or error
	latencies []time.Duration
	elapsed   time.Duration
}

func (r loadResult) p(q int) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := (len(r.latencies)*q + 99) / 100
	return r.latencies[min(max(i-1, 0), len(r.latencies)-1)]
}

// perSecond is the rate of successes.
func (r loadResult) perSecond() float64 { return perSecond(r.ok, r.elapsed) }

// figures is the rate of successes and their p50 and p99 latencies.
func (r loadResult) figures() string {
	return fmt.Sprintf("%s/s, p50 %s, p99 %s", rate(r.ok, r.elapsed), ms(r.p(50)), ms(r.p(99)))
}

func (r loadResult) failures() string {
	if len(r.codes) == 0 {
		return ""
	}
	keys := make([]string, 0, len(r.codes))
	for k := range r.codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, r.codes[k]))
	}
	return "; failed: " + strings.Join(parts, ", ")
}

// runLoad calls do n times, c at a time, and measures each call. do
// returns a 2xx status for success. progress is called about once a
// second. With pace > 0 call i starts no earlier than i×pace after the
// first: a steady rate (the wait is not counted in the call's latency).
func runLoad(ctx context.Context, n, c int, pace time.Duration, progress func(done, total int), do func(ctx context.Context, i int) (int, error)) loadResult {
	res := loadResult{codes: map[string]int{}, latencies: make([]time.Duration, 0, n)}
	var mu sync.Mutex
	var next, done atomic.Int64
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				progress(int(done.Load()), n)
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				if pace > 0 {
					select {
					case <-time.After(time.Until(start.Add(time.Duration(i) * pace))):
					case <-ctx.Done():
						return
					}
				}
				t0 := time.Now()
				code, err := do(ctx, i)
				d := time.Since(t0)
				done.Add(1)
				mu.Lock()
				switch {
				case err != nil:
					res.codes[errorKind(err)]++
				case code/100 != 2:
					res.codes[strconv.Itoa(code)]++
				default:
					res.ok++
					res.latencies = append(res.latencies, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	close(stop)
	slices.Sort(res.latencies)
	return res
}

func errorKind(err error) string {
	var status interface{ Status() metav1.Status }
	if errors.As(err, &status) {
		return strconv.Itoa(int(status.Status().Code))
	}
	msg := err.Error()
	if len(msg) > 60 {
		msg = msg[:60]
	}
	return msg
}

// sendPushes posts cfg.events signed GitHub pushes to url, each with its
// own delivery id and its own commit (so no two bodies are alike).
func sendPushes(ctx context.Context, url, secret, prefix string, cfg benchConfig, progress func(done, total int)) loadResult {
	send, done := pushSender(url, secret, prefix, cfg.concurrency)
	defer done()
	return runLoad(ctx, cfg.events, cfg.concurrency, 0, progress, send)
}

// pushSender returns a function posting the i-th signed push to url, and
// one releasing its connections.
func pushSender(url, secret, prefix string, concurrency int) (send func(ctx context.Context, i int) (int, error), done func()) {
	client := &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency},
	}
	after := []byte(`"after": "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d"`)
	return func(ctx context.Context, i int) (int, error) {
		sha := sha256.Sum256([]byte(prefix + strconv.Itoa(i)))
		body := bytes.Replace(samplePush, after, []byte(`"after": "`+hex.EncodeToString(sha[:20])+`"`), 1)
		if i < 0 {
			// A warm-up push (warmUp): to a branch no trigger matches.
			body = bytes.Replace(body, []byte(`"ref": "refs/heads/main"`), []byte(`"ref": "refs/heads/bench-warm-up"`), 1)
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("%s-%08d", prefix, i))
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}, client.CloseIdleConnections
}

// benchWarmUp is how many pushes each HTTP phase gets before it is
// measured: a freshly started server's first requests measure its start
// (heap growth, first connections, a router's start-up work), not how it
// answers a burst.
const benchWarmUp = 200

// warmUp sends benchWarmUp signed pushes to a branch no trigger matches
// (stored, nothing created), not counted.
func (b *bench) warmUp(ctx context.Context, phase, url, secret string) {
	send, done := pushSender(url, secret, "warmup", b.cfg.concurrency)
	defer done()
	warm := func(ctx context.Context, i int) (int, error) { return send(ctx, -1-i) }
	res := runLoad(ctx, benchWarmUp, b.cfg.concurrency, 0, func(int, int) {}, warm)
	b.logf("%s: warmed up with %d pushes to a branch no trigger matches (%d answered 2xx)", phase, benchWarmUp, res.ok)
}

// perSecond is n per second of d (0 for no time).
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func rate(n int, d time.Duration) string { return fmt.Sprintf("%.0f", perSecond(n, d)) }

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func printBench(w io.Writer, cfg benchConfig, rows []benchRow) {
	fmt.Fprintf(w, "\nrouter bench: %d events, %d concurrent, GOMAXPROCS %d, %d CPUs\n\n", cfg.events, cfg.concurrency, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintln(w, "| what | figure |")
	fmt.Fprintln(w, "|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s |\n", r.what, r.figure)
	}
}

// apiserverSample is what bench reads from the API server's /metrics.
type apiserverSample struct {
	throttled float64             // apiserver_request_total with code 429
	rejected  float64             // apiserver_flowcontrol_rejected_requests_total
	buckets   map[float64]float64 // POST pipelineruns duration buckets, by upper bound
	waits     map[float64]float64 // APF queue wait of executed requests, by upper bound
}

func (b *bench) apiserverMetrics(ctx context.Context) (apiserverSample, error) {
	cs, err := kubernetes.NewForConfig(b.admin)
	if err != nil {
		return apiserverSample{}, fmt.Errorf("apiserver metrics: %w", err)
	}
	data, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return apiserverSample{}, fmt.Errorf("apiserver metrics: %w", err)
	}
	return parseAPIServerMetrics(data), nil
}

// eachSample calls fn for every sample in Prometheus text format data.
func eachSample(data []byte, fn func(series string, v float64)) {
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		fn(line[:sp], v)
	}
}

// bucketBound is the upper bound of a histogram bucket sample.
func bucketBound(series string) (float64, bool) {
	_, le, ok := strings.Cut(series, `le="`)
	if !ok {
		return 0, false
	}
	le, _, _ = strings.Cut(le, `"`)
	bound, err := strconv.ParseFloat(le, 64)
	return bound, err == nil
}

// quantileBound is the smallest bucket bound holding the fraction q of a
// cumulative histogram's observations.
func quantileBound(buckets map[float64]float64, q float64) string {
	bounds := slices.Sorted(maps.Keys(buckets))
	if len(bounds) == 0 || buckets[bounds[len(bounds)-1]] == 0 {
		return "n/a"
	}
	total := buckets[bounds[len(bounds)-1]]
	for _, le := range bounds {
		if buckets[le] >= q*total {
			return fmt.Sprintf("≤ %g ms", le*1000)
		}
	}
	return "n/a"
}

// ownMetrics summarizes the router's /metrics: dispatch results and the
// time from a 202 to its PipelineRun. An older router without them says so.
func (r *benchRouter) ownMetrics(ctx context.Context) string {
	data, err := r.metrics(ctx)
	if err != nil {
		return "n/a: " + err.Error()
	}
	results := map[string]float64{}
	toRun, dispatch := map[float64]float64{}, map[float64]float64{}
	deferred := -1.0
	eachSample(data, func(series string, v float64) {
		switch {
		case series == "switchyard_webhooks_deferred_total":
			deferred = v
		case strings.HasPrefix(series, "switchyard_dispatch_total{"):
			_, res, _ := strings.Cut(series, `result="`)
			res, _, _ = strings.Cut(res, `"`)
			results[res] += v
		case strings.HasPrefix(series, "switchyard_event_to_pipelinerun_seconds_bucket{"):
			if le, ok := bucketBound(series); ok {
				toRun[le] += v
			}
		case strings.HasPrefix(series, "switchyard_dispatch_duration_seconds_bucket{"):
			if le, ok := bucketBound(series); ok {
				dispatch[le] += v
			}
		}
	})
	if len(results) == 0 {
		return "n/a (this router has no dispatch metrics)"
	}
	own := fmt.Sprintf("dispatches done %.0f, retried %.0f, dead-lettered %.0f; dispatch p99 %s; 202 to PipelineRun p50 %s, p99 %s",
		results["done"], results["retry"], results["dead_letter"], quantileBound(dispatch, 0.99),
		quantileBound(toRun, 0.5), quantileBound(toRun, 0.99))
	if deferred >= 0 {
		own += fmt.Sprintf("; webhooks deferred (judged behind the 202) %.0f", deferred)
	}
	return own
}

// parseAPIServerMetrics reads the few series bench reports from the
// Prometheus text format.
func parseAPIServerMetrics(data []byte) apiserverSample {
	s := apiserverSample{buckets: map[float64]float64{}, waits: map[float64]float64{}}
	eachSample(data, func(series string, v float64) {
		switch {
		case strings.HasPrefix(series, "apiserver_request_total{") && strings.Contains(series, `code="429"`):
			s.throttled += v
		case strings.HasPrefix(series, "apiserver_flowcontrol_rejected_requests_total{"):
			s.rejected += v
		case strings.HasPrefix(series, "apiserver_flowcontrol_request_wait_duration_seconds_bucket{") &&
			strings.Contains(series, `flow_schema="service-accounts"`) && strings.Contains(series, `execute="true"`):
			if le, ok := bucketBound(series); ok {
				s.waits[le] += v
			}
		case strings.HasPrefix(series, "apiserver_request_duration_seconds_bucket{") &&
			strings.Contains(series, `resource="pipelineruns"`) && strings.Contains(series, `verb="POST"`):
			if le, ok := bucketBound(series); ok {
				s.buckets[le] += v
			}
		}
	})
	return s
}

// apiserverSummary reports 429s and the server-side p99 of PipelineRun
// creates between two samples.
func apiserverSummary(before, after apiserverSample) string {
	delta := make(map[float64]float64, len(after.buckets))
	total := 0.0
	for le, v := range after.buckets {
		delta[le] = v - before.buckets[le]
		total = max(total, delta[le])
	}
	waits := make(map[float64]float64, len(after.waits))
	for le, v := range after.waits {
		waits[le] = v - before.waits[le]
	}
	return fmt.Sprintf("%.0f creates, server-side p99 %s, APF queue wait p99 %s; 429s: %.0f (APF rejections %.0f)",
		total, quantileBound(delta, 0.99), quantileBound(waits, 0.99), after.throttled-before.throttled, after.rejected-before.rejected)
}

// samplePush is the built-in GitHub push `router send` posts, the body the
// bench signs (with a new "after" per event, so no two bodies are alike).
var samplePush = func() []byte {
	b, err := samples.ReadFile("samples/github.json")
	if err != nil {
		panic(err) // embedded at build time: cannot be missing
	}
	return b
}()
