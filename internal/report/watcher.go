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
	"k8s.io/apimachinery/pkg/api/meta"
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
	// Live, when set, remembers the runs reported unfinished, so a run
	// deleted while no watcher ran is still reported (see LiveRuns).
	Live   LiveRuns
	Logger *slog.Logger
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
		w.sweep(ctx, running)
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
	prs := f.Tekton().V1().PipelineRuns().Informer()
	_ = prs.SetTransform(slimRun) // cannot fail: not started yet
	_, _ = prs.AddEventHandler(handler)
	tf := informers.NewSharedInformerFactoryWithOptions(w.cfg.Client, w.cfg.Resync,
		informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = managed + ",!" + labelPipelineRun }))
	trs := tf.Tekton().V1().TaskRuns().Informer()
	_ = trs.SetTransform(slimRun)
	_, _ = trs.AddEventHandler(handler)
	f.Start(ctx.Done())
	tf.Start(ctx.Done())
	return factories{fs: []informers.SharedInformerFactory{f, tf}, infs: []cache.SharedIndexInformer{prs, trs}}
}

// slimRun keeps of a PipelineRun or TaskRun what the watcher reads
// (observePipelineRun, observeTaskRun): its metadata without managed
// fields, its pipelineRef or taskRef, and the status' conditions, times and
// children. The informers' caches hold every managed run of the watched
// namespaces, and a run's managed fields, parameters and resolved spec
// (status.pipelineSpec, status.taskSpec, provenance) are most of its size.
func slimRun(obj any) (any, error) {
	switch run := obj.(type) {
	case *pipelinev1.PipelineRun:
		slim := &pipelinev1.PipelineRun{TypeMeta: run.TypeMeta, ObjectMeta: run.ObjectMeta}
		slim.ManagedFields = nil
		slim.Spec.PipelineRef = run.Spec.PipelineRef
		slim.Status.Status = run.Status.Status
		slim.Status.StartTime, slim.Status.CompletionTime = run.Status.StartTime, run.Status.CompletionTime
		slim.Status.ChildReferences = run.Status.ChildReferences
		return slim, nil
	case *pipelinev1.TaskRun:
		slim := &pipelinev1.TaskRun{TypeMeta: run.TypeMeta, ObjectMeta: run.ObjectMeta}
		slim.ManagedFields = nil
		slim.Spec.TaskRef = run.Spec.TaskRef
		slim.Status.Status = run.Status.Status
		slim.Status.StartTime, slim.Status.CompletionTime = run.Status.StartTime, run.Status.CompletionTime
		return slim, nil
	}
	return obj, nil // a tombstone or another kind: as it is
}

// labelPipelineRun is the label Tekton puts on a PipelineRun's TaskRuns.
const labelPipelineRun = "tekton.dev/pipelineRun"

// factories are one namespace's informer factories and the informers
// they run.
type factories struct {
	fs   []informers.SharedInformerFactory
	infs []cache.SharedIndexInformer
}

// Shutdown stops the informers.
func (f factories) Shutdown() {
	for _, factory := range f.fs {
		factory.Shutdown()
	}
}

