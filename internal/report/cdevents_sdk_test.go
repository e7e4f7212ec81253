package report

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	cdevents "github.com/cdevents/sdk-go/pkg/api"
	cdeventsv05 "github.com/cdevents/sdk-go/pkg/api/v05"
	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// sdkEvent builds a job's CloudEvent with the CDEvents SDK, as the router
// did before it encoded CDEvents itself (see cdevents.go): the reference
// TestCDEventsMatchTheSDK holds Event to.
func sdkEvent(c *CDEvents, j Job) (*cloudevents.Event, error) {
	type writer interface {
		cdevents.CDEventReader
		SetId(string)
		SetSource(string)
		SetTimestamp(time.Time)
		SetSubjectId(string)
		SetSubjectSource(string)
		SetSubjectUri(string)
		SetCustomData(string, interface{}) error
	}
	var ev writer
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
		return nil, fmt.Errorf("no %s event for a %s", j.State, j.Run.Kind)
	}
	if err != nil {
		return nil, err
	}
	if f, ok := ev.(interface {
		SetSubjectOutcome(string)
		SetSubjectErrors(string)
	}); ok {
		f.SetSubjectOutcome(cdOutcome(j.Outcome))
		if j.Outcome != StateSuccess {
			f.SetSubjectErrors(j.Description)
		}
	}
	r := j.Run
	ev.SetId(r.UID + "-" + j.State)
	ev.SetSource(c.source())
	ev.SetTimestamp(j.Time)
	ev.SetSubjectId(r.Namespace + "/" + r.Name)
	ev.SetSubjectSource(c.source())
	name := r.Pipeline
	if taskRun {
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
		return nil, err
	}
	return cdevents.AsCloudEvent(ev) // validates against the spec's schema
}

// TestCDEventsMatchTheSDK: every event the router sends (each run kind and
// phase, each outcome, with and without a dashboard URL, a pipeline or
// task name or neither) is the event the CDEvents SDK builds, attribute
// for attribute and field for field, and passes the SDK's schema
// validation; a phase the spec has no event for is refused as the SDK
// refuses it.
func TestCDEventsMatchTheSDK(t *testing.T) {
	dashboard := func() string { return "https://d.example.com/#/namespaces/{namespace}/pipelineruns/{name}" }
	n := 0
	for _, statusURL := range []func() string{nil, dashboard} {
		for _, kind := range []string{"", RunKindPipelineRun, RunKindTaskRun} {
			for _, named := range []bool{false, true} {
				for _, phase := range []string{PhaseQueued, PhaseStarted, PhaseFinished} {
					for _, outcome := range []string{StateSuccess, StateFailure, StateError} {
						c := &CDEvents{StatusURL: statusURL, Source: "/switchyard/test"}
						run := testJob(StatePending).Run
						run.Kind, run.EventType = kind, "dev.switchyard.github.push"
						if named {
							run.Pipeline, run.Task = "build-pipeline", "build-task"
						}
						j := Job{Kind: KindCDEvent, State: phase, Outcome: outcome, Description: "step build failed",
							Time: time.Date(2026, 11, 30, 13, 45, 1, 123456789, time.UTC), Run: run}
						name := fmt.Sprintf("url=%v kind=%q named=%v %s %s", statusURL != nil, kind, named, phase, outcome)
						want, wantErr := sdkEvent(c, j)
						got, err := c.Event(j)
						if wantErr != nil {
							if err == nil {
								t.Errorf("%s: the SDK refuses it (%v), Event built %v", name, wantErr, got)
							}
							continue
						}
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						n++
						if got.ID() != want.ID() || got.Source() != want.Source() || got.Type() != want.Type() ||
							got.Subject() != want.Subject() || got.DataContentType() != want.DataContentType() ||
							got.SpecVersion() != want.SpecVersion() || !got.Time().Equal(want.Time()) {
							t.Errorf("%s: attributes\n got  %s\n want %s", name, got.Context, want.Context)
						}
						var gotData, wantData any
						if err := json.Unmarshal(got.Data(), &gotData); err != nil {
							t.Fatal(err)
						}
						if err := json.Unmarshal(want.Data(), &wantData); err != nil {
							t.Fatal(err)
						}
						if !reflect.DeepEqual(gotData, wantData) {
							t.Errorf("%s: data\n got  %s\n want %s", name, got.Data(), want.Data())
						}
						// The schema, on the JSON as sent (the SDK's reader would
						// fill in fields the JSON lacks before validating).
						parts := strings.Split(got.Type(), ".") // dev.cdevents.<subject>.<predicate>.<version>
						_, schema, err := cdevents.CompiledSchemas.GetBySpecSubjectPredicate(cdSpecVersion, parts[2], parts[3], "")
						if err != nil {
							t.Fatal(err)
						}
						if err := schema.Validate(gotData); err != nil {
							t.Errorf("%s: not valid against the spec's schema: %v", name, err)
						}
						parsed, err := cdeventsv05.NewFromJsonBytes(got.Data())
						if err != nil {
							t.Fatalf("%s: the SDK cannot read it: %v", name, err)
						}
						if err := cdevents.Validate(parsed); err != nil {
							t.Errorf("%s: invalid CDEvent: %v", name, err)
						}
					}
				}
			}
		}
	}
	if want := 2 * 2 * (3 + 3 + 2) * 3; n != want { // a TaskRun has no queued event
		t.Errorf("%d events compared, want %d", n, want)
	}
}
