package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// approvalRules writes rules where production deploys requested through
// the agents endpoint wait for alice (of the people endpoint) or lead (of
// agents), and pushes to acme/web that start web/build wait as well, for
// at most two seconds.
func approvalRules(t *testing.T, ns string, tokens map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	line := func(names ...string) string {
		var b strings.Builder
		for _, n := range names {
			sum := sha256.Sum256([]byte(tokens[n]))
			fmt.Fprintf(&b, "sha256:%s %s\n", hex.EncodeToString(sum[:]), n)
		}
		return b.String()
	}
	root := fmt.Sprintf(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GITHUB_WEBHOOK_SECRET}}
apps:
  - name: web
    manifest: web.yaml
    namespaces: [%[1]s]
    sources: [github]
    identities: ["endpoint:agents"]
    approval: {triggers: [build], approvers: ["endpoint:people/alice"], timeout: 2s}
endpoints:
  - name: agents
    auth: {tokens: {file: %[2]s}}
    scope: {apps: [web], eventTypes: [com.acme.deploy.requested], params: [environment]}
    approval:
      environments: [production]
      approvers: ["endpoint:people/alice", "endpoint:agents/lead"]
      timeout: 1h
  - name: people
    auth: {tokens: {file: %[3]s}}
    scope: {eventTypes: [com.acme.none]}
`, ns, filepath.Join(dir, "agents.tokens"), filepath.Join(dir, "people.tokens"))
	web := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: deploy
    match: {types: [com.acme.deploy.requested]}
    run:
      pipelineRef: deploy
      params: [{name: environment, value: $(body.params.environment)}]
  - name: build
    match: {types: [dev.switchyard.git.push], repositories: [acme/web]}
    run: {pipelineRef: build-and-test}
`
	for name, data := range map[string]string{"root.yaml": root, "web.yaml": web,
		"agents.tokens": line("bot", "lead"), "people.tokens": line("alice", "mallory")} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// call posts body to url+path with principal's token and decodes the
// answer into a map.
func call(t *testing.T, method, url, token string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

func deployEvent(id, env string) []byte {
	b, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "agent://bot", "type": "com.acme.deploy.requested",
		"datacontenttype": "application/json", "data": map[string]any{"params": map[string]string{"environment": env}}})
	return b
}

// targetState is the state GET /v1/events/{id} reports for the event's
// one target.
func targetState(t *testing.T, r *router, token, endpoint, id string) string {
	t.Helper()
	code, st := call(t, http.MethodGet, r.url+"/v1/events/"+id+"?endpoint="+endpoint, token, nil)
	targets, _ := st["targets"].([]any)
	if code != http.StatusOK || len(targets) != 1 {
		t.Fatalf("status of %s: %d %v", id, code, st)
	}
	return targets[0].(map[string]any)["state"].(string)
}

