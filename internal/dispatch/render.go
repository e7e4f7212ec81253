package dispatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/tektoncd/pipeline/pkg/apis/config"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Labels Switchyard puts on every PipelineRun it creates. Their values are
// valid label values, so runs can be selected by app, trigger or event.
const (
	LabelApp       = "switchyard.dev/app"
	LabelTrigger   = "switchyard.dev/trigger"
	LabelEventID   = "switchyard.dev/event-id" // see EventIDLabelValue
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelConcurrencyGroup selects a concurrency group's PipelineRuns; see
	// GroupLabelValue.
	LabelConcurrencyGroup = "switchyard.dev/concurrency-group"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "switchyard"
)

// Labels Tekton Triggers' EventListener puts on what it creates, set the
// same way so setups that select runs by them keep working. Switchyard has
// no EventListener: its value is the router source the event came through.
const (
	LabelTektonEventListener = "triggers.tekton.dev/eventlistener"
	LabelTektonTrigger       = "triggers.tekton.dev/trigger"
	LabelTektonEventID       = "triggers.tekton.dev/triggers-eventid" // EventIDLabelValue
)

// Annotations Switchyard puts on every PipelineRun it creates. They carry the
// CloudEvent attributes verbatim; the optional ones are set only when the
// event has them.
const (
	AnnotationEventID      = "switchyard.dev/event-id"
	AnnotationEventType    = "switchyard.dev/event-type"
	AnnotationEventSource  = "switchyard.dev/event-source"
	AnnotationEventSubject = "switchyard.dev/event-subject"
	AnnotationRevision     = "switchyard.dev/revision"
	AnnotationIdentity     = "switchyard.dev/identity"
	// AnnotationPrincipal is who behind the identity sent the event: an
	// agent token's subject.
	AnnotationPrincipal    = "switchyard.dev/principal"
	AnnotationRouterSource = "switchyard.dev/router-source"
	// AnnotationRulesRevision is the revision of the rules that routed the
	// event (routing.Rules.Revision): which rules started this run.
	AnnotationRulesRevision = "switchyard.dev/rules-revision"
	// AnnotationTraceparent and AnnotationTracestate carry the W3C trace
	// context the webhook came with (the CloudEvents distributed-tracing
	// extension), so a trace can follow a webhook to its runs.
	AnnotationTraceparent = "switchyard.dev/traceparent"
	AnnotationTracestate  = "switchyard.dev/tracestate"
	// The concurrency settings travel on the PipelineRun, so the controller
	// that starts pending runs needs no other state: it survives restarts.
	AnnotationConcurrencyGroup = "switchyard.dev/concurrency-group"
	AnnotationConcurrencyLimit = "switchyard.dev/concurrency-limit"
	AnnotationCancelInProgress = "switchyard.dev/cancel-in-progress"
)

// AnnotationRepository is the event's repository extension (owner/name):
// where the run watcher reports the commit status.
const AnnotationRepository = "switchyard.dev/repository"

// CloudEvent extensions Render reads.
const (
	extRevision  = "revision"
	extIdentity  = "identity"
	extPrincipal = "principal"
)

// hashedLabelPrefix starts the event-id label value of an event id that is
// not a valid label value itself.
const hashedLabelPrefix = "sha256-"

// defaultTektonConfig is what Tekton's defaulting and validation see when the
// context carries no Tekton config. config.FromContextOrDefaults would build
// (deep-copy) this on every call, several times per PipelineRun; Tekton only
// reads it, so one shared copy is safe.
var defaultTektonConfig = config.FromContextOrDefaults(context.Background())

// EventIDLabelValue returns the value of the LabelEventID label for an event
// id. Event ids are arbitrary text chosen by the sender; a label value is at
// most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric. An
// id that is a valid label value is used as is (GitHub's delivery UUIDs are);
// any other id becomes "sha256-" followed by the first 56 hex digits of its
// SHA-256 (63 characters). The annotation AnnotationEventID always holds the
// id verbatim.
func EventIDLabelValue(id string) string {
	if len(validation.IsValidLabelValue(id)) == 0 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hashedLabelPrefix + hex.EncodeToString(sum[:])[:validation.LabelValueMaxLength-len(hashedLabelPrefix)]
}

// GroupLabelValue is the LabelConcurrencyGroup value of a group: a hash of
// the app and the resolved group (any text), so it is a valid label value
// and one app's group never shares runs with another app's.
func GroupLabelValue(app, group string) string {
	sum := sha256.Sum256([]byte(app + "\x00" + group))
	return hex.EncodeToString(sum[:])[:40]
}

