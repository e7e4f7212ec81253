package ingest

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestEndpointTokenRotation rotates an endpoint's tokens file: while both
// lines are listed either token is accepted and the audit record names the
// line that matched (never the token), so the old line can be seen unused;
// once the reloaded file drops it, the old token is refused.
func TestEndpointTokenRotation(t *testing.T) {
	oldToken, newToken := hex.EncodeToString(newSecret(t)), hex.EncodeToString(newSecret(t))
	dir := t.TempDir()
	tokens := filepath.Join(t.TempDir(), "agent-tokens")
	write := func(path, data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "root.yaml"), `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: web
    manifest: web.yaml
    namespaces: [ci]
    identities: ["endpoint:agent"]
endpoints:
  - name: agent
    auth:
      tokens: {file: `+tokens+`}
    scope:
      eventTypes: ["com.acme.*"]
`)
	write(filepath.Join(dir, "web.yaml"), "apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: web\ntriggers:\n  - name: build\n    run: {pipelineRef: build}\n")
	load := func() *routing.Rules {
		t.Helper()
		opts := LoadOptions()
		opts.ResolveSecrets = true
		opts.LookupEnv = func(string) (string, bool) { return "x", true }
		rules, err := routing.LoadDir(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		return rules
	}
	write(tokens, "# rotating to the new token, 2026-11-29\n"+hashLine(newToken, "bot")+"\n"+hashLine(oldToken, "bot")+"\n")
	holder := routing.NewHolder(load())
	q := newMemStore()
	srv := httptest.NewServer(NewServer(Config{Rules: holder, Publisher: q, Audit: q.Audit, MaxBody: 1 << 20}))
	t.Cleanup(srv.Close)
	es := &endpointServer{url: srv.URL}

	send := func(id, token string, wantStatus, wantLine int) {
		t.Helper()
		status, _, body := es.post(t, "agent", token, agentEvent(id, "com.acme.build.requested", nil, nil))
		if status != wantStatus {
			t.Fatalf("%s: %d %s, want %d", id, status, body, wantStatus)
		}
		recs := q.records()
		last := recs[len(recs)-1]
		if last.TokenLine != wantLine {
			t.Fatalf("%s: audit record names token line %d, want %d: %+v", id, last.TokenLine, wantLine, last)
		}
	}
	send("during-new", newToken, http.StatusAccepted, 2)
	send("during-old", oldToken, http.StatusAccepted, 3)
	send("during-third", hex.EncodeToString(newSecret(t)), http.StatusUnauthorized, 0)

	write(tokens, hashLine(newToken, "bot")+"\n")
	holder.Swap(load())
	send("after-old", oldToken, http.StatusUnauthorized, 0)
	send("after-new", newToken, http.StatusAccepted, 1)

	data, _ := json.Marshal(q.records())
	if strings.Contains(string(data), oldToken) || strings.Contains(string(data), newToken) {
		t.Fatalf("an audit record holds a token: %s", data)
	}
}
