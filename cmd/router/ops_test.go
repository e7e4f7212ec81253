package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestReplayOnRunningRouter: replay reaches a running router's embedded
// queue through its connection file; a plain replay creates nothing new,
// --force creates one new PipelineRun with a new name.
func TestReplayOnRunningRouter(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "replay-test-secret")
	dataDir := t.TempDir()
	r := startRouter(t, dataDir)
	info, err := os.Stat(filepath.Join(dataDir, natsConnFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("connection file: %v, mode %v; want 0600", err, info)
	}
	sendSample(t, r.url, "replay-1")
	waitForFile(t, runFile(dataDir, "replay-1"))

	code, out, errOut := runCmd(t, "", "replay", "--data-dir", dataDir, "--rules", "../../rules", "--id", "replay-1", "--dry-run")
	if code != 0 || !strings.Contains(out, "would queue github replay-1") {
		t.Fatalf("dry run exited %d: %s %s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "replay", "--data-dir", dataDir, "--rules", "../../rules", "--id", "replay-1")
	rev := rulesRevision(t, "../../rules")
	if code != 0 || !strings.Contains(out, "queued github replay-1") || !strings.Contains(out, "rules revision now: "+rev+"\n") ||
		!strings.Contains(out, "event github replay-1 (dev.switchyard.git.push): first routed by rules "+rev+"\n") {
		t.Fatalf("replay exited %d: %s %s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "replay", "--data-dir", dataDir, "--rules", "../../rules", "--id", "replay-1", "--force")
	if code != 0 || !strings.Contains(out, "queued github replay-1") {
		t.Fatalf("forced replay exited %d: %s %s", code, out, errOut)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	files := func() []string {
		f, _ := filepath.Glob(filepath.Join(dataDir, "pipelineruns", "ci", "*.yaml"))
		return f
	}
	waitFor("the forced replay's PipelineRun", func() bool { return len(files()) == 2 })
	// The plain replay's work is settled before the router stops (drain).
	stats := r.stop(t)
	if stats["created"] != float64(2) || stats["existed"] != float64(1) {
		t.Fatalf("created %v existed %v; want 2 and 1 (the plain replay found its run)", stats["created"], stats["existed"])
	}
	if _, err := os.Stat(filepath.Join(dataDir, natsConnFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("connection file left after stop: %v", err)
	}
	if code, _, errOut := runCmd(t, "", "replay", "--data-dir", dataDir, "--rules", "../../rules", "--id", "no-such-event"); code != 1 || !strings.Contains(errOut, "no stored event") {
		t.Fatalf("unknown id: exit %d, %s", code, errOut)
	}
	// The audit trail: the webhook's record and each replay's (not the dry
	// run's) carry the revisions.
	code, out, errOut = runCmd(t, "", "audit", "--data-dir", dataDir, "--id", "replay-1", "-o", "json")
	if code != 0 {
		t.Fatalf("audit exited %d: %s", code, errOut)
	}
	var accepted, replays int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r policy.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		switch {
		case r.Kind == "webhook" && r.Decision == policy.DecisionAccepted && r.RulesRevision == rev && r.OriginalRulesRevision == "":
			accepted++
		case r.Kind == "replay" && r.Decision == policy.DecisionAccepted && r.RulesRevision == rev && r.OriginalRulesRevision == rev && r.Targets == 1:
			replays++
		default:
			t.Errorf("unexpected audit record %s", line)
		}
	}
	if accepted != 1 || replays != 2 {
		t.Fatalf("audit: %d accepted and %d replay records with revision %s, want 1 and 2:\n%s", accepted, replays, rev, out)
	}
}

// TestDLQOnStoppedRouter: with no router running, the dlq commands open the
// data directory's store; a retried dead letter is dispatched by the next
// router start.
func TestDLQOnStoppedRouter(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "dlq-test-secret")
	dataDir := t.TempDir()
	deadLetterOne(t, dataDir)

	code, out, errOut := runCmd(t, "", "dlq", "list", "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "dlq-1") || !strings.Contains(out, "namespace ci is missing") {
		t.Fatalf("dlq list exited %d: %s %s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "", "dlq", "list", "--data-dir", dataDir, "-o", "json", "--app", "other")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("dlq list --app other: %d %s", code, out)
	}
	code, out, errOut = runCmd(t, "", "dlq", "show", "--data-dir", dataDir, "1")
	if code != 0 || !strings.Contains(out, `"reason": "permanent"`) {
		t.Fatalf("dlq show exited %d: %s %s", code, out, errOut)
	}
	if code, _, _ := runCmd(t, "", "dlq", "retry", "--data-dir", dataDir); code != 2 {
		t.Fatalf("retry without SEQ or --all: exit %d, want 2", code)
	}
	code, out, errOut = runCmd(t, "", "dlq", "retry", "--data-dir", dataDir, "--all")
	if code != 0 || !strings.Contains(out, "requeued 1: web/build -> ci/") {
		t.Fatalf("dlq retry exited %d: %s %s", code, out, errOut)
	}
	if code, out, _ := runCmd(t, "", "dlq", "list", "--data-dir", dataDir, "-o", "json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("dead letters left after retry: %s", out)
	}

	r := startRouter(t, dataDir)
	waitForFile(t, runFile(dataDir, "dlq-1"))
	r.stop(t)
}

// deadLetterOne stores one dead letter for (web, build, event dlq-1) in the
// data directory's queue, as a router whose namespace was missing would.
func deadLetterOne(t *testing.T, dataDir string) {
	t.Helper()
	emb, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: filepath.Join(dataDir, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, err := queue.Open(ctx, nc, queue.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := event.New()
	ev.SetID("dlq-1")
	ev.SetSource("https://github.com/acme/web")
	ev.SetType("dev.switchyard.git.push")
	ev.SetExtension("identity", "source:github")
	target := routing.Target{App: "web", Trigger: "build", Namespace: "ci", ServiceAccount: "pipeline-runner",
		PipelineRef: "build-and-test", Name: routing.PipelineRunName("web", "build", "github", "dlq-1")}
	if err := q.Publish(ctx, policy.Accepted{Source: "github", Event: ev, Targets: []routing.Target{target}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	cctx, stop := context.WithCancel(ctx)
	go func() {
		done <- q.Consume(cctx, queue.ConsumerConfig{}, func(context.Context, queue.Work) error {
			return queue.Permanent(errors.New("namespace ci is missing"))
		})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		dls, err := q.DeadLetters(ctx)
		if err == nil && len(dls) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestStatusAndAudit: a running router's decisions are in the audit
// stream, and an accepted event's targets report their state.
func TestStatusAndAudit(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "audit-test-secret")
	dataDir := t.TempDir()
	r := startRouter(t, dataDir)
	sendSample(t, r.url, "audit-1")
	waitForFile(t, runFile(dataDir, "audit-1"))
	// An unsigned request: refused, and audited without an identity.
	resp, err := http.Post(r.url+"/v1/hooks/github", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, errOut := runCmd(t, "", "status", "--data-dir", dataDir, "--source", "github", "--id", "audit-1", "-o", "json")
		if code != 0 {
			t.Fatalf("status exited %d: %s", code, errOut)
		}
		if strings.Contains(out, `"state": "created"`) {
			if !strings.Contains(out, `"identity": "source:github"`) || !strings.Contains(out, `"app": "web"`) {
				t.Fatalf("status %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never created: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Audit records are published without waiting for JetStream's ack
	// (they never hold up a request): read until both are in, bounded.
	var out string
	for {
		code, o, errOut := runCmd(t, "", "audit", "--data-dir", dataDir, "-o", "json")
		if code != 0 {
			t.Fatalf("audit exited %d: %s", code, errOut)
		}
		out = o
		if strings.Contains(out, `"decision":"accepted"`) && strings.Contains(out, `"eventId":"audit-1"`) &&
			strings.Contains(out, `"decision":"unauthenticated"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(out, "audit-test-secret") {
		t.Fatal("a secret is in the audit stream")
	}
	code, out, _ := runCmd(t, "", "audit", "--data-dir", dataDir, "--decision", "unauthenticated")
	if code != 0 || strings.Contains(out, "audit-1") || !strings.Contains(out, "missing X-Hub-Signature-256") {
		t.Fatalf("filtered audit:\n%s", out)
	}
	if code, _, errOut := runCmd(t, "", "status", "--data-dir", dataDir, "--source", "github", "--id", "nope"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("unknown event: %d %s", code, errOut)
	}
	r.stop(t)
}

// TestOpsNATSCredentials: the operator commands take the credential files
// of an external server, and never show a URL's secret.
func TestOpsNATSCredentials(t *testing.T) {
	srv := startNATS(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "ops", Password: "ops-pw"}}
	})
	dir := t.TempDir()
	right, wrong := filepath.Join(dir, "right"), filepath.Join(dir, "wrong")
	if err := os.WriteFile(right, []byte("ops:ops-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrong, []byte("ops:nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A router's streams on the server.
	nc, err := queue.Connect(srv.ClientURL(), queue.ClientAuth{UserFile: right})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := queue.Open(context.Background(), nc, queue.Config{}, nil); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "right user file", args: []string{"--nats-url", srv.ClientURL(), "--nats-user-file", right}},
		{name: "wrong user file", args: []string{"--nats-url", srv.ClientURL(), "--nats-user-file", wrong}, wantCode: 1, wantErr: "Authorization Violation"},
		{name: "secret in an unreachable url", args: []string{"--nats-url", "nats://user:secret@127.0.0.1:1"}, wantCode: 1, wantErr: "nats://REDACTED@127.0.0.1:1"},
		{name: "user file without url", args: []string{"--data-dir", dir, "--nats-user-file", right}, wantCode: 1, wantErr: "need --nats-url"},
		{name: "two credentials", args: []string{"--nats-url", srv.ClientURL(), "--nats-user-file", right, "--nats-nkey", right}, wantCode: 1, wantErr: "at most one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, "", append([]string{"audit"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			if strings.Contains(errOut, "secret") || strings.Contains(errOut, "ops-pw") {
				t.Fatalf("stderr shows a secret: %s", errOut)
			}
		})
	}
}

func TestAuditReasonSaysADeferredWebhookWasAnswered202(t *testing.T) {
	for _, tc := range []struct {
		rec  policy.Record
		want string
	}{
		{policy.Record{Reason: "duplicate"}, "duplicate"},
		{policy.Record{Rule: "scope.apps", Reason: "app web is out of scope"}, "scope.apps: app web is out of scope"},
		{policy.Record{Deferred: true}, "judged behind a 202 (burst)"},
		{policy.Record{Deferred: true, Status: 400, Reason: "malformed payload"}, "judged behind a 202 (burst); malformed payload"},
	} {
		if got := auditReason(tc.rec); got != tc.want {
			t.Errorf("auditReason(%+v) = %q, want %q", tc.rec, got, tc.want)
		}
	}
}