// Render builds the tekton.dev/v1 PipelineRun for one unit of work and checks
// it the way Tekton's admission webhook would: Tekton's own SetDefaults, then
// Validate, run in a create context (apis.WithinCreate).
//
// Defaulting and validation read Tekton's config (defaults and feature flags)
// from ctx (config.ToContext); a context without one gets Tekton's built-in
// defaults, so a bare context.Background() is fine and never panics.
//
// The defaults are applied to a copy only: the returned PipelineRun carries
// exactly what the target asked for. Defaults such as the timeout and the
// service account are the cluster's to choose (Tekton's config-defaults
// ConfigMap), and its webhook applies them on create; baking the library's
// defaults in here would override them.
//
// Every error is marked queue.Permanent: rendering is deterministic, so a
// retry would fail the same way.
func Render(ctx context.Context, w queue.Work) (*pipelinev1.PipelineRun, error) {
	pr, err := build(w)
	if err == nil {
		err = check(ctx, pr)
	}
	if err != nil {
		return nil, queue.Permanent(fmt.Errorf("render pipelinerun: %w", err))
	}
	return pr, nil
}

// RenderYAML renders the work like Render and returns the PipelineRun as
// YAML, ready for kubectl apply (as router explain shows it).
func RenderYAML(ctx context.Context, w queue.Work) ([]byte, error) {
	pr, err := Render(ctx, w)
	if err != nil {
		return nil, err
	}
	return MarshalYAML(pr)
}

// MarshalYAML returns pr as YAML, with apiVersion and kind set even when pr
// lacks them.
func MarshalYAML(pr *pipelinev1.PipelineRun) ([]byte, error) {
	if pr.APIVersion == "" || pr.Kind == "" {
		cp := *pr // shallow: only TypeMeta changes
		cp.TypeMeta = pipelineRunType
		pr = &cp
	}
	b, err := yaml.Marshal(pr)
	if err != nil {
		return nil, fmt.Errorf("marshal pipelinerun: %w", err)
	}
	return b, nil
}

var pipelineRunType = metav1.TypeMeta{
	APIVersion: pipelinev1.SchemeGroupVersion.String(),
	Kind:       "PipelineRun",
}

// build maps the work onto a PipelineRun and checks what Tekton's validation
// does not: namespace, label values, parameter names and the timeout syntax.
// A target with a Resource (a Tekton Triggers template routing rendered)
// starts from that PipelineRun; its name, namespace and service account are
// forced to the target's, which routing held to the app's grant.
func build(w queue.Work) (*pipelinev1.PipelineRun, error) {
	t := w.Target
	errs := checkWork(w)
	if t.RunKind() != routing.KindPipelineRun {
		errs = append(errs, fmt.Errorf("target is a %s, not a PipelineRun", t.RunKind()))
	}
	var pr *pipelinev1.PipelineRun
	if len(t.Resource) > 0 {
		var err error
		if pr, err = fromResource(t); err != nil {
			errs = append(errs, err)
		}
	} else {
		spec, specErrs := specFromTarget(t)
		errs = append(errs, specErrs...)
		pr = &pipelinev1.PipelineRun{Spec: spec}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	labels, annotations := ownMetadata(w)
	if c := t.Concurrency; c != nil && c.Limit > 0 {
		// Created pending; the concurrency controller starts it when the
		// group has room (at once, usually).
		pr.Spec.Status = pipelinev1.PipelineRunSpecStatusPending
	}
	if err := mergeTemplateMetadata(pr.Labels, pr.Annotations, labels, annotations); err != nil {
		return nil, err
	}

	pr.TypeMeta = pipelineRunType
	pr.ObjectMeta = metav1.ObjectMeta{
		Name:        t.Name,
		Namespace:   t.Namespace,
		Labels:      labels,
		Annotations: annotations,
	}
	return pr, nil
}

// checkWork checks what every run needs of its work: a valid namespace,
// an event id, and app and trigger names that are label values.
func checkWork(w queue.Work) []error {
	t, ev := w.Target, w.Event
	var errs []error
	if msgs := validation.IsDNS1123Label(t.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("invalid namespace %q: %s", t.Namespace, strings.Join(msgs, "; ")))
	}
	if ev.ID() == "" {
		errs = append(errs, errors.New("event has no id"))
	}
	for _, l := range []struct{ key, value string }{{LabelApp, t.App}, {LabelTrigger, t.Trigger}} {
		if l.value == "" {
			errs = append(errs, fmt.Errorf("label %s: empty value", l.key))
		} else if msgs := validation.IsValidLabelValue(l.value); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("label %s: invalid value %q: %s", l.key, l.value, strings.Join(msgs, "; ")))
		}
	}
	return errs
}