// synced reports whether every informer has listed its runs, and adds
// their uids to uids.
func (f factories) synced(uids map[string]bool) bool {
	for _, inf := range f.infs {
		if !inf.HasSynced() {
			return false
		}
		for _, obj := range inf.GetStore().List() {
			if m, err := meta.Accessor(obj); err == nil {
				uids[string(m.GetUID())] = true
			}
		}
	}
	return true
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
	status, now := w.cfg.Status(source), w.now().UTC()
	jobs := jobsFor(o, deleted, status, w.cfg.CDEvents, now)
	uid := string(o.meta.UID)
	if w.anyNewWithTasks(uid, jobs) {
		w.addTaskResults(o, jobs)
	}
	w.mu.Lock()
	n := 0
	for _, j := range jobs {
		if w.isNew(uid, j) {
			w.pending = append(w.pending, queued{Job: j, last: deleted})
			w.queued[j.MsgID()] = true
			n++
		}
	}
	if n > 0 && w.cfg.Live != nil {
		// Once the run's new state is stored, remember what its deletion
		// would report, or forget it once it finished.
		last := &w.pending[len(w.pending)-1]
		if deleted || resultOf(o).state != "" {
			last.forget = true
		} else {
			last.remember = finalJobs(jobsFor(o, true, status, w.cfg.CDEvents, now))
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

// queued is a job waiting to be stored; last marks the jobs of a deleted
// run. Once it is stored, remember is stored as the run's deletion jobs
// (LiveRuns), or forget drops them.
type queued struct {
	Job
	last     bool
	remember []Job
	forget   bool
}

// finalJobs keeps of jobs the final ones: the status and the finished
// CDEvent.
func finalJobs(jobs []Job) []Job {
	return slices.DeleteFunc(jobs, func(j Job) bool { return j.Kind == KindCDEvent && j.State != PhaseFinished })
}

// sweep reports the runs remembered live (LiveRuns) that are gone: a run
// deleted while no watcher ran, which no informer will announce. It waits
// until every namespace's informers have listed their runs, and leaves
// alone the runs of namespaces it does not watch.
func (w *Watcher) sweep(ctx context.Context, running map[string]factories) {
	if w.cfg.Live == nil {
		return
	}
	uids := map[string]bool{}
	for _, f := range running {
		if !f.synced(uids) {
			return
		}
	}
	live, err := w.cfg.Live.LiveRuns(ctx)
	if err != nil {
		w.log.Warn("live runs not read", "error", err.Error())
		return
	}
	now := w.now().UTC()
	w.mu.Lock()
	n := 0
	for uid, jobs := range live {
		if uids[uid] || len(jobs) == 0 {
			continue
		}
		if _, watched := running[jobs[0].Run.Namespace]; !watched {
			continue
		}
		for i, j := range jobs {
			j.Time = now
			if id := j.MsgID(); !w.queued[id] {
				w.pending = append(w.pending, queued{Job: j, last: true, forget: i == len(jobs)-1})
				w.queued[id] = true
				n++
			}
		}
		w.log.Info("run deleted while no watcher ran", "run", jobs[0].Run.Name, "namespace", jobs[0].Run.Namespace)
	}
	w.mu.Unlock()
	if n > 0 {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
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
			w.live(ctx, j)
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

// live stores or drops the run's deletion jobs after j was stored. It is
// best effort: it matters only if the run is deleted while no watcher runs.
func (w *Watcher) live(ctx context.Context, j queued) {
	if w.cfg.Live == nil || (!j.forget && j.remember == nil) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var err error
	if j.forget {
		err = w.cfg.Live.ForgetLive(ctx, j.Run.UID)
	} else {
		err = w.cfg.Live.RememberLive(ctx, j.Run.UID, j.remember)
	}
	if err != nil {
		w.log.Warn("live run not recorded", "pipelinerun", j.Run.Name, "namespace", j.Run.Namespace, "error", err.Error())
	}
}

// anyNewWithTasks reports whether a job of jobs that lists tasks (a
// finished PipelineRun's) is not stored or queued yet: its tasks' results
// are then worth asking for, once.
func (w *Watcher) anyNewWithTasks(uid string, jobs []Job) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(jobs, func(j Job) bool { return len(j.Tasks) > 0 && w.isNew(uid, j) })
}

// isNew reports whether j is neither stored nor queued yet; w.mu is held.
func (w *Watcher) isNew(uid string, j Job) bool {
	id := j.MsgID()
	return !slices.Contains(w.published[uid], id) && !w.queued[id]
}

// addTaskResults sets each listed task's result and duration from the
// finished PipelineRun's TaskRuns, with one list (the router may list
// TaskRuns, not get them). A failed list leaves the tasks without results.
func (w *Watcher) addTaskResults(o observed, jobs []Job) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := w.cfg.Client.TektonV1().TaskRuns(o.meta.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelPipelineRun + "=" + o.meta.Name})
	if err != nil {
		w.log.Warn("task results not read", "pipelinerun", o.meta.Name, "namespace", o.meta.Namespace, "error", err.Error())
		return
	}
	results := map[string]Task{}
	for i := range list.Items {
		tr := &list.Items[i]
		results[tr.Name] = taskResult(tr)
	}
	for _, j := range jobs {
		for i, t := range j.Tasks {
			if r, ok := results[t.Name]; ok && t.Kind == "TaskRun" {
				j.Tasks[i].Result, j.Tasks[i].Duration = r.Result, r.Duration
			}
		}
	}
}
