//go:build !nonats

package ingest

// Tests added for the server.go mutants of the "stored before" answer
// (storedResult, its log line and audit record; docs/testing.md, "Mutation
// testing"). They need the real queue: memStore does not say what it
// stored.

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// lockedBuffer is a log sink the handler and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines with message msg.
func (b *lockedBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestRedeliveryAnsweredLoggedAndAudited: the same delivery again is
// answered, logged and audited under its id as a duplicate; the same
// signed body under a new delivery id is answered with the first
// delivery's id and run, logged under the id sent with the event it
// duplicates, and audited under the id sent with that event in the reason.
func TestRedeliveryAnsweredLoggedAndAudited(t *testing.T) {
	secret := newSecret(t)
	rules := mustRules(t, ghSource, map[string]string{"S": string(secret)})
	logs := &lockedBuffer{}
	var mu sync.Mutex
	var audits []policy.Record
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newTestQueue(t),
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Audit:  func(r policy.Record) { mu.Lock(); audits = append(audits, r); mu.Unlock() }}))
	t.Cleanup(srv.Close)
	body := []byte(`{"ref":"refs/heads/main","after":"abc","repository":{"full_name":"acme/web","html_url":"https://github.com/acme/web"}}`)
	send := func(delivery string) AcceptedResponse {
		t.Helper()
		h := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"}, "X-Github-Delivery": {delivery},
			"X-Hub-Signature-256": {"sha256=" + hexHMAC(secret, body)}}
		status, _, out := (&hookServer{url: srv.URL}).send(t, http.MethodPost, "/v1/hooks/gh", h, body)
		if status != http.StatusAccepted {
			t.Fatalf("delivery %s: %d %s", delivery, status, out)
		}
		return accepted(t, out)
	}
	first := send("d-1")
	if first.ID != "d-1" || first.Duplicate || len(first.Targets) != 1 {
		t.Fatalf("first delivery answered %+v", first.EventResult)
	}
	run := first.Targets[0].Name
	for _, delivery := range []string{"d-1", "d-2"} {
		got := send(delivery)
		if got.ID != "d-1" || !got.Duplicate || len(got.Targets) != 1 || got.Targets[0].Name != run {
			t.Errorf("%s again answered %+v, want d-1 and its run %s, duplicate", delivery, got.EventResult, run)
		}
	}

	accepted := logs.lines(t, "webhook accepted")
	if len(accepted) != 1 || accepted[0]["event_id"] != "d-1" || accepted[0]["duplicate_of"] != nil {
		t.Errorf("accepted log lines %v, want one for d-1 without duplicate_of", accepted)
	}
	dups := logs.lines(t, "webhook duplicate")
	if len(dups) != 2 || dups[0]["event_id"] != "d-1" || dups[0]["duplicate_of"] != nil ||
		dups[1]["event_id"] != "d-2" || dups[1]["duplicate_of"] != "d-1" {
		t.Errorf("duplicate log lines %v, want d-1 alone, then d-2 as a duplicate of d-1", dups)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []struct{ id, reason string }{{"d-1", ""}, {"d-1", "duplicate"}, {"d-2", "duplicate of event d-1 (the same signed body under another delivery id)"}}
	if len(audits) != len(want) {
		t.Fatalf("audit %+v, want %d records", audits, len(want))
	}
	for i, w := range want {
		if a := audits[i]; a.EventID != w.id || a.Reason != w.reason || a.Decision != policy.DecisionAccepted {
			t.Errorf("audit %d: %s %q %s, want %s %q accepted", i, a.EventID, a.Reason, a.Decision, w.id, w.reason)
		}
	}
}
