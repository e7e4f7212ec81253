package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/queue"
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
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.rulesDir, "rules", "./rules", "rules directory holding root.yaml")
	fs.StringVar(&c.listen, "listen", ":8080", "HTTP listen address")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "data directory (embedded JetStream store, dispatched YAML in dir mode)")
	fs.StringVar(&c.natsURL, "nats-url", "", "external NATS server URL; empty starts an embedded server under --data-dir")
	fs.StringVar(&c.natsListen, "nats-listen", "127.0.0.1:0", "where the embedded NATS server also listens, for the operator commands (dlq, replay), with a generated token written to --data-dir/nats.json (mode 0600); port 0 picks a free port; empty: in-process only")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig path (default $KUBECONFIG, then in-cluster config)")
	fs.StringVar(&c.dispatchMode, "dispatch", "auto", "where PipelineRuns go: kube, dir (YAML files under --data-dir/pipelineruns) or auto (kube when a cluster config is found, else dir)")
	fs.Float64Var(&c.kubeQPS, "kube-qps", -1, "Kubernetes client queries per second; negative: no client-side limit, the API server's priority and fairness paces dispatch with 429 and Retry-After, which dispatch honours")
	fs.IntVar(&c.kubeBurst, "kube-burst", 100, "Kubernetes client burst (with a positive --kube-qps)")
	fs.IntVar(&c.streamReplica, "stream-replicas", 1, "JetStream stream replicas (3 on a NATS cluster)")
	fs.IntVar(&c.maxAttempts, "max-attempts", 10, "dispatch attempts before work is dead-lettered")
	fs.DurationVar(&c.retryBase, "retry-base", time.Second, "first retry delay of a failed dispatch; it doubles per attempt, with full jitter")
	fs.DurationVar(&c.retryMax, "retry-max", 5*time.Minute, "longest retry delay (also caps an API server's Retry-After)")
	fs.IntVar(&c.concurrency, "dispatch-concurrency", queue.DefaultConcurrency, "concurrent dispatches in this process")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", 20*time.Second, "after the drain delay, how long SIGTERM waits for in-flight requests and dispatches; dispatches still running then are interrupted and left in the queue")
	fs.DurationVar(&c.drainDelay, "drain-delay", 5*time.Second, "on SIGTERM, how long /readyz answers 503 while requests are still served, so load balancers stop sending before the listener closes")
	fs.DurationVar(&c.concurrencyResync, "concurrency-resync", 10*time.Second, "how often the PipelineRuns of concurrency groups with a limit are checked, to start pending ones as earlier ones finish")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.BoolVar(&c.watchRules, "watch-rules", true, "reload the rules when a file under --rules changes (SIGHUP always reloads)")
}

func cmdServe(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg serveConfig
	cfg.flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		fmt.Fprintf(stderr, "router serve: --log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, logger); err != nil {
		var ps routing.Problems
		if errors.As(err, &ps) {
			fmt.Fprintf(stderr, "router serve: the rules in %s are invalid:\n", cfg.rulesDir)
			printProblems(stderr, err)
			return 1
		}
		logger.Error("router stopped", "error", err.Error())
		return 1
	}
	return 0
}

// loadRules loads the manifest with its secrets, as serve needs it.
func loadRules(dir string) (*routing.Rules, error) {
	opts := ingest.LoadOptions()
	opts.ResolveSecrets = true
	return routing.LoadDir(dir, opts)
}

