package report

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go"
)

// DefaultCDEventsSubject prefixes the NATS subject of each CDEvent:
// DefaultCDEventsSubject + "pipelinerun.queued" (or started, finished).
const DefaultCDEventsSubject = "switchyard.cdevents."

// DefaultCDEventsSource is the CDEvents context source of the events.
const DefaultCDEventsSource = "/switchyard"

// CDEvents sends pipelinerun.queued, started and finished CDEvents, and
// taskrun.started and finished (spec v0.5; it has no taskrun.queued), as CloudEvents: over HTTP to Sink and, when NATS is set, on a NATS
// subject. Each links to the event that started the run through its
// customData (see Links).
type CDEvents struct {
	// Sink is the URL CDEvents are posted to (binary CloudEvents over
	// HTTP); empty: NATS only.
	Sink string
	// NATS, when set, also gets each CDEvent (structured JSON) on
	// Subject + "pipelinerun.<phase>" (or "taskrun.<phase>").
	NATS    *nats.Conn
	Subject string // default DefaultCDEventsSubject
	Source  string // CDEvents context source, default DefaultCDEventsSource
	// StatusURL returns the root's statusURL template: the subject's url.
	StatusURL func() string
	// HTTPClient posts to the sink (default: a 10 s timeout).
	HTTPClient *http.Client

	once      sync.Once
	client    cloudevents.Client
	clientErr error
}

