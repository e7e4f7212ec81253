package report

import (
	"encoding/json"
	"testing"
	"time"

	cdevents "github.com/cdevents/sdk-go/pkg/api"
	cdeventsv05 "github.com/cdevents/sdk-go/pkg/api/v05"
)

// TestCDEventsAreValid: each phase builds a CDEvent that passes the SDK's
// schema validation, with a deterministic id, the outcome, and the link to
// the originating event in customData.
func TestCDEventsAreValid(t *testing.T) {
	c := &CDEvents{StatusURL: func() string { return "https://d.example.com/#/namespaces/{namespace}/pipelineruns/{name}" }}
	run := testJob(StatePending).Run
	for _, tc := range []struct{ phase, outcome, wantType, wantOutcome string }{
		{PhaseQueued, "", "dev.cdevents.pipelinerun.queued.0.3.0", ""},
		{PhaseStarted, "", "dev.cdevents.pipelinerun.started.0.3.0", ""},
		{PhaseFinished, StateError, "dev.cdevents.pipelinerun.finished.0.3.0", "error"},
	} {
		j := Job{Kind: KindCDEvent, State: tc.phase, Outcome: tc.outcome, Description: "cancelled", Time: time.Unix(10, 0).UTC(), Run: run}
		ce, err := c.Event(j)
		if err != nil {
			t.Fatalf("%s: %v", tc.phase, err)
		}
		if ce.Type() != tc.wantType || ce.ID() != run.UID+"-"+tc.phase || ce.Source() != DefaultCDEventsSource {
			t.Errorf("%s: type %s id %s source %s", tc.phase, ce.Type(), ce.ID(), ce.Source())
		}
		parsed, err := cdeventsv05.NewFromJsonBytes(ce.Data())
		if err != nil {
			t.Fatalf("%s: parse: %v", tc.phase, err)
		}
		if err := cdevents.Validate(parsed); err != nil {
			t.Errorf("%s: invalid cdevent: %v", tc.phase, err)
		}
		var data struct {
			Subject struct {
				Content struct{ Outcome, URL string }
			}
			CustomData Links `json:"customData"`
		}
		if err := json.Unmarshal(ce.Data(), &data); err != nil {
			t.Fatal(err)
		}
		if data.CustomData.Event.ID != "d-1" || data.CustomData.Event.Source != "https://github.com/acme/shop" || data.CustomData.Revision != run.Revision {
			t.Errorf("%s: customData %+v", tc.phase, data.CustomData)
		}
		if data.Subject.Content.Outcome != tc.wantOutcome {
			t.Errorf("%s: outcome %q, want %q", tc.phase, data.Subject.Content.Outcome, tc.wantOutcome)
		}
	}
}
