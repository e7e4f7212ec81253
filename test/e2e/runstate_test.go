package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// targetStatus is GET /v1/events/{id}'s one target: its state and reason.
func targetStatus(t *testing.T, r *router, token, endpoint, id string) (state, reason string) {
	t.Helper()
	code, st := call(t, http.MethodGet, r.url+"/v1/events/"+id+"?endpoint="+endpoint, token, nil)
	targets, _ := st["targets"].([]any)
	if code != http.StatusOK || len(targets) != 1 {
		t.Fatalf("status of %s: %d %v", id, code, st)
	}
	target := targets[0].(map[string]any)
	reason, _ = target["reason"].(string)
	return target["state"].(string), reason
}

// TestStatusShowsTheRunsOwnState: GET /v1/events/{id} reports a created
// run as the run itself is doing, read from the API server with the
// router's own identity: created until it starts, then running, then
// succeeded or run-failed (cancelled saying so), and a deleted run as gone.
func TestStatusShowsTheRunsOwnState(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-runstate"
	cfg, tokens := approvalRouter(t, ns)
	r := startRouter(t, cfg)
	tekton := adminTekton(t)
	for _, id := range []string{"e2e-rs-1", "e2e-rs-2"} {
		if code, out := call(t, http.MethodPost, r.url+"/v1/events/agents", tokens["bot"], deployEvent(id, "staging")); code != http.StatusAccepted {
			t.Fatalf("request %s: %d %v", id, code, out)
		}
	}
	runs := waitForRunsSettled(t, tekton, ns, 2, 30*time.Second, r.embeddedNATS(t))
	nameOf := map[string]string{}
	for _, pr := range runs {
		nameOf[pr.Labels["switchyard.dev/event-id"]] = pr.Name
	}
	check := func(id, wantState, wantReason string) {
		t.Helper()
		state, reason := targetStatus(t, r, tokens["bot"], "agents", id)
		if state != wantState || !strings.HasPrefix(reason, wantReason) {
			t.Fatalf("%s: state %q reason %q, want %q %q", id, state, reason, wantState, wantReason)
		}
	}
	check("e2e-rs-1", "created", "")
	setCondition(t, ns, nameOf["e2e-rs-1"], corev1.ConditionUnknown, "Running")
	check("e2e-rs-1", "running", "")
	setCondition(t, ns, nameOf["e2e-rs-1"], corev1.ConditionTrue, "Succeeded")
	check("e2e-rs-1", "succeeded", "")
	setCondition(t, ns, nameOf["e2e-rs-2"], corev1.ConditionFalse, "Cancelled")
	check("e2e-rs-2", "run-failed", "cancelled")
	if err := tekton.TektonV1().PipelineRuns(ns).Delete(ctx, nameOf["e2e-rs-2"], metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	check("e2e-rs-2", "created", "the run no longer exists")
}
