package report

import (
	"slices"
	"strings"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
)

// Kinds of Job.
const (
	KindStatus  = "status"
	KindCDEvent = "cdevent"
)

// Commit status states, GitHub's vocabulary; each provider maps them.
const (
	StatePending = "pending"
	StateSuccess = "success"
	StateFailure = "failure"
	StateError   = "error"
)

// CDEvents phases of a PipelineRun.
const (
	PhaseQueued   = "queued"
	PhaseStarted  = "started"
	PhaseFinished = "finished"
)

// Job is one report to make: a commit status or a CDEvent for one run.
type Job struct {
	Kind string `json:"kind"`
	// State is a commit status state (KindStatus) or a CDEvents phase
	// (KindCDEvent).
	State string `json:"state"`
	// Outcome is the final status state, for a finished CDEvent.
	Outcome string `json:"outcome,omitempty"`
	// Cancelled and TimedOut mark a final state of a cancelled or timed-out
	// run; Tasks are a finished run's children (check run summaries).
	Cancelled   bool      `json:"cancelled,omitempty"`
	TimedOut    bool      `json:"timedOut,omitempty"`
	Tasks       []Task    `json:"tasks,omitempty"`
	Description string    `json:"description"`
	Time        time.Time `json:"time"`
	Run         Run       `json:"run"`
	// Held is set on the status of a target an approval gate holds: no run
	// exists (Run names the event and the target; its UID is HeldUID's).
	Held *Held `json:"held,omitempty"`
}

// Held is what a held target's status says: the gates, the deadline and
// the approvals store's state (awaiting-approval, rejected, expired).
type Held struct {
	Gates    []string  `json:"gates"`
	Deadline time.Time `json:"deadline"`
	State    string    `json:"state"`
}

// awaiting reports whether j is the "awaiting approval" status of a held
// target.
func (j Job) awaiting() bool { return j.Held != nil && j.State == StatePending }

// Run is what a report says about a PipelineRun (or TaskRun) and the event behind it,
// read from the labels and annotations dispatch set.
type Run struct {
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	App       string `json:"app"`
	Trigger   string `json:"trigger"`
	// Kind is RunKindPipelineRun (or empty, in jobs queued before TaskRuns
	// were watched) or RunKindTaskRun.
	Kind     string `json:"kind,omitempty"`
	Pipeline string `json:"pipeline,omitempty"`
	// Task is a TaskRun's taskRef name.
	Task        string `json:"task,omitempty"`
	Source      string `json:"source"` // the router source (rules) the event came through
	Repository  string `json:"repository,omitempty"`
	Revision    string `json:"revision,omitempty"`
	EventID     string `json:"eventId"`
	EventSource string `json:"eventSource,omitempty"`
	EventType   string `json:"eventType,omitempty"`
}

// Task is one child of a PipelineRun, from its status.childReferences.
type Task struct {
	PipelineTask string `json:"pipelineTask"`
	Kind         string `json:"kind"`
	Name         string `json:"name"`
	// Result is how its TaskRun ended ("succeeded", "failed: ...",
	// "cancelled", "timed out", "not finished"); empty when unknown (a
	// CustomRun, or the TaskRuns could not be listed).
	Result string `json:"result,omitempty"`
	// Duration is how long it ran, rounded to the second.
	Duration string `json:"duration,omitempty"`
}

// taskResult is a TaskRun's result and duration, as a Task lists them.
func taskResult(tr *pipelinev1.TaskRun) Task {
	t := Task{Result: "not finished"}
	if res := resultOf(observeTaskRun(tr)); res.state != "" {
		t.Result = res.description
	}
	if start, end := tr.Status.StartTime, tr.Status.CompletionTime; start != nil && end != nil {
		t.Duration = end.Sub(start.Time).Round(time.Second).String()
	}
	return t
}

// Context is the commit status context of the run: switchyard/<app>/<trigger>.
func (r Run) Context() string { return "switchyard/" + r.App + "/" + r.Trigger }

// MsgID is the job's JetStream deduplication id: one per (run, kind, state).
func (j Job) MsgID() string { return j.Run.UID + "/" + j.Kind + "/" + j.State }

// Run kinds, as Kubernetes names them.
const (
	RunKindPipelineRun = "PipelineRun"
	RunKindTaskRun     = "TaskRun"
)

// observed is what reports read of a PipelineRun or a TaskRun.
type observed struct {
	meta      metav1.ObjectMeta
	kind      string // RunKindPipelineRun or RunKindTaskRun
	ref       string // its pipelineRef or taskRef name
	cond      *apis.Condition
	startTime *metav1.Time
	tasks     []Task // a PipelineRun's children
}

// observePipelineRun reads a PipelineRun.
func observePipelineRun(pr *pipelinev1.PipelineRun) observed {
	o := observed{meta: pr.ObjectMeta, kind: RunKindPipelineRun, cond: pr.Status.GetCondition(apis.ConditionSucceeded),
		startTime: pr.Status.StartTime, tasks: tasksOf(pr)}
	if pr.Spec.PipelineRef != nil {
		o.ref = pr.Spec.PipelineRef.Name
	}
	return o
}

// observeTaskRun reads a TaskRun.
func observeTaskRun(tr *pipelinev1.TaskRun) observed {
	o := observed{meta: tr.ObjectMeta, kind: RunKindTaskRun, cond: tr.Status.GetCondition(apis.ConditionSucceeded),
		startTime: tr.Status.StartTime}
	if tr.Spec.TaskRef != nil {
		o.ref = tr.Spec.TaskRef.Name
	}
	return o
}

