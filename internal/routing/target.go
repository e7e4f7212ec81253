package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// Param is one rendered PipelineRun parameter.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Kinds of run a Target creates (Target.Kind).
const (
	KindPipelineRun = "PipelineRun"
	KindTaskRun     = "TaskRun"
)

// Target is one run an event causes: an (app, trigger) it matched, and for a
// template that renders several runs, one of them (Index). It holds
// everything dispatch needs to create the run. Routing fills it; dispatch
// never looks at the provider payload.
type Target struct {
	App     string `json:"app"`
	Trigger string `json:"trigger"`
	// Kind is the run's kind: empty for a PipelineRun (as in work queued
	// before TaskRuns existed), KindTaskRun for a TaskRun. See RunKind.
	Kind string `json:"kind,omitempty"`
	// Index is the position of Resource among the runs the trigger's
	// template renders; 0 for the first and for pipelineRef runs.
	Index int `json:"index,omitempty"`
	// Namespace and Name identify the PipelineRun this target creates. Name
	// is deterministic (see PipelineRunName) so a redelivered event maps to
	// the same object and AlreadyExists means "done".
	Namespace      string  `json:"namespace"`
	Name           string  `json:"name"`
	ServiceAccount string  `json:"serviceAccount,omitempty"`
	PipelineRef    string  `json:"pipelineRef,omitempty"`
	Params         []Param `json:"params,omitempty"`
	// Timeout is the PipelineRun's overall timeout (spec.timeouts.pipeline)
	// as a Go duration string ("1h"); empty leaves Tekton's default.
	Timeout string `json:"timeout,omitempty"`
	// TasksTimeout and FinallyTimeout are spec.timeouts.tasks and
	// spec.timeouts.finally; empty leaves them unset.
	TasksTimeout   string `json:"tasksTimeout,omitempty"`
	FinallyTimeout string `json:"finallyTimeout,omitempty"`
	// Workspaces are the PipelineRun's workspace bindings.
	Workspaces []pipelinev1.WorkspaceBinding `json:"workspaces,omitempty"`
	// Resource, when set, is the run (Kind) a Tekton Triggers template
	// rendered, as tekton.dev/v1 JSON; routing has checked its namespace and
	// service accounts against the app's grant. Dispatch forces its name and
	// namespace to Name and Namespace, and adds Switchyard's labels. With a
	// Resource, PipelineRef, Params, timeouts and Workspaces are unused
	// (PipelineRef names the template's pipelineRef or taskRef, for display
	// only).
	Resource json.RawMessage `json:"resource,omitempty"`
	// Concurrency, when set, bounds the PipelineRuns of a group; Group is
	// resolved for this event.
	Concurrency *Concurrency `json:"concurrency,omitempty"`
	// Notes say what routing assumed to match, such as a paths condition it
	// could not check because the event did not list every changed file.
	Notes []string `json:"notes,omitempty"`
	// RulesRevision is the revision of the rules that routed the event
	// (Rules.Revision), for the audit trail on the PipelineRun.
	RulesRevision string `json:"rulesRevision,omitempty"`
	// PathsCheck, when set, is a paths condition dispatch must finish
	// before creating anything (see PathsCheck).
	PathsCheck *PathsCheck `json:"pathsCheck,omitempty"`
}

// RunKind returns the kind of run t creates: Kind, KindPipelineRun when
// empty.
func (t Target) RunKind() string {
	if t.Kind == "" {
		return KindPipelineRun
	}
	return t.Kind
}

// Unit names the target within its event: the trigger, and for the runs
// of a template after the first, ".<index>" (trigger names hold no dot, so
// no two units of an event share one). Queue dedup ids and status keys use
// it, so each run of a template is queued and tracked once.
func (t Target) Unit() string {
	if t.Index == 0 {
		return t.Trigger
	}
	return t.Trigger + "." + strconv.Itoa(t.Index)
}

// maxNameLen is the DNS label limit Kubernetes applies to PipelineRun names
// (they become label values on TaskRuns and Pods).
const maxNameLen = 63

// Concurrency is a trigger's concurrency control (see docs/manifest.md).
type Concurrency struct {
	Group            string `json:"group"`
	CancelInProgress bool   `json:"cancelInProgress,omitempty"`
	Limit            int    `json:"limit,omitempty"`
}

// hashLen is how many hex characters of the event hash end the name: 64
// bits, so two events of one trigger practically never share a name (a
// shared name would make AlreadyExists hide the second event).
const hashLen = 16

// PipelineRunName returns the deterministic PipelineRun name
// "<app>-<trigger>-<hash>" for one event and target. The hash covers the
// source name and the event id, because one delivery id can reach several
// sources (a GitHub org hook and a repository hook share it). The result is
// a valid DNS label: app and trigger names are shortened when needed, never
// the hash.
func PipelineRunName(app, trigger, source, eventID string) string {
	return runName(app, trigger, source+"\x00"+eventID)
}

func runName(app, trigger, hashed string) string {
	sum := sha256.Sum256([]byte(hashed))
	h := hex.EncodeToString(sum[:])[:hashLen]
	prefix := app + "-" + trigger
	if room := maxNameLen - hashLen - 1; len(prefix) > room {
		prefix = strings.TrimRight(prefix[:room], "-")
	}
	return prefix + "-" + h
}

// RunName returns the deterministic name of the index-th run a trigger
// renders for one event. The first (index 0) is PipelineRunName, so names
// made before templates could render several runs do not change; the
// others hash "\x01<index>\x00" before the source, which no source name
// starts with, so no two (event, index) pairs share a hash input.
func RunName(app, trigger, source, eventID string, index int) string {
	if index == 0 {
		return PipelineRunName(app, trigger, source, eventID)
	}
	return runName(app, trigger, "\x01"+strconv.Itoa(index)+"\x00"+source+"\x00"+eventID)
}
