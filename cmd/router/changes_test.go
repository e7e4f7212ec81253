package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeChecksDeferredPathsAfterTheAnswer (issue 12): `router serve`
// wires dispatch to GitHub's compare API with the apiToken of the rules in
// force: of two truncated pushes, the one whose changes match the trigger's
// paths gets its run, the other is skipped, and both were answered 202.
func TestServeChecksDeferredPathsAfterTheAnswer(t *testing.T) {
	var calls atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer api-token" {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		file := "docs/readme.md"
		if strings.HasSuffix(r.URL.Path, "...a-src") {
			file = "src/main.go"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ahead","files":[{"filename":%q}]}`, file)
	}))
	t.Cleanup(api.Close)

	rules := t.TempDir()
	files := map[string]string{
		"root.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: PATHS_HOOK_SECRET}
    apiToken: {env: PATHS_API_TOKEN}
    apiURL: ` + api.URL + `/api/v3
apps:
  - name: web
    manifest: web.yaml
    namespaces: [ci]
    serviceAccounts: [runner]
    sources: [github]
`,
		"web.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match:
      paths: ["src/**"]
    run: {pipelineRef: build}
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(rules, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret := "paths-hook-secret"
	t.Setenv("PATHS_HOOK_SECRET", secret)
	t.Setenv("PATHS_API_TOKEN", "api-token")
	dataDir := t.TempDir()
	r := startRouter(t, dataDir, "--rules", rules)

	for _, after := range []string{"a-src", "a-docs"} {
		status := postTruncatedPush(t, r.url, secret, "d-"+after, after)
		if status != http.StatusAccepted {
			t.Fatalf("push %s: status %d, want 202", after, status)
		}
	}
	waitForFile(t, runFile(dataDir, "d-a-src"))
	for deadline := time.Now().Add(20 * time.Second); len(r.logs.logLines("work skipped")) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no push was skipped:\n%s", r.logs.String())
		}
	}
	skipped := r.logs.logLines("work skipped")
	if len(skipped) != 1 || skipped[0]["event_id"] != "d-a-docs" || !strings.Contains(fmt.Sprint(skipped[0]["reason"]), "no changed file matches paths src/**") {
		t.Errorf("skipped %v, want d-a-docs for its paths", skipped)
	}
	if _, err := os.Stat(runFile(dataDir, "d-a-docs")); !os.IsNotExist(err) {
		t.Errorf("the skipped push has a PipelineRun (%v)", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d compare calls, want 2", n)
	}
	if got := r.stop(t); got["created"] != float64(1) {
		t.Errorf("created %v PipelineRuns, want 1", got["created"])
	}
}

// postTruncatedPush sends a signed push of 20 commits (GitHub's cap, so
// its list may be cut) from before b-0 to after.
func postTruncatedPush(t *testing.T, url, secret, delivery, after string) int {
	t.Helper()
	commits := make([]map[string]any, 20)
	for i := range commits {
		commits[i] = map[string]any{"id": fmt.Sprintf("c%d", i), "added": []string{fmt.Sprintf("docs/%d.md", i)}}
	}
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": "b-0", "after": after, "commits": commits,
		"repository": map[string]any{"full_name": "acme/web", "html_url": "https://github.com/acme/web"},
		"sender":     map[string]any{"login": "alice"}, "pusher": map[string]any{"name": "alice"},
	})
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url+"/v1/hooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
