package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/report"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// serveConfig is every flag of `router serve`.
type serveConfig struct {
	rulesDir      string
	listen        string
	dataDir       string
	natsURL       string
	kubeconfig    string
	dispatchMode  string
	kubeQPS       float64
	kubeBurst     int
	streamReplica int
	eventsMaxAge  time.Duration
	maxAttempts   int
	concurrency   int
	shutdownGrace time.Duration
	drainDelay    time.Duration
	logLevel      string
	watchRules    bool
	natsListen    string
	retryBase     time.Duration
	retryMax      time.Duration
	// concurrencyResync is how often pending runs of limited groups are
	// checked for room.
	concurrencyResync time.Duration
	natsAuth          queue.ClientAuth
	auditMaxBytes     int64
	maxInflight       int64
	deferAbove        int
	// Closing the loop (report.go): CDEvents out, and the run watcher.
	cdeventsSink, cdeventsSubject string
	reportResync                  time.Duration
	reportMaxAttempts             int
}

func (c *serveConfig) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.rulesDir, "rules", "./rules", "rules directory holding root.yaml")
	fs.StringVar(&c.listen, "listen", ":8080", "HTTP listen address")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "data directory (embedded JetStream store, dispatched YAML in dir mode)")
	fs.StringVar(&c.natsURL, "nats-url", "", "external NATS server URL; empty starts an embedded server under --data-dir")
	fs.StringVar(&c.natsListen, "nats-listen", "127.0.0.1:0", "where the embedded NATS server also listens, for the operator commands (dlq, replay), with a generated token written to --data-dir/nats.json (mode 0600); port 0 picks a free port; empty: in-process only")
	natsAuthFlags(fs, &c.natsAuth)
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig path (default $KUBECONFIG, then in-cluster config)")
	fs.StringVar(&c.dispatchMode, "dispatch", "auto", "where PipelineRuns go: kube, dir (YAML files under --data-dir/pipelineruns) or auto (kube when a cluster config is found, else dir)")
	fs.Float64Var(&c.kubeQPS, "kube-qps", -1, "Kubernetes client queries per second; negative: no client-side limit, the API server's priority and fairness paces dispatch with 429 and Retry-After, which dispatch honours")
	fs.IntVar(&c.kubeBurst, "kube-burst", 100, "Kubernetes client burst (with a positive --kube-qps)")
	fs.IntVar(&c.streamReplica, "stream-replicas", 1, "JetStream stream replicas (3 on a NATS cluster)")
	fs.DurationVar(&c.eventsMaxAge, "events-max-age", 7*24*time.Hour, "how long accepted events, their status and their dedup keys are kept (replay, status, redeliveries as no-ops); the router's memory grows with the events kept (docs/performance.md)")
	fs.Int64Var(&c.auditMaxBytes, "audit-max-bytes", queue.DefaultAuditMaxBytes, "size cap of the audit stream in bytes (256 MiB); beyond it the oldest records are dropped, so a flood of refused requests cannot fill the store webhooks need")
	fs.Int64Var(&c.maxInflight, "max-inflight-bytes", ingest.DefaultMaxInflight, "memory all request bodies being read or processed may hold at once (64 MiB); a request that finds no room within 2 s is answered 503 with Retry-After")
	fs.IntVar(&c.deferAbove, "defer-above", ingest.DefaultDeferAbove, "while more webhooks than this are being answered at once (a burst), each verified webhook is stored as it came and answered 202 at once, and routed and judged behind the answer, two at a time in the order stored (the answer then lists no targets; once judged, the audit trail and GET /v1/events/{id} show the outcome); 0: always judge before answering")
	fs.IntVar(&c.maxAttempts, "max-attempts", 10, "dispatch attempts before work is dead-lettered")
	fs.DurationVar(&c.retryBase, "retry-base", time.Second, "first retry delay of a failed dispatch; it doubles per attempt, with full jitter")
	fs.DurationVar(&c.retryMax, "retry-max", 5*time.Minute, "longest retry delay (also caps an API server's Retry-After)")
	fs.IntVar(&c.concurrency, "dispatch-concurrency", queue.DefaultConcurrency, "concurrent dispatches in this process")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", 20*time.Second, "after the drain delay, how long SIGTERM waits for in-flight requests and dispatches; dispatches still running then are interrupted and left in the queue")
	fs.DurationVar(&c.drainDelay, "drain-delay", 5*time.Second, "on SIGTERM, how long /readyz answers 503 while requests are still served, so load balancers stop sending before the listener closes")
	fs.DurationVar(&c.concurrencyResync, "concurrency-resync", 10*time.Second, "how often the PipelineRuns of concurrency groups with a limit are checked, to start pending ones as earlier ones finish")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.BoolVar(&c.watchRules, "watch-rules", true, "reload the rules when a file under --rules, or a secret file the rules name, changes (SIGHUP always reloads)")
	fs.StringVar(&c.cdeventsSink, "cdevents-sink", "", "URL CDEvents (pipelinerun queued, started, finished) are posted to as CloudEvents; empty: none (see docs/status.md)")
	fs.StringVar(&c.cdeventsSubject, "cdevents-subject", report.DefaultCDEventsSubject, "NATS subject prefix CDEvents are also published on (<prefix>pipelinerun.<phase>), with --cdevents-sink; empty: HTTP only")
	fs.DurationVar(&c.reportResync, "report-resync", time.Minute, "how often the run watcher re-reads the namespaces to watch and looks at every run again")
	fs.IntVar(&c.reportMaxAttempts, "report-max-attempts", 50, "attempts of a commit status or CDEvent the Git host or sink fails with 5xx or no answer, before it is dropped")
}

