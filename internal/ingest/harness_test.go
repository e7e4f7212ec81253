package ingest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// hookServer is the webhook server as `router serve` runs it, on an
// in-memory store (memStore), with rules holding the given sources and one app,
// "all", whose trigger "any" fires for every event of every source whose
// name does not start with "ungranted" (those are declared but granted to
// no app, so their events are stored with no targets). The provider tests
// send through it to check status codes end to end.
type hookServer struct {
	url string
	// store holds what the server published and audited.
	store *memStore
}

// newHookServer starts the server. sources is the YAML list under
// "sources:" in root.yaml (indented by two spaces); env holds the secrets
// the sources name.
func newHookServer(t testing.TB, sources string, env map[string]string) *hookServer {
	t.Helper()
	rules := mustRules(t, sources, env)
	store := newMemStore()
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: store, Audit: store.Audit, MaxBody: 1 << 20}))
	t.Cleanup(srv.Close)
	return &hookServer{url: srv.URL, store: store}
}

// mustRules loads rules with the given sources and the catch-all app
// (see newHookServer).
func mustRules(t testing.TB, sources string, env map[string]string) *routing.Rules {
	t.Helper()
	dir := t.TempDir()
	var granted []string
	for _, m := range regexp.MustCompile(`(?m)^  - name: *(\S+)`).FindAllStringSubmatch(sources, -1) {
		if !strings.HasPrefix(m[1], "ungranted") {
			granted = append(granted, m[1])
		}
	}
	root := "apiVersion: switchyard.dev/v1alpha1\nkind: Root\nsources:\n" + sources + `
apps:
  - name: all
    manifest: all.yaml
    namespaces: [ci]
    serviceAccounts: [runner]
    sources: [` + strings.Join(granted, ", ") + `]
`
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: all
triggers:
  - name: any
    run:
      pipelineRef: noop
`
	for name, data := range map[string]string{"root.yaml": root, "all.yaml": app} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := LoadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	rules, err := routing.LoadDir(dir, opts)
	if err != nil {
		t.Fatalf("rules:\n%s\n%v", root, err)
	}

	return rules
}

// send makes one request and returns the status, the headers and the body.
func (h *hookServer) send(t testing.TB, method, path string, header http.Header, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

// accepted decodes a 202 body.
func accepted(t testing.TB, body []byte) AcceptedResponse {
	t.Helper()
	var r AcceptedResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("202 body %s: %v", body, err)
	}
	return r
}

// allEvents lists every event of a 202, one or many.
func (r AcceptedResponse) allEvents() []EventResult {
	if len(r.Events) > 0 {
		return r.Events
	}
	if r.ID == "" {
		return nil
	}
	return []EventResult{r.EventResult}
}

// checkGolden compares the normalized events, without their data, with
// testdata/golden/<name>.json: one object for one event, an array for
// several. `go test -update` rewrites the file after a deliberate change;
// review the diff. cmd/router's normalize test reads the same files.
func checkGolden(t *testing.T, name string, events []event.Event) {
	t.Helper()
	bare := make([]event.Event, len(events))
	for i, ev := range events {
		bare[i] = ev.Clone()
		bare[i].DataEncoded = nil
	}
	var v any = bare
	if len(bare) == 1 {
		v = bare[0]
	}
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), got) {
		t.Errorf("normalized events differ from %s:\n%s", golden, got)
	}
}