// ownMetadata returns the labels and annotations Switchyard sets on the
// PipelineRun of w.
func ownMetadata(w queue.Work) (labels, annotations map[string]string) {
	t, ev := w.Target, w.Event
	annotations = map[string]string{
		AnnotationEventID:      ev.ID(),
		AnnotationEventType:    ev.Type(),
		AnnotationEventSource:  ev.Source(),
		AnnotationRouterSource: w.Source,
	}
	setIf(annotations, AnnotationEventSubject, ev.Subject())
	setIf(annotations, AnnotationRevision, extension(ev, extRevision))
	setIf(annotations, AnnotationRepository, extension(ev, "repository"))
	setIf(annotations, AnnotationIdentity, extension(ev, extIdentity))
	setIf(annotations, AnnotationPrincipal, extension(ev, extPrincipal))
	setIf(annotations, AnnotationRulesRevision, t.RulesRevision)
	if tp, ts, ok := traceContext(ev); ok {
		annotations[AnnotationTraceparent] = tp
		setIf(annotations, AnnotationTracestate, ts)
	}
	labels = map[string]string{
		LabelApp:           t.App,
		LabelTrigger:       t.Trigger,
		LabelEventID:       EventIDLabelValue(ev.ID()),
		LabelManagedBy:     ManagedBy,
		LabelTektonTrigger: t.Trigger,
		LabelTektonEventID: EventIDLabelValue(ev.ID()),
	}
	if len(validation.IsValidLabelValue(w.Source)) == 0 {
		labels[LabelTektonEventListener] = w.Source
	}
	if c := t.Concurrency; c != nil {
		labels[LabelConcurrencyGroup] = GroupLabelValue(t.App, c.Group)
		annotations[AnnotationConcurrencyGroup] = c.Group
		if c.Limit > 0 {
			annotations[AnnotationConcurrencyLimit] = strconv.Itoa(c.Limit)
		}
		if c.CancelInProgress {
			annotations[AnnotationCancelInProgress] = "true"
		}
		if !w.Accepted.IsZero() { // zero outside a consumer (explain)
			annotations[AnnotationAcceptedAt] = w.Accepted.UTC().Format(time.RFC3339Nano)
		}
	}
	return labels, annotations
}

// mergeTemplateMetadata adds the labels and annotations of a template's
// run (tmplLabels, tmplAnnotations) to labels and annotations. It refuses
// reserved keys (IsReservedKey): the concurrency controller acts on runs by
// them, so a template setting them could act on another app's runs.
func mergeTemplateMetadata(tmplLabels, tmplAnnotations, labels, annotations map[string]string) error {
	errs := append(reservedKeys("label", tmplLabels), reservedKeys("annotation", tmplAnnotations)...)
	// Tekton's validation does not check metadata; the API server would.
	for k, v := range tmplLabels {
		if msgs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("label %s=%q: %s", k, v, strings.Join(msgs, "; ")))
		}
	}
	for k := range tmplAnnotations {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("annotation %s: %s", k, strings.Join(msgs, "; ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Every key Switchyard sets is reserved, so none can clash; ours win
	// regardless.
	for k, v := range tmplLabels {
		if _, ours := labels[k]; !ours {
			labels[k] = v
		}
	}
	for k, v := range tmplAnnotations {
		if _, ours := annotations[k]; !ours {
			annotations[k] = v
		}
	}
	return nil
}

// ErrReservedKey reports a template label or annotation whose key is
// Switchyard's own: prefixed ReservedPrefix, or LabelManagedBy.
var ErrReservedKey = errors.New("reserved for switchyard")

// ReservedPrefix starts every label and annotation key Switchyard sets.
const ReservedPrefix = "switchyard.dev/"

// IsReservedKey reports whether a label or annotation key is Switchyard's
// own, which a template may not set: the concurrency controller and the
// run watcher act on runs by these keys.
func IsReservedKey(key string) bool {
	return strings.HasPrefix(key, ReservedPrefix) || key == LabelManagedBy
}

// reservedKeys returns an error naming each reserved key in m, in key order.
func reservedKeys(kind string, m map[string]string) []error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if IsReservedKey(k) {
			errs = append(errs, fmt.Errorf("template %s %s: %w", kind, k, ErrReservedKey))
		}
	}
	return errs
}