func newServeCmd(s ioStreams) *cobra.Command {
	var cfg serveConfig
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the router: webhooks, queue and dispatch",
		Long: `Serves webhooks (/hooks/<source>) and agent events (/v1/events/<endpoint>),
queues accepted work on NATS JetStream (an embedded server under --data-dir,
or --nats-url) and dispatches it as Tekton PipelineRuns: to the cluster of
--kubeconfig or the in-cluster config, or as YAML files under --data-dir
when there is none. Logs are JSON on stderr; /healthz, /readyz and /metrics
are on --listen.`,
		Example: `  # On a laptop: embedded NATS, PipelineRuns written as YAML under ./data/pipelineruns
  GITHUB_WEBHOOK_SECRET=dev-secret router serve --rules rules --dispatch dir

  # In a cluster, three replicas against a 3-node NATS cluster
  router serve --rules /etc/switchyard/rules --nats-url nats://nats:4222 \
    --nats-creds /var/run/nats/router.creds --stream-replicas 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runServe(cmd.Context(), cfg, s.Err))
		},
	}
	cfg.flags(cmd.Flags())
	_ = cmd.MarkFlagDirname("rules")
	_ = cmd.MarkFlagDirname("data-dir")
	_ = cmd.RegisterFlagCompletionFunc("dispatch", fixedCompletion("auto", "kube", "dir"))
	_ = cmd.RegisterFlagCompletionFunc("log-level", fixedCompletion("debug", "info", "warn", "error"))
	return cmd
}

func runServe(ctx context.Context, cfg serveConfig, stderr io.Writer) int {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		fmt.Fprintf(stderr, "router serve: --log-level: %v\n", err)
		return 2
	}
	if cfg.deferAbove < 0 {
		fmt.Fprintf(stderr, "router serve: --defer-above %d: want 0 (never defer) or more\n", cfg.deferAbove)
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := newRouter(cfg, logger)
	if err == nil {
		defer r.Close()
		err = r.Run(ctx)
	}
	if err != nil {
		var ps routing.Problems
		if errors.As(err, &ps) || errors.Is(err, routing.ErrNoRulesDir) {
			printRulesError(stderr, "serve", cfg.rulesDir, err)
			return 1
		}
		if errors.Is(err, queue.ErrDataDirLocked) {
			fmt.Fprintf(stderr, "router serve: %v\n", err)
			return 1
		}
		logger.Error("router stopped", "error", err.Error())
		return 1
	}
	return 0
}

// loadRules loads the manifest with its secrets, as serve needs it.
func loadRules(dir string) (*routing.Rules, error) {
	opts := loadOptions()
	opts.ResolveSecrets = true
	return routing.LoadDir(dir, opts)
}

// The wait for JetStream at start: the first retry after queueRetryMin,
// doubling up to queueRetryMax.
const (
	queueRetryMin = 500 * time.Millisecond
	queueRetryMax = 10 * time.Second
)

// router is `router serve`: newRouter builds it, Run serves until its
// context ends, Close releases what newRouter opened.
type router struct {
	cfg        serveConfig
	logger     *slog.Logger
	holder     *routing.Holder
	nc         *nats.Conn
	natsErr    *lastError
	closeNATS  func()
	creator    dispatch.Creator
	dispatcher *dispatch.Dispatcher
	metrics    *serveMetrics
	queue      *queueGate
	srv        *ingest.Server
	ln         net.Listener
	httpServer *http.Server
	reloader   *routing.Reloader
	// lock is the data directory's, held while the embedded store is open.
	lock      *queue.DataDirLock
	closeOnce sync.Once
	recovery  recoverLoop // recover_serve.go
}

// newRouter locks the data directory, loads the rules, binds the listener
// and connects to NATS, in that order: a second router on the same data
// directory or port fails before it opens anything. The queue is opened by
// Run, which waits for JetStream.
func newRouter(cfg serveConfig, logger *slog.Logger) (_ *router, err error) {
	if err := (queue.Config{Replicas: cfg.streamReplica, AuditMaxBytes: cfg.auditMaxBytes, EventsMaxAge: cfg.eventsMaxAge}).Validate(); err != nil {
		return nil, err
	}
	r := &router{cfg: cfg, logger: logger, queue: &queueGate{}, natsErr: &lastError{}}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if cfg.natsURL == "" {
		if r.lock, err = queue.LockDataDir(cfg.dataDir, queue.LockHolder{Command: "router serve"}); err != nil {
			return nil, lockedHint(err)
		}
	}
	rules, err := loadRules(cfg.rulesDir)
	if err != nil {
		return nil, err
	}
	r.holder = routing.NewHolder(rules)
	logger.Info("rules loaded", "dir", cfg.rulesDir, "sources", len(rules.Sources()), "revision", rules.Revision())
	logWarnings(logger, rules)
	if r.ln, err = net.Listen("tcp", cfg.listen); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if r.lock != nil {
		if err = r.lock.SetListen(r.ln.Addr().String()); err != nil {
			return nil, err
		}
	}
	if r.nc, r.closeNATS, err = connectNATS(cfg, logger, r.natsErr); err != nil {
		return nil, err
	}
	if r.creator, err = newCreator(cfg, logger); err != nil {
		return nil, err
	}
	if r.metrics, err = newServeMetrics(r.holder); err != nil {
		return nil, err
	}
	r.queue.metrics = r.metrics.queue
	r.metrics.auditDropped.gate.Store(r.queue)
	r.metrics.intake.gate.Store(r.queue)
	r.queue.deferred = &r.metrics.intake.deferred
	// Dispatch asks policy again, with the rules in force, before it
	// creates anything: a revoked grant or forged work is dead-lettered.
	changes, err := changesOption(r.holder) // changes.go
	if err != nil {
		return nil, err
	}
	r.dispatcher = dispatch.New(r.creator, logger, dispatch.WithGrant(grant{r.holder}), changes)
	tekton := tektonClient(cfg) // /cancel and the runs' states share it
	r.srv = ingest.NewServer(ingest.Config{Rules: r.holder, Publisher: r.queue, Logger: logger, Ready: r.queue.Ready,
		Metrics: promhttp.Handler(), Audit: r.queue.Audit, Status: r.queue, Approvals: r.queue, Events: r.queue, Cancel: newCanceller(tekton, r.queue, logger), Runs: newRunStates(tekton), MaxInflight: cfg.maxInflight, ReadyDetail: r.recovery.readyDetail,
		Deferrer: r.queue, DeferAbove: cfg.deferAbove})
	r.httpServer = &http.Server{
		Handler:           r.metrics.http.Wrap(r.srv),
		ReadHeaderTimeout: 10 * time.Second,
		// A 25 MiB body on a slow link still fits; a client that trickles
		// forever does not hold a connection.
		ReadTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute,
	}
	// Rules reload on file change and on SIGHUP. Metrics go to the default
	// Prometheus registry; the holder keeps the last reload error for /readyz.
	r.reloader = routing.NewReloader(routing.ReloaderConfig{
		Dir: cfg.rulesDir, Holder: r.holder, Logger: logger,
		Metrics: routing.NewReloadMetrics(prometheus.DefaultRegisterer),
		Load: func(dir string) (*routing.Rules, error) {
			rules, err := reloadRules(dir)
			if err == nil {
				logWarnings(logger, rules)
			}
			return rules, err
		},
	})
	return r, nil
}

// lockedHint adds what to do to the error of a data directory another
// process holds.
func lockedHint(err error) error {
	var le *queue.LockedError
	if !errors.As(err, &le) {
		return err
	}
	return fmt.Errorf("%w: stop it first, or give this router another --data-dir (and --listen)", err)
}

// Close releases the listener, the NATS connection (and the embedded
// server) and the data directory. Call it once Run returned, or instead of Run.
func (r *router) Close() {
	r.closeOnce.Do(func() {
		if r.ln != nil {
			_ = r.ln.Close() // already closed after Run
		}
		if r.closeNATS != nil {
			r.closeNATS()
		}
		// Last: the store and the connection file are closed and gone.
		r.lock.Unlock()
	})
}

// Run serves HTTP at once (/readyz 503 until the queue is open), waits for
// JetStream, then dispatches, until ctx ends: then it drains and shuts down.
func (r *router) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	// A part failing also ends the wait for the queue.
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	fail := func(err error) { errc <- err; cancelWait() }
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.httpServer.Serve(r.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("http: %w", err))
		}
	}()
	stopReload := r.startReload(ctx)
	defer stopReload()

	consumeCtx, stopConsume := context.WithCancel(context.WithoutCancel(ctx))
	// Cancelled at the end of the shutdown grace: dispatches still running
	// then are interrupted and their work handed back to the queue.
	handlerCtx, abortHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer abortHandlers()
	if q := r.openQueue(waitCtx); q != nil {
		r.queue.set(q)
		r.logger.Info("listening", "addr", r.ln.Addr().String())
		r.startDispatch(consumeCtx, handlerCtx, &wg, q, fail)
		r.startIntake(consumeCtx, &wg, q)
		r.startRecovery(consumeCtx, &wg, q)
		r.startReport(consumeCtx, &wg, q, fail)
		r.startApprovalSweeper(consumeCtx, &wg, q)
	}

	runErr := r.awaitStop(ctx, errc)
	r.shutdown(&wg, stopConsume, abortHandlers)
	stats := r.dispatcher.Stats()
	r.logger.Info("stopped", "created", stats.Created, "existed", stats.Existed, "permanent_failures", stats.Permanent, "transient_failures", stats.Transient, "refused", stats.Refused)
	return runErr
}

// openQueue opens the queue, retrying while JetStream is not ready (a
// cluster electing its leader, a server started after the router). It
// returns nil when ctx ends first.
func (r *router) openQueue(ctx context.Context) *queue.Queue {
	cfg := queue.Config{Replicas: r.cfg.streamReplica, AuditMaxBytes: r.cfg.auditMaxBytes, EventsMaxAge: r.cfg.eventsMaxAge}
	delay := queueRetryMin
	for attempt := 1; ; attempt++ {
		q, err := queue.Open(ctx, r.nc, cfg, r.logger)
		if err == nil {
			return q
		}
		if ctx.Err() != nil {
			return nil
		}
		attrs := []any{"error", err.Error(), "attempt", attempt, "retry_in", delay.String(), "nats_status", r.nc.Status().String()}
		if last := r.natsErr.get(); last != "" && !r.nc.IsConnected() {
			attrs = append(attrs, "nats_error", last)
		}
		r.logger.Warn("jetstream not ready: retrying", attrs...)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, queueRetryMax)
	}
}

// startDispatch starts consuming work (and the concurrency groups' resync)
// on q.
func (r *router) startDispatch(consumeCtx, handlerCtx context.Context, wg *sync.WaitGroup, q *queue.Queue, fail func(error)) {
	// Concurrency groups (kube dispatch only): decisions are serialized per
	// group across replicas with the queue's lock, and a resync starts
	// pending runs as earlier ones finish.
	var concurrency *dispatch.Concurrency
	if kc, ok := r.creator.(*dispatch.KubeCreator); ok {
		concurrency = kc.UseLocker(q, r.logger)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := q.Consume(consumeCtx, queue.ConsumerConfig{
			MaxAttempts: r.cfg.maxAttempts, Concurrency: r.cfg.concurrency, HandlerContext: handlerCtx,
			BackoffBase: r.cfg.retryBase, BackoffMax: r.cfg.retryMax, Metrics: r.metrics.queue,
		}, r.dispatcher.Handle)
		if err != nil {
			fail(fmt.Errorf("dispatch: %w", err))
		}
	}()
	if concurrency != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			concurrency.Run(consumeCtx, r.cfg.concurrencyResync, func() []string { return r.holder.Rules().LimitedNamespaces() })
		}()
	}
}

// startIntake judges the webhooks stored while the router answered a
// burst (ingest.Server.Judge), holding each back while the burst lasts, for
// at most 5 s, so the answers get the CPU first.
func (r *router) startIntake(ctx context.Context, wg *sync.WaitGroup, q *queue.Queue) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = q.ConsumeIntake(ctx, queue.IntakeConfig{Busy: r.srv.Busy}, func(ctx context.Context, in queue.Intake) error {
			return r.srv.Judge(ctx, ingest.Deferred(in))
		})
	}()
}

// startReload reloads the rules on SIGHUP and, with --watch-rules, on file
// change, until the returned stop is called.
func (r *router) startReload(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		reloadOnSIGHUP(ctx, r.reloader)
	}()
	go func() {
		defer wg.Done()
		if !r.cfg.watchRules {
			return
		}
		if err := r.reloader.Run(ctx); err != nil {
			r.logger.Warn("rules watch unavailable: reload with SIGHUP", "error", err.Error())
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// awaitStop waits for ctx to end, then drains for the drain delay, or for
// a part to fail; it returns that failure.
func (r *router) awaitStop(ctx context.Context, errc <-chan error) error {
	select {
	case <-ctx.Done():
		r.logger.Info("shutting down", "drain_delay", r.cfg.drainDelay.String(), "grace", r.cfg.shutdownGrace.String())
		// Readiness goes false first; requests are still served while
		// load balancers notice.
		r.srv.Drain()
		select {
		case <-time.After(r.cfg.drainDelay):
			return nil
		case err := <-errc:
			return err
		}
	case err := <-errc:
		return err
	}
}

// shutdown stops taking requests and fetching work, and lets in-flight
// requests and dispatches finish within the grace; dispatches still
// running after it are interrupted and stay in the queue for the next
// replica or start.
func (r *router) shutdown(wg *sync.WaitGroup, stopConsume, abortHandlers func()) {
	shutdownCtx, cancel := context.WithTimeout(context.Background(), r.cfg.shutdownGrace)
	defer cancel()
	stopConsume()
	if err := r.httpServer.Shutdown(shutdownCtx); err != nil {
		r.logger.Warn("http shutdown", "error", err.Error())
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-shutdownCtx.Done():
		r.logger.Warn("shutdown grace over: interrupting running dispatches, their work stays queued")
		abortHandlers()
		<-stopped
	}
	// The audit records of the last requests, before the connection closes.
	if q := r.queue.q.Load(); q != nil {
		flushCtx, cancel := context.WithTimeout(context.Background(), auditFlushWait)
		defer cancel()
		if err := q.FlushAudit(flushCtx); err != nil {
			r.logger.Warn("audit records lost at shutdown (the log has every decision)", "error", err.Error())
		}
	}
}

// auditFlushWait is how long a stopping router waits for its last audit
// records to be stored, after the grace: milliseconds when JetStream
// answers; when it does not, waiting longer would not store them. Within
// the 5 s the deployments leave past drain and grace (deploy/README.md).
const auditFlushWait = 2 * time.Second

// grant is dispatch's second opinion: policy, under the rules in force.
type grant struct{ holder *routing.Holder }

var _ dispatch.Grant = grant{}

func (g grant) Admit(w queue.Work) error {
	return policy.Recheck(g.holder.Rules(), w.Source, &w.Event, w.Target)
}

// queueGate stands for the queue until Run has opened it: webhooks and
// status reads get 503 (senders retry), /readyz says why, and audit
// records are only logged (ingest logs every decision).
type queueGate struct {
	q atomic.Pointer[queue.Queue]
	// metrics times publishes (switchyard_publish_duration_seconds).
	metrics *queue.Metrics
	// deferred counts the webhooks stored to be judged behind their 202.
	deferred *atomic.Uint64
}

var (
	_ ingest.Publisher    = (*queueGate)(nil)
	_ ingest.StatusReader = (*queueGate)(nil)
)

var errQueueNotOpen = fmt.Errorf("jetstream not ready yet: %w", queue.ErrUnavailable)

func (g *queueGate) set(q *queue.Queue) { g.q.Store(q) }

func (g *queueGate) Publish(ctx context.Context, a policy.Accepted) error {
	q := g.q.Load()
	if q == nil {
		return errQueueNotOpen
	}
	if g.metrics != nil {
		return g.metrics.Publisher(q).Publish(ctx, a)
	}
	return q.Publish(ctx, a)
}

func (g *queueGate) Defer(ctx context.Context, d ingest.Deferred) error {
	q := g.q.Load()
	if q == nil {
		return errQueueNotOpen
	}
	if err := q.StoreIntake(ctx, queue.Intake(d)); err != nil {
		return err
	}
	if g.deferred != nil {
		g.deferred.Add(1)
	}
	return nil
}

func (g *queueGate) Ready(ctx context.Context) error {
	q := g.q.Load()
	if q == nil {
		return errQueueNotOpen
	}
	return q.Ready(ctx)
}

func (g *queueGate) Audit(rec policy.Record) {
	if q := g.q.Load(); q != nil {
		q.Audit(rec)
	}
}

func (g *queueGate) Status(ctx context.Context, source, eventID string) (policy.EventStatus, error) {
	q := g.q.Load()
	if q == nil {
		return policy.EventStatus{}, errQueueNotOpen
	}
	return q.Status(ctx, source, eventID)
}

// lastError is the latest failed NATS connection attempt, for the log of
// the wait for JetStream (nats.Conn.LastError does not keep those).
type lastError struct{ p atomic.Pointer[string] }

func (l *lastError) set(err error) {
	s := err.Error()
	l.p.Store(&s)
}

func (l *lastError) get() string {
	if p := l.p.Load(); p != nil {
		return *p
	}
	return ""
}

// connectNATS connects to --nats-url, or starts the embedded server.
// Failed connection attempts are recorded in connErr.
func connectNATS(cfg serveConfig, logger *slog.Logger, connErr *lastError) (*nats.Conn, func(), error) {
	opts := []nats.Option{
		nats.Name("switchyard-router"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "error", err.Error())
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { logger.Info("nats reconnected") }),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { connErr.set(err) }),
	}
	if cfg.natsURL != "" {
		return connectExternal(cfg, logger, opts)
	}
	if cfg.natsAuth != (queue.ClientAuth{}) {
		return nil, nil, errAuthNeedsURL
	}
	storeDir := filepath.Join(cfg.dataDir, "jetstream")
	eo := queue.EmbeddedOptions{StoreDir: storeDir, Logger: logger}
	if cfg.natsListen != "" {
		host, port, err := net.SplitHostPort(cfg.natsListen)
		if err != nil {
			return nil, nil, fmt.Errorf("--nats-listen %q: %w", cfg.natsListen, err)
		}
		if port == "0" {
			port = "-1" // nats-server's "any free port"; its 0 means 4222
		}
		eo.Listen = net.JoinHostPort(host, port)
		if eo.Token, err = newToken(); err != nil {
			return nil, nil, err
		}
	}
	emb, err := queue.StartEmbedded(eo)
	if err != nil {
		return nil, nil, err
	}
	nc, err := emb.Connect(opts...)
	if err != nil {
		emb.Shutdown()
		return nil, nil, err
	}
	connFile := ""
	if eo.Listen != "" {
		connFile = filepath.Join(cfg.dataDir, natsConnFile)
		if err := writeConnInfo(connFile, connInfo{URL: emb.ClientURL(), Token: eo.Token}); err != nil {
			nc.Close()
			emb.Shutdown()
			return nil, nil, err
		}
	}
	logger.Info("embedded nats started", "store_dir", storeDir, "client_url", emb.ClientURL())
	return nc, func() {
		_ = nc.Drain()
		nc.Close()
		emb.Shutdown()
		if connFile != "" {
			_ = os.Remove(connFile)
		}
	}, nil
}

// connectExternal connects to --nats-url, retrying in the background while
// no server answers (Run waits for JetStream).
func connectExternal(cfg serveConfig, logger *slog.Logger, opts []nats.Option) (*nats.Conn, func(), error) {
	opts = append(opts, nats.RetryOnFailedConnect(true), nats.ConnectHandler(func(nc *nats.Conn) {
		logger.Info("nats connected", "url", queue.RedactURL(nc.ConnectedUrl()))
	}))
	nc, err := queue.Connect(cfg.natsURL, cfg.natsAuth, opts...)
	if err != nil {
		return nil, nil, err
	}
	if !nc.IsConnected() {
		logger.Warn("nats not reachable yet: retrying", "url", queue.RedactURL(cfg.natsURL))
	}
	return nc, func() {
		// A connection still retrying cannot drain: close it.
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
	}, nil
}

// newCreator picks where PipelineRuns go.
func newCreator(cfg serveConfig, logger *slog.Logger) (dispatch.Creator, error) {
	dir := dispatch.DirCreator{Dir: filepath.Join(cfg.dataDir, "pipelineruns")}
	switch cfg.dispatchMode {
	case "dir":
		logger.Info("dispatching to files", "dir", dir.Dir)
		return dir, nil
	case "kube", "auto":
		restCfg, err := dispatch.RESTConfig(cfg.kubeconfig, float32(cfg.kubeQPS), cfg.kubeBurst)
		if errors.Is(err, dispatch.ErrNoCluster) && cfg.dispatchMode == "auto" {
			logger.Info("no kubernetes cluster configured: dispatching to files", "dir", dir.Dir)
			return dir, nil
		}
		if err != nil {
			return nil, fmt.Errorf("kubernetes config: %w", err)
		}
		kc, err := dispatch.NewKubeCreator(restCfg)
		if err != nil {
			return nil, err
		}
		logger.Info("dispatching to kubernetes", "host", restCfg.Host, "qps", cfg.kubeQPS, "burst", cfg.kubeBurst)
		return kc, nil
	default:
		return nil, fmt.Errorf("--dispatch %q: want auto, kube or dir", cfg.dispatchMode)
	}
}

// reloadOnSIGHUP reloads the rules on SIGHUP, keeping the last good rules
// when the new ones are invalid.
func reloadOnSIGHUP(ctx context.Context, reloader *routing.Reloader) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = reloader.Reload() // logged, counted and kept for /readyz by the reloader
		}
	}
}
