package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
)

// cancelDeploy is a trigger of app web whose newest run cancels the
// older ones of its group (the repository's branch).
const cancelDeploy = `  - name: deploy
    match: {branches: [main]}
    concurrency:
      group: $(extensions.repository)-$(extensions.branch)
      cancelInProgress: true
    run: {pipelineRef: deploy}
`

// webApp returns the configuration of a router dispatching into ns whose
// rules hold one app, web, with triggers (YAML list items), and a secret.
func webApp(t *testing.T, ns, triggers string) routerConfig {
	t.Helper()
	kubeconfig, err := cluster.RouterKubeconfig(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	// A run of an earlier iteration (go test -count=2) would be taken for
	// this one's: the deliveries and so the runs' names are the same.
	if err := adminTekton(t).TektonV1().PipelineRuns(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	rules := rulesFor(t, ns, "")
	web := "apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: web\ntriggers:\n" + triggers
	if err := os.WriteFile(filepath.Join(rules, "apps", "web.yaml"), []byte(web), 0o644); err != nil {
		t.Fatal(err)
	}
	return routerConfig{rulesDir: rules, dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: newSecret(t)}
}

// TestConcurrencyGroups: cancelInProgress cancels the older run of a group
// once a newer one exists; limit: 1 creates later runs pending and starts
// the next one when the running one finishes, also across a router restart.
// No Tekton controller runs here: the test finishes a run by writing its
// status as Tekton would.
func TestConcurrencyGroups(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-concurrency"
	cfg := webApp(t, ns, cancelDeploy+`  - name: build
    match: {branches: [main]}
    concurrency: {limit: 1}
    run: {pipelineRef: build}
`)
	secret := cfg.secret
	tekton := adminTekton(t)
	body := samplePush(t)

	r := startRouter(t, cfg)
	send := func(r *router, delivery string) {
		t.Helper()
		if code := sendPush(t, r.url, secret, delivery, body); code != http.StatusAccepted {
			t.Fatalf("%s: status %d", delivery, code)
		}
	}
	// get returns the run of trigger for delivery, waiting until it exists
	// and satisfies cond.
	get := func(trigger, delivery, what string, cond func(*pipelinev1.PipelineRun) bool) *pipelinev1.PipelineRun {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		var last *pipelinev1.PipelineRun
		for time.Now().Before(deadline) {
			list, err := tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{
				LabelSelector: "switchyard.dev/trigger=" + trigger + ",switchyard.dev/event-id=" + delivery})
			if err == nil && len(list.Items) == 1 {
				last = &list.Items[0]
				if cond(last) {
					return last
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if last != nil {
			t.Fatalf("%s run of %s: not %s; spec.status %q", trigger, delivery, what, last.Spec.Status)
		}
		t.Fatalf("%s run of %s never appeared", trigger, delivery)
		return nil
	}
	started := func(pr *pipelinev1.PipelineRun) bool { return pr.Spec.Status == "" }
	pending := func(pr *pipelinev1.PipelineRun) bool {
		return pr.Spec.Status == pipelinev1.PipelineRunSpecStatusPending
	}
	cancelled := func(pr *pipelinev1.PipelineRun) bool {
		return pr.Spec.Status == pipelinev1.PipelineRunSpecStatusCancelled
	}

	send(r, "conc-1")
	get("deploy", "conc-1", "running", started)
	get("build", "conc-1", "started (the group had room)", started)

	send(r, "conc-2")
	get("deploy", "conc-2", "running", started)
	get("deploy", "conc-1", "cancelled by conc-2", cancelled)
	get("build", "conc-2", "pending behind conc-1", pending)

	send(r, "conc-3")
	get("deploy", "conc-2", "cancelled by conc-3", cancelled)
	get("build", "conc-3", "pending", pending)
	if pr := get("deploy", "conc-3", "running", started); pr.Annotations[dispatch.AnnotationConcurrencyGroup] != "acme/web-main" {
		t.Errorf("group annotation %q", pr.Annotations[dispatch.AnnotationConcurrencyGroup])
	}

	// The router crashes; meanwhile the running build finishes.
	r.kill()
	first := get("build", "conc-1", "running", started)
	first.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"})
	if _, err := tekton.TektonV1().PipelineRuns(ns).UpdateStatus(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A new router finds the group on the runs themselves and starts the
	// next one, in order, and only one.
	cfg.dataDir = t.TempDir()
	proxy, viaProxyConfig := viaProxy(t, cfg.kubeconfig)
	cfg.kubeconfig = viaProxyConfig
	r2 := startRouterArgs(t, cfg, "--concurrency-resync", "200ms")
	get("build", "conc-2", "started after conc-1 finished", started)
	// Counted, not slept: once the second resync after this point has
	// begun its list, a whole resync saw conc-2 running and left conc-3.
	resyncs := proxy.Lists(dispatch.ResyncSelector)
	waitUntil(t, "two more resyncs", time.Minute, func() bool { return proxy.Lists(dispatch.ResyncSelector) >= resyncs+2 })
	get("build", "conc-3", "still pending (limit 1)", pending)
	r2.stop()
}

// TestCancelInProgressKeepsTheNewestEvent: pushes answered one after the
// other are dispatched in parallel, so their runs may be created in
// another order; the run left running is the last push's, every other one
// is cancelled, and each run carries when its event was accepted.
func TestCancelInProgressKeepsTheNewestEvent(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-concurrency-order"
	cfg := webApp(t, ns, cancelDeploy)
	secret := cfg.secret
	r := startRouter(t, cfg)
	tekton := adminTekton(t)
	body := samplePush(t)

	const pushes = 8
	var deliveries []string
	for i := range pushes {
		d := fmt.Sprintf("order-%d", i)
		if code := sendPush(t, r.url, secret, d, body); code != http.StatusAccepted {
			t.Fatalf("%s: status %d", d, code)
		}
		deliveries = append(deliveries, d)
	}
	last := deliveries[pushes-1]
	var runs map[string]pipelinev1.PipelineRun
	waitUntil(t, "the last push's run running, every other one cancelled", time.Minute, func() bool {
		list, err := tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: "switchyard.dev/trigger=deploy"})
		if err != nil || len(list.Items) != pushes {
			return false
		}
		runs = map[string]pipelinev1.PipelineRun{}
		for _, pr := range list.Items {
			runs[pr.Labels["switchyard.dev/event-id"]] = pr
		}
		for _, d := range deliveries {
			if cancelled := runs[d].Spec.Status == pipelinev1.PipelineRunSpecStatusCancelled; cancelled == (d == last) {
				return false
			}
		}
		return true
	})
	var previous time.Time
	for _, d := range deliveries {
		at, err := time.Parse(time.RFC3339Nano, runs[d].Annotations[dispatch.AnnotationAcceptedAt])
		if err != nil {
			t.Fatalf("%s: accepted-at: %v", d, err)
		}
		if !at.After(previous) {
			t.Errorf("%s accepted at %s, not after the push answered before it (%s)", d, at, previous)
		}
		previous = at
	}
}
