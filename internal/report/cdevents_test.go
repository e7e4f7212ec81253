package report

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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

// TestCDEventsSinkCredentialsNotInErrors: a sink URL's user info and query
// (a token) never reach an error, so never a log.
func TestCDEventsSinkCredentialsNotInErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	for _, sink := range []string{
		"http://sinkuser:sinkpass@" + u.Host + "/events?token=sinktoken",
		"http://sinkuser:sinkpass@127.0.0.1:1/events?token=sinktoken", // nothing listens
	} {
		c := &CDEvents{Sink: sink}
		ce, err := c.Event(Job{Kind: KindCDEvent, State: PhaseQueued, Time: time.Now(), Run: testJob(StatePending).Run})
		if err != nil {
			t.Fatal(err)
		}
		err = c.post(context.Background(), ce)
		if err == nil {
			t.Fatal("no error")
		}
		for _, secret := range []string{"sinkuser", "sinkpass", "sinktoken"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error holds %s: %v", secret, err)
			}
		}
	}
}
