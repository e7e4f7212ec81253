package main

import (
	"strings"
	"testing"
)

// TestStoppingRouterStoresItsLastAuditRecords: audit records are written
// behind the answer, by the queue's writer; a router stopped right after
// answering has stored one for every request (the shutdown flushes what
// the writer still holds: queue's TestFlushAuditStoresEverythingGiven),
// and /metrics says how many it had to drop (none).
func TestStoppingRouterStoresItsLastAuditRecords(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "audit-flush-secret")
	dataDir := t.TempDir()
	r := startRouter(t, dataDir)
	const n = 10
	for i := range n {
		sendSample(t, r.url, "last-"+string(rune('a'+i)))
	}
	if m := httpGet(t, r.url+"/metrics"); !strings.Contains(m, "\nswitchyard_audit_dropped_total 0\n") {
		t.Errorf("metrics lack switchyard_audit_dropped_total 0:\n%s", grepLines(m, "switchyard_audit"))
	}
	r.stop(t)
	code, out, stderr := runCmd(t, "", "audit", "--data-dir", dataDir, "--decision", "accepted", "-o", "json")
	if code != 0 {
		t.Fatalf("audit exited %d: %s", code, stderr)
	}
	if got := strings.Count(out, `"eventId":"last-`); got != n {
		t.Fatalf("%d audit records of the %d requests answered before the stop:\n%s", got, n, out)
	}
}
