package ingest

// Tests added for mutants that lived (docs/testing.md, "Mutation testing").

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A batch of exactly the caller's events per minute fits the limit.
func TestEndpointBatchOfExactlyTheLimit(t *testing.T) {
	es := newEndpointServer(t)
	t0 := time.Now()
	es.srv.now = func() time.Time { return t0 }
	var evs []json.RawMessage
	for _, id := range []string{"x-1", "x-2", "x-3"} { // release-agent may send 3 a minute
		evs = append(evs, agentEvent(id, "com.acme.deploy.requested", onMain, map[string]string{"environment": "staging"}))
	}
	body, _ := json.Marshal(evs)
	h := http.Header{"Content-Type": {"application/cloudevents-batch+json"}, "Authorization": {"Bearer " + es.issuer.token(t, nil)}}
	if status, _, out := (&hookServer{url: es.url}).send(t, http.MethodPost, "/v1/events/release-agent", h, body); status != http.StatusAccepted {
		t.Fatalf("a batch of 3 with a limit of 3 a minute: %d %s, want 202", status, out)
	}
}

// The in-flight body budget is MaxInflight, DefaultMaxInflight when unset
// (never less than one body).
func TestServerBodyBudget(t *testing.T) {
	for _, tc := range []struct {
		maxInflight, maxBody, want int64
	}{
		{0, 1 << 20, DefaultMaxInflight},
		{8 << 20, 1 << 20, 8 << 20},
		{1 << 10, 1 << 20, 1 << 20},
	} {
		if got := NewServer(Config{MaxInflight: tc.maxInflight, MaxBody: tc.maxBody}).bodies.size; got != tc.want {
			t.Errorf("MaxInflight %d, MaxBody %d: budget %d, want %d", tc.maxInflight, tc.maxBody, got, tc.want)
		}
	}
}

// A provider's reply with a body is JSON unless it says otherwise; an
// empty reply gets no content type.
func TestWriteReplyContentType(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply Reply
		want  string
	}{
		{"body, no type", Reply{Status: http.StatusOK, Body: []byte(`{"ok":true}`)}, "application/json"},
		{"own type", Reply{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("ok")}, "text/plain"},
		{"no body", Reply{Status: http.StatusOK}, ""},
	} {
		rec := httptest.NewRecorder()
		writeReply(rec, &tc.reply)
		if got := rec.Header().Get("Content-Type"); got != tc.want {
			t.Errorf("%s: Content-Type %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A 202 lists "events" only when the request carried several.
func TestAcceptedEventsListOnlyForSeveral(t *testing.T) {
	for n, want := range map[int]bool{1: false, 2: true} {
		out := outcome{status: http.StatusAccepted}
		for i := range n {
			out.events = append(out.events, EventResult{ID: string(rune('a' + i))})
		}
		rec := httptest.NewRecorder()
		writeAccepted(rec, out)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["events"]; ok != want {
			t.Errorf("%d events: events listed %v, want %v: %s", n, ok, want, rec.Body)
		}
	}
}

// The audited remote is the host, without the port.
func TestRemoteHost(t *testing.T) {
	for addr, want := range map[string]string{"10.0.0.1:4321": "10.0.0.1", "[::1]:80": "::1", "10.0.0.2": "10.0.0.2"} {
		if got := remoteHost(&http.Request{RemoteAddr: addr}); got != want {
			t.Errorf("remoteHost(%q) = %q, want %q", addr, got, want)
		}
	}
}
