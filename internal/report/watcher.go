package report

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	informers "github.com/tektoncd/pipeline/pkg/client/informers/externalversions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
)

// Publisher stores jobs; *Queue is one.
type Publisher interface {
	Publish(ctx context.Context, j Job) error
}

var _ Publisher = (*Queue)(nil)

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	Client versioned.Interface
	// Namespaces returns where to watch (the apps' granted namespaces); it
	// is read again every Resync, so a rules reload adds or drops some.
	Namespaces func() []string
	// Status reports whether the runs of a router source get commit
	// statuses (the source's report setting).
	Status func(source string) bool
	// CDEvents makes CDEvents jobs for every run.
	CDEvents  bool
	Publisher Publisher
	Logger    *slog.Logger
	// Resync is how often namespaces are re-read and every run looked at
	// again, republishing what could not be stored (default 1 min).
	Resync time.Duration
}

// Watcher watches the PipelineRuns and TaskRuns Switchyard created, in each namespace
// (the router's RBAC is per namespace: no cluster-wide list), and publishes
// the reports their states call for.
type Watcher struct {
	cfg WatcherConfig
	log *slog.Logger

	mu sync.Mutex
	// published holds, per run uid, the msg ids JetStream stored: they are
	// not published again while the run lives.
	published map[string][]string
	pending   []queued
	queued    map[string]bool // msg ids in pending
	wake      chan struct{}
	now       func() time.Time
}

// NewWatcher returns a Watcher; Run starts it.
func NewWatcher(cfg WatcherConfig) *Watcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Minute
	}
	if cfg.Status == nil {
		cfg.Status = func(string) bool { return false }
	}
	return &Watcher{cfg: cfg, log: cfg.Logger.With("component", "report-watcher"),
		published: map[string][]string{}, queued: map[string]bool{}, wake: make(chan struct{}, 1), now: time.Now}
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.publishLoop(ctx)
	}()
	running := map[string]factories{}
	defer func() {
		for _, f := range running {
			f.Shutdown()
		}
		wg.Wait()
	}()
	t := time.NewTicker(w.cfg.Resync)
	defer t.Stop()
	for {
		want := w.cfg.Namespaces()
		for ns, f := range running {
			if !slices.Contains(want, ns) {
				f.Shutdown()
				delete(running, ns)
				w.log.Info("stopped watching runs", "namespace", ns)
			}
		}
		for _, ns := range want {
			if _, ok := running[ns]; !ok {
				running[ns] = w.watch(ctx, ns)
				w.log.Info("watching runs", "namespace", ns)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// watch starts informers on one namespace's managed PipelineRuns and
// TaskRuns. A TaskRun of a PipelineRun carries its labels (Tekton copies
// them) but is reported through its PipelineRun: the selector leaves it out.
func (w *Watcher) watch(ctx context.Context, ns string) factories {
	managed := dispatch.LabelManagedBy + "=" + dispatch.ManagedBy
	f := informers.NewSharedInformerFactoryWithOptions(w.cfg.Client, w.cfg.Resync,
		informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = managed }))
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observe(obj, false) },
		UpdateFunc: func(_, obj any) { w.observe(obj, false) },
		DeleteFunc: func(obj any) { w.observe(obj, true) },
	}
	_, _ = f.Tekton().V1().PipelineRuns().Informer().AddEventHandler(handler)
	tf := informers.NewSharedInformerFactoryWithOptions(w.cfg.Client, w.cfg.Resync,
		informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = managed + ",!" + labelPipelineRun }))
	_, _ = tf.Tekton().V1().TaskRuns().Informer().AddEventHandler(handler)
	f.Start(ctx.Done())
	tf.Start(ctx.Done())
	return factories{f, tf}
}

// labelPipelineRun is the label Tekton puts on a PipelineRun's TaskRuns.
const labelPipelineRun = "tekton.dev/pipelineRun"

// factories shuts several informer factories down together.
type factories []informers.SharedInformerFactory

func (fs factories) Shutdown() {
	for _, f := range fs {
		f.Shutdown()
	}
}

// observe queues the jobs a run's state calls for that were not stored
// yet. A deleted run is forgotten once its jobs are queued.
func (w *Watcher) observe(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	var o observed
	switch run := obj.(type) {
	case *pipelinev1.PipelineRun:
		o = observePipelineRun(run)
	case *pipelinev1.TaskRun:
		if _, child := run.Labels[labelPipelineRun]; child || metav1.GetControllerOf(run) != nil {
			return // a PipelineRun's task: its PipelineRun reports it
		}
		o = observeTaskRun(run)
	default:
		return
	}
	if o.meta.Labels[dispatch.LabelManagedBy] != dispatch.ManagedBy {
		return
	}
	source := o.meta.Annotations[dispatch.AnnotationRouterSource]
	jobs := jobsFor(o, deleted, w.cfg.Status(source), w.cfg.CDEvents, w.now().UTC())
	uid := string(o.meta.UID)
	w.mu.Lock()
	done, n := w.published[uid], 0
	for _, j := range jobs {
		if id := j.MsgID(); !slices.Contains(done, id) && !w.queued[id] {
			w.pending = append(w.pending, queued{Job: j, last: deleted})
			w.queued[id] = true
			n++
		}
	}
	if deleted && n == 0 {
		delete(w.published, uid)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// queued is a job waiting to be stored; last marks the jobs of a deleted run.
type queued struct {
	Job
	last bool
}

// publishLoop stores the queued jobs, in order, retrying while JetStream
// is unavailable.
func (w *Watcher) publishLoop(ctx context.Context) {
	delay := 500 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			if len(w.pending) == 0 {
				w.mu.Unlock()
				break
			}
			j := w.pending[0]
			w.mu.Unlock()
			pubCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := w.cfg.Publisher.Publish(pubCtx, j.Job)
			cancel()
			if err != nil {
				w.log.Warn("report not queued: retrying", "pipelinerun", j.Run.Name, "namespace", j.Run.Namespace, "kind", j.Kind, "state", j.State, "error", err.Error())
				sleep(ctx, delay)
				if ctx.Err() != nil {
					return
				}
				delay = min(2*delay, 30*time.Second)
				continue
			}
			delay = 500 * time.Millisecond
			w.mu.Lock()
			w.pending = w.pending[1:]
			delete(w.queued, j.MsgID())
			if j.last {
				delete(w.published, j.Run.UID) // the run is gone: nothing more to remember
			} else {
				w.published[j.Run.UID] = append(w.published[j.Run.UID], j.MsgID())
			}
			w.mu.Unlock()
		}
	}
}
