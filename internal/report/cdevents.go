package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	cdevents "github.com/cdevents/sdk-go/pkg/api"
	cdeventsv05 "github.com/cdevents/sdk-go/pkg/api/v05"
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

// cdEvent is what the pipelinerun and taskrun events share.
type cdEvent interface {
	cdevents.CDEventReader
	SetId(string)
	SetSource(string)
	SetTimestamp(time.Time)
	SetSubjectId(string)
	SetSubjectSource(string)
	SetSubjectUri(string)
	SetCustomData(string, interface{}) error
}

// finishedEvent is a pipelinerun or taskrun finished event.
type finishedEvent interface {
	cdEvent
	SetSubjectOutcome(string)
	SetSubjectErrors(string)
}

// newEvent returns the empty CDEvent of a job's run kind and phase.
func newEvent(j Job) (cdEvent, error) {
	var ev cdEvent
	var err error
	taskRun := j.Run.Kind == RunKindTaskRun
	switch {
	case j.State == PhaseQueued && !taskRun:
		ev, err = cdeventsv05.NewPipelineRunQueuedEvent()
	case j.State == PhaseStarted && !taskRun:
		ev, err = cdeventsv05.NewPipelineRunStartedEvent()
	case j.State == PhaseStarted:
		ev, err = cdeventsv05.NewTaskRunStartedEvent()
	case j.State == PhaseFinished && !taskRun:
		ev, err = cdeventsv05.NewPipelineRunFinishedEvent()
	case j.State == PhaseFinished:
		ev, err = cdeventsv05.NewTaskRunFinishedEvent()
	default:
		return nil, fmt.Errorf("cdevent: no %s event for a %s", j.State, j.Run.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("cdevent: %w", err)
	}
	if f, ok := ev.(finishedEvent); ok {
		f.SetSubjectOutcome(cdOutcome(j.Outcome))
		if j.Outcome != StateSuccess {
			f.SetSubjectErrors(j.Description)
		}
	}
	return ev, nil
}

// Event builds the CloudEvent of a CDEvents job. Its id is the run's uid
// and the phase: a redelivery carries the same id.
func (c *CDEvents) Event(j Job) (*cloudevents.Event, error) {
	ev, err := newEvent(j)
	if err != nil {
		return nil, err
	}
	r := j.Run
	ev.SetId(r.UID + "-" + j.State)
	ev.SetSource(c.source())
	ev.SetTimestamp(j.Time)
	ev.SetSubjectId(r.Namespace + "/" + r.Name)
	ev.SetSubjectSource(c.source())
	name := r.Pipeline
	if r.Kind == RunKindTaskRun {
		name = r.Task
	}
	if name == "" {
		name = r.App + "/" + r.Trigger
	}
	switch e := ev.(type) {
	case interface{ SetSubjectPipelineName(string) }:
		e.SetSubjectPipelineName(name)
	case interface{ SetSubjectTaskName(string) }:
		e.SetSubjectTaskName(name)
	}
	if c.StatusURL != nil {
		if u := targetURL(c.StatusURL(), r); u != "" {
			ev.SetSubjectUri(u)
		}
	}
	links := Links{App: r.App, Trigger: r.Trigger, Namespace: r.Namespace, Name: r.Name, UID: r.UID, Repository: r.Repository, Revision: r.Revision}
	links.Event.ID, links.Event.Source, links.Event.Type = r.EventID, r.EventSource, r.EventType
	if err := ev.SetCustomData("application/json", links); err != nil {
		return nil, fmt.Errorf("cdevent: %w", err)
	}
	ce, err := cdevents.AsCloudEvent(ev)
	if err != nil {
		return nil, fmt.Errorf("cdevent: %w", err)
	}
	return ce, nil
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