// serve runs the router until ctx ends.
func serve(ctx context.Context, cfg serveConfig, logger *slog.Logger) error {
	rules, err := loadRules(cfg.rulesDir)
	if err != nil {
		return err
	}
	holder := routing.NewHolder(rules)
	logger.Info("rules loaded", "dir", cfg.rulesDir, "sources", len(rules.Sources()))

	nc, closeNATS, err := connectNATS(cfg, logger)
	if err != nil {
		return err
	}
	defer closeNATS()

	q, err := queue.Open(ctx, nc, queue.Config{Replicas: cfg.streamReplica}, logger)
	if err != nil {
		return fmt.Errorf("open queue: %w", err)
	}

	sm, err := newServeMetrics(holder)
	if err != nil {
		return err
	}

	creator, err := newCreator(cfg, logger)
	if err != nil {
		return err
	}
	dispatcher := dispatch.New(creator, logger)
	// Concurrency groups (kube dispatch only): decisions are serialized per
	// group across replicas with the queue's lock, and a resync starts
	// pending runs as earlier ones finish.
	var concurrency *dispatch.Concurrency
	if kc, ok := creator.(*dispatch.KubeCreator); ok {
		concurrency = kc.UseLocker(q, logger)
	}

	srv := ingest.NewServer(ingest.Config{Rules: holder, Publisher: sm.queue.Publisher(q), Logger: logger, Ready: q.Ready, Metrics: promhttp.Handler(), Audit: q.Audit, Status: q})
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	httpServer := &http.Server{
		Handler:           sm.http.Wrap(srv),
		ReadHeaderTimeout: 10 * time.Second,
		// A 25 MiB body on a slow link still fits; a client that trickles
		// forever does not hold a connection.
		ReadTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute,
	}
	logger.Info("listening", "addr", ln.Addr().String())

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	consumeCtx, stopConsume := context.WithCancel(context.WithoutCancel(ctx))
	// Cancelled at the end of the shutdown grace: dispatches still running
	// then are interrupted and their work handed back to the queue.
	handlerCtx, abortHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer abortHandlers()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		err := q.Consume(consumeCtx, queue.ConsumerConfig{
			MaxAttempts: cfg.maxAttempts, Concurrency: cfg.concurrency, HandlerContext: handlerCtx,
			BackoffBase: cfg.retryBase, BackoffMax: cfg.retryMax, Metrics: sm.queue,
		}, dispatcher.Handle)
		if err != nil {
			errc <- fmt.Errorf("dispatch: %w", err)
		}
	}()

	if concurrency != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			concurrency.Run(consumeCtx, cfg.concurrencyResync, func() []string { return holder.Rules().LimitedNamespaces() })
		}()
	}

	// Rules reload on file change and on SIGHUP. Metrics go to the default
	// Prometheus registry; the holder keeps the last reload error for /readyz.
	reloader := routing.NewReloader(routing.ReloaderConfig{
		Dir: cfg.rulesDir, Load: loadRules, Holder: holder, Logger: logger,
		Metrics: routing.NewReloadMetrics(prometheus.DefaultRegisterer),
	})
	reloadCtx, stopReload := context.WithCancel(ctx)
	var reloadWG sync.WaitGroup
	reloadWG.Add(2)
	go func() {
		defer reloadWG.Done()
		reloadOnSIGHUP(reloadCtx, reloader)
	}()
	go func() {
		defer reloadWG.Done()
		if !cfg.watchRules {
			return
		}
		if err := reloader.Run(reloadCtx); err != nil {
			logger.Warn("rules watch unavailable: reload with SIGHUP", "error", err.Error())
		}
	}()
	defer func() {
		stopReload()
		reloadWG.Wait()
	}()

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "drain_delay", cfg.drainDelay.String(), "grace", cfg.shutdownGrace.String())
		// Readiness goes false first; requests are still served while
		// load balancers notice.
		srv.Drain()
		select {
		case <-time.After(cfg.drainDelay):
		case runErr = <-errc:
		}
	case runErr = <-errc:
	}
	// Then stop taking requests and fetching work, and let in-flight
	// requests and dispatches finish within the grace; dispatches still
	// running after it are interrupted and stay in the queue for the next
	// replica or start.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownGrace)
	defer cancel()
	stopConsume()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		logger.Warn("http shutdown", "error", err.Error())
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-shutdownCtx.Done():
		logger.Warn("shutdown grace over: interrupting running dispatches, their work stays queued")
		abortHandlers()
		<-stopped
	}
	stats := dispatcher.Stats()
	logger.Info("stopped", "created", stats.Created, "existed", stats.Existed, "permanent_failures", stats.Permanent, "transient_failures", stats.Transient)
	return runErr
}

// connectNATS connects to --nats-url, or starts the embedded server.
func connectNATS(cfg serveConfig, logger *slog.Logger) (*nats.Conn, func(), error) {
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
	}
	if cfg.natsURL != "" {
		nc, err := nats.Connect(cfg.natsURL, append(opts, nats.RetryOnFailedConnect(true))...)
		if err != nil {
			return nil, nil, fmt.Errorf("connect nats: %w", err)
		}
		logger.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		return nc, func() { _ = nc.Drain() }, nil
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
		return nil, nil, fmt.Errorf("connect embedded nats: %w", err)
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