// Links is the customData of every CDEvent: the run and the CloudEvent
// that started it (its id, source and type), so a consumer can follow a
// push to its runs.
type Links struct {
	Event struct {
		ID     string `json:"id"`
		Source string `json:"source,omitempty"`
		Type   string `json:"type,omitempty"`
	} `json:"event"`
	App        string `json:"app"`
	Trigger    string `json:"trigger"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
	Repository string `json:"repository,omitempty"`
	Revision   string `json:"revision,omitempty"`
}

// The CDEvents are encoded here rather than with
// github.com/cdevents/sdk-go, on purpose: the SDK compiles every JSON
// schema of the spec (and its test schemas) in its package's init, in
// every router process whether or not a sink is set. Measured 2026-11-30:
// 86 ms at start, 33 MB allocated, 7.7 MB of heap kept for the life of the
// process; without it the router's RSS at idle went from 87 to 62 MiB and
// its peak in `router bench` from 145-152 to 131-132 MiB (issue 12's goal
// is < 150 MiB). Switchyard sends five events of a fixed shape (spec
// v0.5); TestCDEventsMatchTheSDK builds each with the SDK and checks that
// this one is the same event and valid against the spec's schema.

// cdSpecVersion is the CDEvents spec the events follow.
const cdSpecVersion = "0.5.0"

// cdTypes are the CDEvents types of spec v0.5, by run kind and phase (it
// has no taskrun.queued).
var cdTypes = map[[2]string]string{
	{RunKindPipelineRun, PhaseQueued}:   "dev.cdevents.pipelinerun.queued.0.3.0",
	{RunKindPipelineRun, PhaseStarted}:  "dev.cdevents.pipelinerun.started.0.3.0",
	{RunKindPipelineRun, PhaseFinished}: "dev.cdevents.pipelinerun.finished.0.3.0",
	{RunKindTaskRun, PhaseStarted}:      "dev.cdevents.taskrun.started.0.3.0",
	{RunKindTaskRun, PhaseFinished}:     "dev.cdevents.taskrun.finished.0.3.0",
}

// cdEvent is a pipelinerun or taskrun CDEvent of spec v0.5 as JSON.
type cdEvent struct {
	Context struct {
		ID          string    `json:"id"`
		Source      string    `json:"source"`
		Type        string    `json:"type"`
		Timestamp   time.Time `json:"timestamp"`
		SpecVersion string    `json:"specversion"`
	} `json:"context"`
	Subject struct {
		ID      string `json:"id"`
		Source  string `json:"source,omitempty"`
		Content struct {
			Errors       string `json:"errors,omitempty"`
			Outcome      string `json:"outcome,omitempty"`
			PipelineName string `json:"pipelineName,omitempty"`
			TaskName     string `json:"taskName,omitempty"`
			// URI is nil when there is none, but pipelinerun.started
			// requires the field (empty then).
			URI *string `json:"uri,omitempty"`
		} `json:"content"`
	} `json:"subject"`
	CustomData            Links  `json:"customData"`
	CustomDataContentType string `json:"customDataContentType"`
}

// Event builds the CloudEvent of a CDEvents job. Its id is the run's uid
// and the phase: a redelivery carries the same id.
func (c *CDEvents) Event(j Job) (*cloudevents.Event, error) {
	r := j.Run
	kind := RunKindPipelineRun
	if r.Kind == RunKindTaskRun {
		kind = RunKindTaskRun
	}
	typ, ok := cdTypes[[2]string{kind, j.State}]
	if !ok {
		return nil, fmt.Errorf("cdevent: no %s event for a %s", j.State, r.Kind)
	}
	var ev cdEvent
	ev.Context.ID, ev.Context.Source, ev.Context.Type = r.UID+"-"+j.State, c.source(), typ
	ev.Context.Timestamp, ev.Context.SpecVersion = j.Time, cdSpecVersion
	ev.Subject.ID, ev.Subject.Source = r.Namespace+"/"+r.Name, c.source()
	content := &ev.Subject.Content
	// The referenced pipeline or task, else the app and trigger of a
	// template's run.
	if kind == RunKindTaskRun {
		content.TaskName = cmp.Or(r.Task, r.App+"/"+r.Trigger)
	} else {
		content.PipelineName = cmp.Or(r.Pipeline, r.App+"/"+r.Trigger)
	}
	if j.State == PhaseFinished {
		content.Outcome = cdOutcome(j.Outcome)
		if j.Outcome != StateSuccess {
			content.Errors = j.Description
		}
	}
	var uri string
	if c.StatusURL != nil {
		// The spec's uri is a URI reference: one that does not parse is left out.
		if u := targetURL(c.StatusURL(), r); u != "" {
			if _, err := url.Parse(u); err == nil {
				uri = u
			}
		}
	}
	if uri != "" || (kind == RunKindPipelineRun && j.State == PhaseStarted) {
		content.URI = &uri
	}
	ev.CustomData = Links{App: r.App, Trigger: r.Trigger, Namespace: r.Namespace, Name: r.Name, UID: r.UID, Repository: r.Repository, Revision: r.Revision}
	ev.CustomData.Event.ID, ev.CustomData.Event.Source, ev.CustomData.Event.Type = r.EventID, r.EventSource, r.EventType
	ev.CustomDataContentType = cloudevents.ApplicationJSON

	ce := cloudevents.NewEvent()
	ce.SetID(ev.Context.ID)
	ce.SetSource(ev.Context.Source)
	ce.SetSubject(ev.Subject.ID)
	ce.SetType(typ)
	if err := ce.SetData(cloudevents.ApplicationJSON, ev); err != nil {
		return nil, fmt.Errorf("cdevent: %w", err)
	}
	return &ce, nil
}

// cdOutcome maps a final state to the CDEvents outcome (success, failure,
// error).
func cdOutcome(state string) string {
	switch state {
	case StateSuccess:
		return "success"
	case StateError:
		return "error"
	default:
		return "failure"
	}
}

func (c *CDEvents) source() string {
	if c.Source != "" {
		return c.Source
	}
	return DefaultCDEventsSource
}

func (c *CDEvents) subject(phase string) string { // phase: subjectOf's
	prefix := c.Subject
	if prefix == "" {
		prefix = DefaultCDEventsSubject
	}
	return prefix + phase
}

// subjectOf is a job's NATS subject suffix: pipelinerun.<phase> or
// taskrun.<phase>.
func subjectOf(j Job) string {
	if j.Run.Kind == RunKindTaskRun {
		return "taskrun." + j.State
	}
	return "pipelinerun." + j.State
}

// send delivers a CDEvents job unless the bucket says it was sent: on NATS
// first, then to the sink. A sink's 4xx is permanent.
func (c *CDEvents) send(ctx context.Context, q *Queue, j Job) (string, error) {
	key := cdeventKey(j.Run.UID, j.State)
	if rec, _, found, err := q.get(ctx, key); err != nil {
		return "", err
	} else if found && rec.Posted {
		return ResultSkipped, nil
	}
	ce, err := c.Event(j)
	if err != nil {
		return "", &PostError{StatusCode: http.StatusBadRequest, msg: err.Error()}
	}
	if c.NATS != nil {
		data, err := json.Marshal(ce)
		if err == nil {
			err = c.NATS.Publish(c.subject(subjectOf(j)), data)
		}
		if err == nil {
			err = c.NATS.FlushWithContext(ctx)
		}
		if err != nil {
			return "", fmt.Errorf("cdevent to nats: %w", err)
		}
	}
	if c.Sink != "" {
		if err := c.post(ctx, ce); err != nil {
			return "", err
		}
	}
	data, _ := json.Marshal(record{State: j.State, Posted: true})
	if _, err := q.kv.Put(ctx, key, data); err != nil {
		return "", fmt.Errorf("cdevent record: %w", err)
	}
	return ResultPosted, nil
}

// post sends ce to the sink as a binary-mode CloudEvent.
func (c *CDEvents) post(ctx context.Context, ce *cloudevents.Event) error {
	c.once.Do(func() {
		hc := c.HTTPClient
		if hc == nil {
			hc = &http.Client{Timeout: 10 * time.Second}
		}
		c.client, c.clientErr = cloudevents.NewClientHTTP(cehttp.WithClient(*hc))
	})
	if c.clientErr != nil {
		return fmt.Errorf("cdevents client: %w", c.clientErr)
	}
	res := c.client.Send(cloudevents.ContextWithTarget(ctx, c.Sink), *ce)
	if cloudevents.IsACK(res) {
		return nil
	}
	msg := c.redactSink(fmt.Sprintf("cdevent to sink: %v", res))
	var hr *cehttp.Result
	if errors.As(res, &hr) {
		return &PostError{StatusCode: hr.StatusCode, msg: msg}
	}
	return &PostError{msg: msg}
}

// redactSink removes the sink URL's credentials (user info, query) from
// msg: the URL is in the flag, its secrets must not reach a log.
func (c *CDEvents) redactSink(msg string) string {
	u, err := url.Parse(c.Sink)
	if err != nil {
		return strings.ReplaceAll(msg, c.Sink, "[sink]")
	}
	if u.User != nil {
		msg = strings.ReplaceAll(msg, u.User.String(), "REDACTED")
		msg = strings.ReplaceAll(msg, u.User.Username(), "REDACTED")
		if p, ok := u.User.Password(); ok {
			msg = strings.ReplaceAll(msg, p, "REDACTED")
		}
	}
	if u.RawQuery != "" {
		msg = strings.ReplaceAll(msg, u.RawQuery, "REDACTED")
	}
	return msg
}