// approvalRouter is the configuration of a router on approvalRules in
// namespace ns, with the router's own identity, and the tokens of bot,
// lead, alice and mallory.
func approvalRouter(t *testing.T, ns string) (routerConfig, map[string]string) {
	t.Helper()
	kubeconfig, err := cluster.RouterKubeconfig(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, p := range []string{"bot", "lead", "alice", "mallory"} {
		tokens[p] = newSecret(t)
	}
	return routerConfig{rulesDir: approvalRules(t, ns, tokens), dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: newSecret(t)}, tokens
}

func TestApprovalGateOnTheRealAPIServer(t *testing.T) {
	const ns = "e2e-approval"
	cfg, tokens := approvalRouter(t, ns)
	secret := cfg.secret
	r := startRouter(t, cfg)
	tekton := adminTekton(t)

	// Production waits; staging runs at once, and once its work settled
	// the production request has made no run.
	if code, out := call(t, http.MethodPost, r.url+"/v1/events/agents", tokens["bot"], deployEvent("e2e-prod-1", "production")); code != http.StatusAccepted {
		t.Fatalf("production request: %d %v", code, out)
	}
	if code, out := call(t, http.MethodPost, r.url+"/v1/events/agents", tokens["bot"], deployEvent("e2e-stage-1", "staging")); code != http.StatusAccepted {
		t.Fatalf("staging request: %d %v", code, out)
	}
	runs := waitForRunsSettled(t, tekton, ns, 1, 30*time.Second, r.embeddedNATS(t))
	if runs[0].Labels["switchyard.dev/event-id"] != "e2e-stage-1" {
		t.Fatalf("the run is %s's", runs[0].Labels["switchyard.dev/event-id"])
	}
	if st := targetState(t, r, tokens["bot"], "agents", "e2e-prod-1"); st != "awaiting-approval" {
		t.Fatalf("production state %q", st)
	}

	approve := func(who, endpoint, id string) (int, map[string]any) {
		return call(t, http.MethodPost, r.url+"/v1/events/"+id+"/approve?endpoint="+endpoint, tokens[who], []byte(`{"params":{"environment":"staging"}}`))
	}
	for _, tc := range []struct {
		who, endpoint, id string
		want              int
	}{
		{"bot", "agents", "e2e-prod-1", http.StatusForbidden},     // the sender
		{"mallory", "people", "e2e-prod-1", http.StatusForbidden}, // not an approver
		{"alice", "people", "e2e-nope", http.StatusNotFound},
		{"", "people", "e2e-prod-1", http.StatusUnauthorized},
	} {
		if code, out := approve(tc.who, tc.endpoint, tc.id); code != tc.want {
			t.Fatalf("%s approving %s: %d %v, want %d", tc.who, tc.id, code, out, tc.want)
		}
	}

	// A restart while it waits loses nothing.
	r.stop()
	r = startRouter(t, cfg)
	if st := targetState(t, r, tokens["bot"], "agents", "e2e-prod-1"); st != "awaiting-approval" {
		t.Fatalf("production state after restart %q", st)
	}
	for range 2 {
		if code, out := approve("alice", "people", "e2e-prod-1"); code != http.StatusOK || out["state"] != "queued" {
			t.Fatalf("alice approving: %d %v", code, out)
		}
	}
	runs = waitForRunsSettled(t, tekton, ns, 2, 30*time.Second, r.embeddedNATS(t))
	name := routing.PipelineRunName("web", "deploy", "agents", "e2e-prod-1")
	found := false
	for _, pr := range runs {
		if pr.Name == name {
			found = true
			if len(pr.Spec.Params) != 1 || pr.Spec.Params[0].Value.StringVal != "production" {
				t.Fatalf("the approved run's params changed: %+v", pr.Spec.Params)
			}
		}
	}
	if !found {
		t.Fatalf("no run %s", name)
	}
	if st := targetState(t, r, tokens["bot"], "agents", "e2e-prod-1"); st != "created" {
		t.Fatalf("production state after approval %q", st)
	}
	checkExpiryAndOperatorReject(t, r, tokens, secret)
	waitForRunsSettled(t, tekton, ns, 2, 30*time.Second, r.embeddedNATS(t))
}

// checkExpiryAndOperatorReject: a gated push past its two seconds ends
// expired (409 to a late approval), and an operator rejects a request with
// `router reject`; neither makes a run.
func checkExpiryAndOperatorReject(t *testing.T, r *router, tokens map[string]string, secret string) {
	t.Helper()
	if code := sendPush(t, r.url, secret, "e2e-approval-push", samplePush(t)); code != http.StatusAccepted {
		t.Fatalf("push: %d", code)
	}
	// Waiting for the gate's timeout to pass is the point here.
	time.Sleep(2500 * time.Millisecond)
	code, out := call(t, http.MethodPost, r.url+"/v1/events/e2e-approval-push/approve?endpoint=people&source=github", tokens["alice"], nil)
	if code != http.StatusConflict {
		t.Fatalf("late approval: %d %v", code, out)
	}
	if code, out := call(t, http.MethodPost, r.url+"/v1/events/agents", tokens["bot"], deployEvent("e2e-prod-3", "production")); code != http.StatusAccepted {
		t.Fatalf("production request: %d %v", code, out)
	}
	cmd := exec.Command(routerBinary(t), "reject", "e2e-prod-3", "--data-dir", r.dataDir, "--reason", "change freeze")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "rejected") {
		t.Fatalf("router reject: %v\n%s", err, out)
	}
	if st := targetState(t, r, tokens["bot"], "agents", "e2e-prod-3"); st != "rejected" {
		t.Fatalf("state after router reject %q", st)
	}
	out2, err := exec.Command(routerBinary(t), "status", "--source", "github", "--id", "e2e-approval-push", "--data-dir", r.dataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out2), "expired") {
		t.Fatalf("router status of the expired push: %v\n%s", err, out2)
	}
}

// TestApprovalCommentCancel: a granted /cancel comment (a real GitHub
// issue_comment sample, signed) cancels the pull request's running
// PipelineRun on the real API server: spec.status Cancelled.
func TestApprovalCommentCancel(t *testing.T) {
	ctx := context.Background()
	const ns = "e2e-cancel"
	kubeconfig, err := cluster.RouterKubeconfig(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := fmt.Sprintf(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: GITHUB_WEBHOOK_SECRET}
    commands: {cancel: [chhsia0], trustAllPullRequests: true}
apps:
  - {name: web, manifest: web.yaml, namespaces: [%s], sources: [github]}
`, ns)
	web := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: pr
    match: {types: [dev.switchyard.git.pullrequest]}
    run: {pipelineRef: ci}
`
	for name, data := range map[string]string{"root.yaml": root, "web.yaml": web} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret := newSecret(t)
	r := startRouter(t, routerConfig{rulesDir: dir, dataDir: t.TempDir(), kubeconfig: kubeconfig, secret: secret})
	pull, err := os.ReadFile("../testdata/github/pull-request.json")
	if err != nil {
		t.Fatal(err)
	}
	if code := sendGitHub(t, r.url, secret, "pull_request", "e2e-pr-1", pull); code != http.StatusAccepted {
		t.Fatalf("pull_request: %d", code)
	}
	tekton := adminTekton(t)
	run := waitForRunsSettled(t, tekton, ns, 1, 30*time.Second, r.embeddedNATS(t))[0]

	// The sample comment, moved to the sample pull request (baxterthehacker/public-repo#1).
	raw, err := os.ReadFile("../../internal/ingest/testdata/comments/github-issue-comment.json")
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	c["repository"].(map[string]any)["full_name"] = "baxterthehacker/public-repo"
	c["issue"].(map[string]any)["number"] = 1
	c["comment"].(map[string]any)["body"] = "/cancel"
	body, _ := json.Marshal(c)
	if code := sendGitHub(t, r.url, secret, "issue_comment", "e2e-comment-1", body); code != http.StatusAccepted {
		t.Fatalf("issue_comment: %d", code)
	}
	waitUntil(t, "the run cancelled", 30*time.Second, func() bool {
		pr, err := tekton.TektonV1().PipelineRuns(ns).Get(ctx, run.Name, metav1.GetOptions{})
		return err == nil && pr.Spec.Status == "Cancelled"
	})
}

// sendGitHub posts body as a GitHub delivery of kind, signed.
func sendGitHub(t *testing.T, url, secret, kind, delivery string, body []byte) int {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url+"/v1/hooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", kind)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
