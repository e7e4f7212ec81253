package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestReportTaskRunsAndHeldTargets: against the real API server, through
// the router's own RBAC (list and watch on taskruns), a TaskRun a template
// rendered gets its commit statuses and its CDEvents like a PipelineRun,
// and a target an approval gate holds shows "awaiting approval" on the
// commit, on its trigger's context, while no run exists.
func TestReportTaskRunsAndHeldTargets(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-report-loop"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	host, sink := newStatusHost(t), newCDEventSink(t)
	rules := reportRules(t, ns, host.srv.URL)
	root := filepath.Join(rules, "root.yaml")
	data, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	gated := strings.Replace(string(data), "    report: status\n", "    report: status\n    commands: {approve: [carol]}\n", 1)
	gated = strings.Replace(gated, "    sources: [github]\n", "    sources: [github]\n    approval: {triggers: [deploy], approvers: [\"source:github/carol\"]}\n", 1)
	if err := os.WriteFile(root, []byte(gated), 0o644); err != nil {
		t.Fatal(err)
	}
	web := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: lint
    match: {branches: [main]}
    run:
      bindings:
        - {name: revision, value: $(body.after)}
      template:
        spec:
          params: [{name: revision}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: TaskRun
              metadata: {generateName: lint-}
              spec:
                taskRef: {name: lint}
                params: [{name: revision, value: $(tt.params.revision)}]
  - name: deploy
    match: {branches: [main]}
    run: {pipelineRef: deploy}
`
	if err := os.WriteFile(filepath.Join(rules, "apps", "web.yaml"), []byte(web), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := newSecret(t)
	r := startRouterArgs(t, routerConfig{rulesDir: rules, dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: secret},
		"--cdevents-sink", sink.srv.URL)
	if code := sendPush(t, r.url, secret, "loop-1", samplePush(t)); code != http.StatusAccepted {
		t.Fatalf("push: status %d", code)
	}

	// The held target: pending, awaiting approval, on switchyard/web/deploy.
	host.waitPosted(t, "approval", "pending")
	held := host.of("approval")[0]
	if held.Context != "switchyard/web/deploy" || held.Description != "awaiting approval by source:github/carol" ||
		held.Path != "/api/v3/repos/acme/web/statuses/"+reportRevision || held.TargetURL != "" {
		t.Errorf("held status %+v", held)
	}
	tekton := adminTekton(t)
	if prs, err := tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{}); err != nil || len(prs.Items) != 0 {
		t.Fatalf("a held target has a run: %v %v", prs, err)
	}

	// The TaskRun: created, then succeeded.
	name := routing.RunName("web", "lint", "github", "loop-1", 0)
	host.waitPosted(t, name, "pending")
	tr, err := tekton.TektonV1().TaskRuns(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	tr.Status.StartTime, tr.Status.CompletionTime = &now, &now
	tr.Status.Conditions = duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"}}
	if _, err := tekton.TektonV1().TaskRuns(ns).UpdateStatus(ctx, tr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	host.waitPosted(t, name, "pending", "success")
	if got := host.of(name)[1]; got.Context != "switchyard/web/lint" || got.Description != "TaskRun "+name+" succeeded" {
		t.Errorf("taskrun status %+v", got)
	}
	sink.waitTypes(t, string(tr.UID), "dev.cdevents.taskrun.started.0.3.0", "dev.cdevents.taskrun.finished.0.3.0")
	if logs := r.logs.String(); strings.Contains(logs, "forbidden") {
		t.Errorf("the router was refused something:\n%s", logs)
	}
}
