package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// acceptedPublisher keeps what ingest stored.
type acceptedPublisher struct {
	mu  sync.Mutex
	got []policy.Accepted
}

func (p *acceptedPublisher) Publish(_ context.Context, a policy.Accepted) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, a)
	return nil
}

// pathsRules loads a github source with an apiToken at apiURL and an app
// whose one trigger has a paths condition.
func pathsRules(t *testing.T, apiURL string, secret []byte) *routing.Rules {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"root.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: HOOK_SECRET}
    apiToken: {env: API_TOKEN}
    apiURL: ` + apiURL + `
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
  - name: code
    match:
      paths: ["src/**", "!**/*.md"]
    run: {pipelineRef: build}
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"HOOK_SECRET": string(secret), "API_TOKEN": "api-token"}
	opts := LoadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	rules, err := routing.LoadDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestTruncatedPushAnswersWithoutAskingGitHub (issue 12): a push whose
// payload may be cut, on a source with an apiToken and a paths rule, is
// answered 202 without a request to GitHub's API, even while that API
// hangs; the stored target carries the check for dispatch.
func TestTruncatedPushAnswersWithoutAskingGitHub(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select { // hangs until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(api.Close)
	t.Cleanup(func() { close(release) }) // runs before api.Close

	secret := newSecret(t)
	pub := &acceptedPublisher{}
	srv := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(pathsRules(t, api.URL+"/api/v3", secret)), Publisher: pub, MaxBody: 1 << 20}))
	t.Cleanup(srv.Close)
	hook := &hookServer{url: srv.URL}

	body := readSample(t, "github", "push.json")
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	manyCommits(20)(m)
	m["before"], m["after"] = sampleBefore, sampleAfter
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h := githubHeader("push", "d-truncated")
	h.Set("X-Hub-Signature-256", signGitHub(secret, body))
	status, _, resp := hook.send(t, http.MethodPost, "/v1/hooks/github", h, body)
	if status != http.StatusAccepted {
		t.Fatalf("status %d (%s), want 202", status, resp)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the webhook made %d requests to GitHub's API, want none", n)
	}
	if got := accepted(t, resp).Targets; len(got) != 1 || got[0].Trigger != "code" {
		t.Fatalf("202 targets %+v, want web/code", got)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.got) != 1 || len(pub.got[0].Targets) != 1 {
		t.Fatalf("stored %+v, want one event with one target", pub.got)
	}
	tg := pub.got[0].Targets[0]
	want := &routing.PathsCheck{Source: "github", ChangesQuery: routing.ChangesQuery{Repository: "acme/web", Before: sampleBefore, After: sampleAfter},
		Paths: []string{"src/**", "!**/*.md"}, Reason: "the push payload lists 20 commits, GitHub's maximum, so it may be cut"}
	if tg.PathsCheck == nil || fmt.Sprint(*tg.PathsCheck) != fmt.Sprint(*want) {
		t.Errorf("PathsCheck = %+v, want %+v", tg.PathsCheck, want)
	}
	if len(tg.Notes) != 1 || !strings.HasPrefix(tg.Notes[0], "paths checked at dispatch: ") {
		t.Errorf("Notes = %q, want the deferred check's", tg.Notes)
	}
}

// TestChangesFetcher: dispatch's question is asked once per push, a 4xx
// answers "unknown" (incomplete, with why) and a 5xx is an error to retry.
func TestChangesFetcher(t *testing.T) {
	forward := sampleBefore + "..." + sampleAfter
	ok := newCompareServer(t, map[string]compareAnswer{
		forward: {200, `{"status":"ahead","files":[{"filename":"src/a.go","status":"modified"}]}`},
	})
	gone := newCompareServer(t, map[string]compareAnswer{})
	broken := newCompareServer(t, map[string]compareAnswer{forward: {502, `{"message":"bad gateway"}`}})
	sources := map[string]*routing.Source{}
	for name, s := range map[string]*compareServer{"ok": ok, "gone": gone, "broken": broken} {
		sources[name] = &routing.Source{Name: name, Kind: "github", APIToken: []byte("api-token"), APIURL: s.URL + "/api/v3"}
	}
	sources["no-token"] = &routing.Source{Name: "no-token", Kind: "github"}
	f := NewChangesFetcher(func(name string) *routing.Source { return sources[name] })
	check := func(source string) routing.PathsCheck {
		return routing.PathsCheck{Source: source, ChangesQuery: routing.ChangesQuery{Repository: "acme/web", Before: sampleBefore, After: sampleAfter}}
	}
	ctx := context.Background()

	for range 3 {
		ch, err := f.Changes(ctx, check("ok"))
		if err != nil || !ch.Complete || len(ch.Files) != 1 || ch.Files[0] != "src/a.go" {
			t.Fatalf("Changes = %+v, %v; want src/a.go, complete", ch, err)
		}
	}
	if n := ok.calls.Load(); n != 1 {
		t.Errorf("%d compare calls for one push asked three times, want 1", n)
	}

	ch, err := f.Changes(ctx, check("gone"))
	if err != nil || ch.Complete || !strings.Contains(ch.Reason, "404") {
		t.Errorf("on a 404: Changes = %+v, %v; want incomplete, saying 404, no error", ch, err)
	}
	for i := range 2 {
		if ch, err := f.Changes(ctx, check("broken")); err == nil || !strings.Contains(err.Error(), "502") {
			t.Errorf("on a 502: Changes = %+v, %v; want an error to retry", ch, err)
		}
		if n := broken.calls.Load(); n != int32(i+1) {
			t.Errorf("a failed answer was kept: %d calls after %d questions", n, i+1)
		}
	}
	for _, name := range []string{"no-token", "unknown"} {
		if ch, err := f.Changes(ctx, check(name)); err != nil || ch.Complete || ch.Reason == "" {
			t.Errorf("source %s: Changes = %+v, %v; want incomplete with a reason", name, ch, err)
		}
	}
}

// TestExplainInputAsksAtOnce: explain (--fetch-changes) finishes the
// deferred check itself, so it decides as dispatch would.
func TestExplainInputAsksAtOnce(t *testing.T) {
	forward := sampleBefore + "..." + sampleAfter
	api := newCompareServer(t, map[string]compareAnswer{
		forward: {200, `{"status":"ahead","files":[{"filename":"docs/only.md","status":"modified"}]}`},
	})
	rules := pathsRules(t, api.URL+"/api/v3", newSecret(t))
	ev := pushSample(t, "push.json", func(m map[string]any) { manyCommits(20)(m); m["before"], m["after"] = sampleBefore, sampleAfter })
	in := ExplainInput(context.Background(), rules, rules.Source("github"), ev, githubHeader("push", "d-1"))
	if in.Changes == nil || !in.Changes.Complete || in.Changes.Deferred != nil || api.calls.Load() != 1 {
		t.Fatalf("Changes = %+v after %d calls, want complete from one call", in.Changes, api.calls.Load())
	}
	d := rules.Explain(in)
	if len(d.Targets) != 0 || len(d.Unmatched) != 1 || !strings.Contains(d.Unmatched[0].Reason, "no changed file matches paths") {
		t.Errorf("Explain = %+v, want web/code unmatched by its paths", d)
	}
}