// specFromTarget builds the spec of a pipelineRef target.
func specFromTarget(t routing.Target) (pipelinev1.PipelineRunSpec, []error) {
	var errs []error
	var params pipelinev1.Params
	if len(t.Params) > 0 {
		params = make(pipelinev1.Params, 0, len(t.Params))
		names := make([]string, 0, len(t.Params))
		for _, p := range t.Params {
			params = append(params, pipelinev1.Param{Name: p.Name, Value: *pipelinev1.NewStructuredValues(p.Value)})
			names = append(names, p.Name)
		}
		// A PipelineRun's own validation only rejects duplicate names; the
		// Pipeline would reject the others later, at run time. Tekton's rule
		// for string parameter names catches them now.
		//lint:ignore SA1019 Tekton's ValidateNameFormat takes the deprecated sets.String.
		if ferr := pipelinev1.ValidateNameFormat(sets.String(sets.New(names...)), nil); ferr != nil {
			errs = append(errs, ferr)
		}
	}

	var timeouts *pipelinev1.TimeoutFields
	for _, f := range []struct {
		name, value string
		dst         func(*pipelinev1.TimeoutFields) **metav1.Duration
	}{
		{"timeout", t.Timeout, func(tf *pipelinev1.TimeoutFields) **metav1.Duration { return &tf.Pipeline }},
		{"tasks timeout", t.TasksTimeout, func(tf *pipelinev1.TimeoutFields) **metav1.Duration { return &tf.Tasks }},
		{"finally timeout", t.FinallyTimeout, func(tf *pipelinev1.TimeoutFields) **metav1.Duration { return &tf.Finally }},
	} {
		if f.value == "" {
			continue
		}
		d, err := time.ParseDuration(f.value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
			continue
		}
		if timeouts == nil {
			timeouts = &pipelinev1.TimeoutFields{}
		}
		*f.dst(timeouts) = &metav1.Duration{Duration: d}
	}

	return pipelinev1.PipelineRunSpec{
		PipelineRef:     &pipelinev1.PipelineRef{Name: t.PipelineRef},
		Params:          params,
		Timeouts:        timeouts,
		Workspaces:      t.Workspaces,
		TaskRunTemplate: pipelinev1.PipelineTaskRunTemplate{ServiceAccountName: t.ServiceAccount},
	}, errs
}

// fromResource decodes the PipelineRun a template rendered and forces the
// service account routing chose within the grant. Anything of the object's
// server-side state (status, uid, resourceVersion) is dropped.
func fromResource(t routing.Target) (*pipelinev1.PipelineRun, error) {
	var pr pipelinev1.PipelineRun
	dec := json.NewDecoder(bytes.NewReader(t.Resource))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pr); err != nil {
		return nil, fmt.Errorf("decode rendered pipelinerun: %w", err)
	}
	if pr.APIVersion != pipelineRunType.APIVersion || pr.Kind != pipelineRunType.Kind {
		return nil, fmt.Errorf("rendered resource is %s %s, want %s %s", pr.APIVersion, pr.Kind, pipelineRunType.APIVersion, pipelineRunType.Kind)
	}
	if t.ServiceAccount != "" {
		pr.Spec.TaskRunTemplate.ServiceAccountName = t.ServiceAccount
	}
	pr.Status = pipelinev1.PipelineRunStatus{}
	return &pipelinev1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Labels: pr.Labels, Annotations: pr.Annotations},
		Spec:       pr.Spec,
	}, nil
}

// check runs Tekton's defaulting and validation on a copy of pr, as the
// admission webhook does on create.
func check(ctx context.Context, pr *pipelinev1.PipelineRun) error {
	if config.FromContext(ctx) == nil {
		ctx = config.ToContext(ctx, defaultTektonConfig)
	}
	ctx = apis.WithinCreate(ctx)
	cp := pr.DeepCopy()
	cp.SetDefaults(ctx)
	// Validate returns a *apis.FieldError; compare before converting so a
	// nil pointer never becomes a non-nil error.
	if ferr := cp.Validate(ctx); ferr != nil {
		return ferr
	}
	return nil
}

func setIf(m map[string]string, key, value string) {
	if value != "" {
		m[key] = value
	}
}

// extension returns a CloudEvent extension in its canonical string form, ""
// when absent.
func extension(ev event.Event, name string) string {
	v, ok := ev.Extensions()[name]
	if !ok {
		return ""
	}
	s, err := types.Format(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}
