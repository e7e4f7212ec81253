package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// ResyncSelector selects every Switchyard run of some concurrency group.
var ResyncSelector = labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy}).String() + "," + LabelConcurrencyGroup

// AnnotationAcceptedAt orders a group's PipelineRuns: when the event of
// each was accepted (queue.Work.Accepted), with nanoseconds. Work is
// dispatched in parallel and a burst's webhooks are judged two at a time,
// so runs may be created in another order than their events came in; the
// group's newest run is the one of the newest event.
const AnnotationAcceptedAt = "switchyard.dev/accepted-at"

// AnnotationDispatchedAt is the time dispatch first created a grouped
// run, with nanoseconds (creationTimestamp has seconds only). It orders
// the runs that have no AnnotationAcceptedAt (created by a router before
// it, or from work without its acceptance time).
const AnnotationDispatchedAt = "switchyard.dev/dispatched-at"

// Locker serializes the concurrency decisions of one group, across every
// router replica (queue.Queue.Lock does, with a JetStream key-value lock).
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// LocalLocker serializes within this process only: enough for one replica.
type LocalLocker struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// Lock implements Locker.
func (l *LocalLocker) Lock(_ context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	m, ok := l.locks[key]
	if !ok {
		m = &sync.Mutex{}
		l.locks[key] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock, nil
}

// Concurrency applies triggers' concurrency settings, which travel on the
// PipelineRuns themselves (LabelConcurrencyGroup and the concurrency
// annotations), so it keeps no state and a restarted router carries on:
//
//   - cancelInProgress: once a run is created, the group's older unfinished
//     runs get spec.status Cancelled (Tekton then stops them), and so does
//     the new run itself when a run of a newer event is there already;
//   - limit N: runs are created pending (spec.status PipelineRunPending);
//     after each create and on every Resync, the group's oldest pending
//     runs are started (spec.status removed) while fewer than N run.
//
// Runs are ordered by when their events were accepted (AnnotationAcceptedAt,
// see groupOrder), not by when they were created. Decisions for one group are
// made under its Locker lock, so replicas never start more than N. A group
// is per app: the controller only ever lists, cancels or starts runs
// labelled managed-by Switchyard, of the app of the run that prompted it,
// and of the group.
type Concurrency struct {
	client versioned.Interface
	locker Locker
	logger *slog.Logger
}

// NewConcurrency returns a controller using client; locker nil means a
// LocalLocker.
func NewConcurrency(client versioned.Interface, locker Locker, logger *slog.Logger) *Concurrency {
	if locker == nil {
		locker = &LocalLocker{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Concurrency{client: client, locker: locker, logger: logger.With("component", "concurrency")}
}

// AfterCreate applies the group settings of pr, just created (or found
// existing: it is idempotent). Only runs of pr's own app are ever acted on.
func (c *Concurrency) AfterCreate(ctx context.Context, pr *pipelinev1.PipelineRun) error {
	app, group := pr.Labels[LabelApp], pr.Labels[LabelConcurrencyGroup]
	if group == "" || app == "" || pr.Labels[LabelManagedBy] != ManagedBy {
		return nil
	}
	return c.reconcileGroup(ctx, pr.Namespace, groupKey{app: app, group: group})
}

// groupKey names a concurrency group: group keys are per app, so the same
// group label value on another app's run is another group.
type groupKey struct{ app, group string }

// selector selects the runs of the group: made by Switchyard, of the app,
// with the group label. Nothing outside it is ever listed, cancelled or
// started.
func (g groupKey) selector() string {
	return labels.SelectorFromSet(labels.Set{
		LabelManagedBy:        ManagedBy,
		LabelApp:              g.app,
		LabelConcurrencyGroup: g.group,
	}).String()
}

// member reports whether pr is in the group (the List selector already
// says so; checked again because a decision to cancel rests on it).
func (g groupKey) member(pr *pipelinev1.PipelineRun) bool {
	return pr.Labels[LabelManagedBy] == ManagedBy && pr.Labels[LabelApp] == g.app && pr.Labels[LabelConcurrencyGroup] == g.group
}

// Resync starts the pending runs of every group in namespaces that has
// room: runs finish without telling the router, and a router restart
// forgets nothing since everything is on the runs.
func (c *Concurrency) Resync(ctx context.Context, namespaces []string) error {
	var firstErr error
	for _, ns := range namespaces {
		list, err := c.client.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: ResyncSelector})
		if err != nil {
			firstErr = cmp.Or(firstErr, fmt.Errorf("list pipelineruns in %s: %w", ns, err))
			continue
		}
		groups := map[groupKey]bool{}
		for i := range list.Items {
			pr := &list.Items[i]
			g := groupKey{app: pr.Labels[LabelApp], group: pr.Labels[LabelConcurrencyGroup]}
			if g.app != "" && g.group != "" && g.member(pr) && pr.IsPending() && pr.Annotations[AnnotationConcurrencyLimit] != "" {
				groups[g] = true
			}
		}
		for g := range groups {
			if err := c.reconcileGroup(ctx, ns, g); err != nil {
				firstErr = cmp.Or(firstErr, err)
			}
		}
	}
	return firstErr
}

// Run calls Resync every interval until ctx ends, on the namespaces
// namespaces returns then (the rules in force).
func (c *Concurrency) Run(ctx context.Context, interval time.Duration, namespaces func() []string) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := c.Resync(ctx, namespaces()); err != nil && ctx.Err() == nil {
			c.logger.Warn("concurrency resync failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcileGroup cancels the runs a newer run with cancel-in-progress
// supersedes, then starts pending runs while the group has room.
func (c *Concurrency) reconcileGroup(ctx context.Context, ns string, g groupKey) error {
	unlock, err := c.locker.Lock(ctx, ns+"/"+g.app+"/"+g.group)
	if err != nil {
		return fmt.Errorf("lock concurrency group: %w", err)
	}
	defer unlock()
	list, err := c.client.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: g.selector()})
	if err != nil {
		return fmt.Errorf("list concurrency group: %w", err)
	}
	runs := slices.DeleteFunc(list.Items, func(pr pipelinev1.PipelineRun) bool { return !g.member(&pr) })
	slices.SortStableFunc(runs, func(a, b pipelinev1.PipelineRun) int { return groupOrder(&a).Compare(groupOrder(&b)) })

	// A run with cancel-in-progress supersedes every older run of its
	// group: the newest such run cancels all before it. That is also the
	// run just created when its event is older than a run already there
	// (its work was dispatched later).
	newest := -1
	for i := range runs {
		if runs[i].Annotations[AnnotationCancelInProgress] == "true" {
			newest = i
		}
	}
	if newest > 0 {
		for j := range runs[:newest] {
			old := &runs[j]
			if old.IsDone() || old.IsCancelled() {
				continue
			}
			if err := c.setSpecStatus(ctx, old, pipelinev1.PipelineRunSpecStatusCancelled); err != nil {
				return err
			}
			c.logger.Info("cancelled superseded pipelinerun", "namespace", ns, "name", old.Name, "by", runs[newest].Name)
		}
	}

	limit := 0
	for i := range runs {
		if n, err := strconv.Atoi(runs[i].Annotations[AnnotationConcurrencyLimit]); err == nil && n > 0 {
			limit = n // the newest run's limit: the rules in force
		}
	}
	if limit == 0 {
		return nil
	}
	running := 0
	var pending []*pipelinev1.PipelineRun
	for i := range runs {
		pr := &runs[i]
		switch {
		case pr.IsDone():
		case pr.IsPending():
			pending = append(pending, pr)
		case pr.IsCancelled() && pr.Status.StartTime == nil:
			// Cancelled before it started: it will never run.
		default:
			running++
		}
	}
	for _, pr := range pending {
		if running >= limit {
			break
		}
		if err := c.setSpecStatus(ctx, pr, ""); err != nil {
			return err
		}
		running++
		c.logger.Info("started pending pipelinerun", "namespace", ns, "name", pr.Name, "limit", limit)
	}
	return nil
}

// setSpecStatus patches spec.status ("" removes it: the run starts). The
// patch is conditional on the resourceVersion read under the lock, so a
// change by anyone else in between fails it and the next resync decides
// again.
func (c *Concurrency) setSpecStatus(ctx context.Context, pr *pipelinev1.PipelineRun, status pipelinev1.PipelineRunSpecStatus) error {
	value := `null`
	if status != "" {
		value = strconv.Quote(string(status))
	}
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"status":%s}}`, pr.ResourceVersion, value)
	_, err := c.client.TektonV1().PipelineRuns(pr.Namespace).Patch(ctx, pr.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil {
		return fmt.Errorf("set spec.status %q on pipelinerun %s/%s: %w", status, pr.Namespace, pr.Name, err)
	}
	return nil
}

// groupOrder is a run's place in its group: its event's acceptance time,
// else its dispatch time, else its creation time.
func groupOrder(pr *pipelinev1.PipelineRun) time.Time {
	for _, a := range []string{AnnotationAcceptedAt, AnnotationDispatchedAt} {
		if t, err := time.Parse(time.RFC3339Nano, pr.Annotations[a]); err == nil {
			return t
		}
	}
	return pr.CreationTimestamp.Time
}
