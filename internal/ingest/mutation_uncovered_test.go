package ingest

// Tests added for mutants that no test covered (docs/testing.md,
// "Mutation testing"): registries' docker events other than a push, and
// GET /v1/events/{id} with ?endpoint=.

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// Artifactory: a docker deletion is an image delete; another docker event
// keeps Artifactory's own type.
func TestArtifactoryDockerDeleteAndOthers(t *testing.T) {
	for event, want := range map[string]string{
		"deleted":  TypeImageDelete,
		"promoted": "com.jfrog.artifactory.docker.promoted",
	} {
		body := `{"domain":"docker","event_type":"` + event + `","data":{"repo_key":"docker-local","image_name":"app","tag":"1.0"}}`
		res, err := normalizeRaw(t, "artifactory", map[string]string{"Content-Type": "application/json"}, body)
		if err != nil || len(res.Events) != 1 {
			t.Fatalf("docker %s: %d events, %v", event, len(res.Events), err)
		}
		if got := res.Events[0].Type(); got != want {
			t.Errorf("docker %s: type %s, want %s", event, got, want)
		}
	}
}

// Nexus: a docker component deleted is an image delete; another action on
// one keeps Nexus's own type.
func TestNexusDockerDeleteAndOthers(t *testing.T) {
	for action, want := range map[string]string{
		"DELETED": TypeImageDelete,
		"UPDATED": "com.sonatype.nexus.repository.component.updated",
	} {
		body := `{"repositoryName":"docker-hosted","action":"` + action + `","component":{"format":"docker","name":"app","version":"1.0"}}`
		res, err := normalizeRaw(t, "nexus", map[string]string{"Content-Type": "application/json", nexusEventHeader: "rm:repository:component"}, body)
		if err != nil || len(res.Events) != 1 {
			t.Fatalf("docker %s: %d events, %v", action, len(res.Events), err)
		}
		if got := res.Events[0].Type(); got != want {
			t.Errorf("docker %s: type %s, want %s", action, got, want)
		}
	}
}

// GET /v1/events/{id}?endpoint=NAME authenticates to that endpoint only.
func TestEventStatusNamedEndpoint(t *testing.T) {
	es := newEndpointServer(t)
	if status, _, body := es.post(t, "ci-bot", es.ciToken, agentEvent("st-1", "com.acme.build.requested", nil, nil)); status != http.StatusAccepted {
		t.Fatalf("send: %d %s", status, body)
	}
	for query, want := range map[string]int{
		"?endpoint=ci-bot":  http.StatusOK,
		"?endpoint=auditor": http.StatusUnauthorized,
		"?endpoint=nope":    http.StatusUnauthorized,
	} {
		h := http.Header{"Authorization": {"Bearer " + es.ciToken}}
		if status, _, body := (&hookServer{url: es.url}).send(t, http.MethodGet, "/v1/events/st-1"+query, h, nil); status != want {
			t.Errorf("%s: %d %s, want %d", query, status, body, want)
		}
	}
}

// countingRuns is a RunStateReader that marks what it filled.
type countingRuns struct{ calls int }

func (c *countingRuns) Fill(_ context.Context, st *policy.EventStatus) {
	c.calls++
	for i := range st.Targets {
		st.Targets[i].State = policy.StateSucceeded
	}
}

// GET /v1/events/{id} asks for the runs' own states only for a caller
// allowed to read the event: anyone else cannot make the router read the
// cluster, and learns nothing.
func TestEventStatusReadsRunsOnlyForAllowedCallers(t *testing.T) {
	es := newEndpointServer(t)
	runs := &countingRuns{}
	es.srv.cfg.Runs = runs
	if status, _, body := es.post(t, "ci-bot", es.ciToken, agentEvent("st-2", "com.acme.build.requested", nil, nil)); status != http.StatusAccepted {
		t.Fatalf("send: %d %s", status, body)
	}
	get := func(token string) (int, string) {
		h := http.Header{"Authorization": {"Bearer " + token}}
		status, _, body := (&hookServer{url: es.url}).send(t, http.MethodGet, "/v1/events/st-2?endpoint=ci-bot", h, nil)
		return status, string(body)
	}
	if status, body := get(es.ciToken2); status != http.StatusNotFound || runs.calls != 0 {
		t.Fatalf("another principal: %d %s, %d run reads; want 404 and none", status, body, runs.calls)
	}
	status, body := get(es.ciToken)
	if status != http.StatusOK || runs.calls != 1 || !strings.Contains(body, `"state":"succeeded"`) {
		t.Fatalf("the sender: %d %s, %d run reads; want 200 with the runs' states", status, body, runs.calls)
	}
}
