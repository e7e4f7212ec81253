package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// holdOne stores an event whose one target an approval gate holds, in the
// data directory's queue, as a router would.
func holdOne(t *testing.T, dataDir, id string) {
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
	ctx := context.Background()
	q, err := queue.Open(ctx, nc, queue.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/v1/events/agents")
	ev.SetType("com.acme.deploy.requested")
	ev.SetExtension("identity", "endpoint:agents")
	ev.SetExtension("principal", "bot")
	target := routing.Target{App: "web", Trigger: "deploy", Namespace: "ci", PipelineRef: "deploy",
		Name: routing.PipelineRunName("web", "deploy", "agents", id)}
	a := policy.Accepted{Source: "agents", Event: ev, Targets: []routing.Target{target},
		Hold: &policy.Hold{Gates: []string{"endpoints[agents].approval"}, Targets: []string{"web/deploy"}, Deadline: time.Now().Add(time.Hour)}}
	if err := q.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
}

func TestApproveAndRejectCommands(t *testing.T) {
	dataDir := t.TempDir()
	holdOne(t, dataDir, "held-1")
	holdOne(t, dataDir, "held-2")
	if code, _, errOut := runCmd(t, "", "approve", "--data-dir", dataDir); code != 2 || !strings.Contains(errOut, "usage") {
		t.Fatalf("approve without ID: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "approve", "nope", "--data-dir", dataDir); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("approve an unknown id: %d %s", code, errOut)
	}
	for range 2 {
		code, out, errOut := runCmd(t, "", "approve", "held-1", "--data-dir", dataDir, "--reason", "checked")
		if code != 0 || !strings.Contains(out, "queued by operator") || !strings.Contains(out, "web/deploy") {
			t.Fatalf("approve: %d %s %s", code, out, errOut)
		}
	}
	if code, _, errOut := runCmd(t, "", "reject", "held-1", "--data-dir", dataDir); code != 1 || !strings.Contains(errOut, "already decided") {
		t.Fatalf("reject after approve: %d %s", code, errOut)
	}
	if code, out, errOut := runCmd(t, "", "reject", "--source", "agents", "--data-dir", dataDir, "held-2"); code != 0 || !strings.Contains(out, "rejected") {
		t.Fatalf("reject: %d %s %s", code, out, errOut)
	}
	code, out, errOut := runCmd(t, "", "status", "--data-dir", dataDir, "--source", "agents", "--id", "held-2")
	if code != 0 || !strings.Contains(out, "rejected") {
		t.Fatalf("status: %d %s %s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "", "audit", "--data-dir", dataDir, "--decision", "approved", "-o", "json")
	if code != 0 || !strings.Contains(out, `"eventId":"held-1"`) || !strings.Contains(out, `"identity":"operator`) {
		t.Fatalf("audit: %s", out)
	}
}
