package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

// TestRedeliveryIsMarkedDuplicate: a redelivery is still a 202 (the sender
// must not retry), but the body, the log and the audit say "duplicate",
// and `router audit --id` finds both decisions.
func TestRedeliveryIsMarkedDuplicate(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "duplicate-test-secret")
	dataDir := t.TempDir()
	r := startRouter(t, dataDir)
	defer r.stop(t)
	send := func() string {
		t.Helper()
		code, out, stderr := runCmd(t, "", "send", "--rules", "../../rules", "--source", "github", "--url", r.url, "--delivery", "dup-1")
		if code != 0 || !strings.Contains(out, "202 Accepted") {
			t.Fatalf("send exited %d: %s %s", code, out, stderr)
		}
		return out
	}
	if first := send(); strings.Contains(first, "duplicate") {
		t.Fatalf("first delivery marked duplicate: %s", first)
	}
	if second := send(); !strings.Contains(second, `"duplicate":true`) {
		t.Fatalf("redelivery not marked duplicate: %s", second)
	}
	if d := r.logs.logLines("webhook duplicate"); len(d) != 1 || d[0]["event_id"] != "dup-1" {
		t.Fatalf("webhook duplicate log records: %v", d)
	}
	if a := r.logs.logLines("webhook accepted"); len(a) != 1 {
		t.Fatalf("webhook accepted log records: %v", a)
	}

	var reasons []string
	waitUntil(t, "two audit records of dup-1", func() bool {
		code, out, stderr := runCmd(t, "", "audit", "--data-dir", dataDir, "--id", "dup-1", "-o", "json")
		if code != 0 {
			t.Fatalf("audit exited %d: %s", code, stderr)
		}
		reasons = nil
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var rec struct{ EventID, Decision, Reason string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.EventID != "dup-1" || rec.Decision != "accepted" {
				t.Fatalf("audit --id dup-1 returned %s", sc.Text())
			}
			reasons = append(reasons, rec.Reason)
		}
		return len(reasons) == 2
	})
	if reasons[0] != "" || reasons[1] != "duplicate" {
		t.Fatalf("audit reasons %q, want the first plain and the second duplicate", reasons)
	}
}