// runOf reads the Run of a PipelineRun or TaskRun.
func runOf(o observed) Run {
	m := o.meta
	r := Run{
		UID: string(m.UID), Namespace: m.Namespace, Name: m.Name, Kind: o.kind,
		App: m.Labels[dispatch.LabelApp], Trigger: m.Labels[dispatch.LabelTrigger],
		Source:      m.Annotations[dispatch.AnnotationRouterSource],
		Repository:  m.Annotations[dispatch.AnnotationRepository],
		Revision:    m.Annotations[dispatch.AnnotationRevision],
		EventID:     m.Annotations[dispatch.AnnotationEventID],
		EventSource: m.Annotations[dispatch.AnnotationEventSource],
		EventType:   m.Annotations[dispatch.AnnotationEventType],
	}
	if o.kind == RunKindTaskRun {
		r.Task = o.ref
	} else {
		r.Pipeline = o.ref
	}
	return r
}

// cancelReasons are the Succeeded reasons of a cancelled or stopped run.
var cancelReasons = []string{
	string(pipelinev1.PipelineRunReasonCancelled), "PipelineRunCancelled",
	"StoppedRunFinally", "CancelledRunFinally",
	string(pipelinev1.PipelineRunReasonCancelledRunningFinally), string(pipelinev1.PipelineRunReasonStoppedRunningFinally),
	string(pipelinev1.TaskRunReasonCancelled),
}

// timeoutReasons are the Succeeded reasons of a run that timed out.
var timeoutReasons = []string{
	string(pipelinev1.PipelineRunReasonTimedOut), string(pipelinev1.PipelineRunReasonTimedOutRunningFinally),
	string(pipelinev1.TaskRunReasonTimedOut),
}

// result is what a run's status says: whether it started, and its final
// state and description once it finished (state "" before).
type result struct {
	started     bool
	cancelled   bool
	timedOut    bool
	state       string
	description string
}

// resultOf reads the Succeeded condition. A cancelled run is an error (it
// did not fail a check; GitHub has no cancelled state), a timed-out run a
// failure; both say so in the description.
func resultOf(o observed) result {
	c := o.cond
	res := result{started: o.startTime != nil}
	if c == nil {
		return res
	}
	switch c.Status {
	case corev1.ConditionTrue:
		res.started, res.state, res.description = true, StateSuccess, "succeeded"
	case corev1.ConditionFalse:
		res.started = true
		switch {
		case slices.Contains(cancelReasons, c.Reason):
			res.state, res.description, res.cancelled = StateError, "cancelled", true
		case slices.Contains(timeoutReasons, c.Reason):
			res.state, res.description, res.timedOut = StateFailure, "timed out", true
		default:
			res.state, res.description = StateFailure, "failed"
			if c.Reason != "" && c.Reason != string(pipelinev1.PipelineRunReasonFailed) {
				res.description += ": " + c.Reason
			}
		}
		if c.Message != "" {
			res.description += ": " + c.Message
		}
	default:
		res.started = res.started || c.Reason == string(pipelinev1.PipelineRunReasonRunning)
	}
	return res
}

// jobsFor returns the reports a run's current state calls for: statuses
// when status is true, CDEvents when cdevents is. A finished run gets only
// its final status (a pending one after it would be dropped anyway), but
// every CDEvents phase, so a consumer that missed them still sees queued and
// started. A deleted unfinished run is an error. CDEvents has no
// taskrun.queued: a TaskRun gets started and finished only.
func jobsFor(o observed, deleted, status, cdevents bool, now time.Time) []Job {
	run := runOf(o)
	res := resultOf(o)
	if deleted && res.state == "" {
		res.state, res.description = StateError, "deleted before it finished"
	}
	var jobs []Job
	add := func(kind, state, outcome, desc string, final bool) {
		j := Job{Kind: kind, State: state, Outcome: outcome, Description: trimDescription(desc), Time: now, Run: run}
		if final {
			j.Cancelled, j.TimedOut, j.Tasks = res.cancelled, res.timedOut, o.tasks
		}
		jobs = append(jobs, j)
	}
	if status && run.Revision != "" {
		if res.state == "" {
			add(KindStatus, StatePending, "", o.kind+" "+run.Name+" created", false)
		} else {
			add(KindStatus, res.state, "", o.kind+" "+run.Name+" "+res.description, true)
		}
	}
	if cdevents {
		if o.kind != RunKindTaskRun {
			add(KindCDEvent, PhaseQueued, "", "created", false)
		}
		if res.started || res.state != "" {
			add(KindCDEvent, PhaseStarted, "", "started", false)
		}
		if res.state != "" {
			add(KindCDEvent, PhaseFinished, res.state, res.description, true)
		}
	}
	return jobs
}

// tasksOf lists a run's children, at most maxTasks.
func tasksOf(pr *pipelinev1.PipelineRun) []Task {
	var out []Task
	for _, c := range pr.Status.ChildReferences {
		if len(out) == maxTasks {
			break
		}
		out = append(out, Task{PipelineTask: c.PipelineTaskName, Kind: c.Kind, Name: c.Name})
	}
	return out
}

// maxTasks bounds the tasks a report lists, and so its size.
const maxTasks = 100

// maxDescription is GitHub's limit on a status description.
const maxDescription = 140

func trimDescription(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxDescription {
		return s
	}
	cut := maxDescription - len("…")
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
