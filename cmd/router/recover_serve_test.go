package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestServeRecoversAfterStart: a router whose github source has a recover
// block redelivers, once started, exactly the failed deliveries it never
// stored; the one it stored through ingest earlier is left alone.
func TestServeRecoversAfterStart(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "recover-serve-secret")
	t.Setenv("GITHUB_API_TOKEN", recoverTok)
	dataDir := t.TempDir()
	first := startRouter(t, dataDir)
	sendSample(t, first.url, "guid-c") // stored through the real ingest path
	first.stop(t)

	gh := newFakeGitHub(t, recoverTok, map[string][]hookDelivery{repoHook: failedDeliveries(time.Now())})
	rules := recoverRules(t, gh.srv.URL, "    recover:\n      hooks: [{repository: acme/web, hookID: 123}]\n")
	r := startRouter(t, dataDir, "--rules", rules)
	waitUntil(t, "the recovery pass", func() bool { return len(r.logs.logLines("deliveries recovered")) > 0 })
	want := []string{repoHook + " 101", repoHook + " 104"}
	if got := gh.redeliveries(); !slices.Equal(got, want) {
		t.Fatalf("redelivered %v, want %v", got, want)
	}
	line := r.logs.logLines("deliveries recovered")[0]
	if line["source"] != "github" || line["redelivered"] != float64(2) || line["already_stored"] != float64(1) {
		t.Fatalf("log line %v", line)
	}
	if n := len(r.logs.logLines("delivery redelivered")); n != 2 {
		t.Fatalf("%d delivery redelivered lines, want 2", n)
	}
	metrics := httpGet(t, r.url+"/metrics")
	if !strings.Contains(metrics, `switchyard_recovered_deliveries_total{result="redelivered",source="github"} 2`) {
		t.Errorf("metrics lack the redelivered count:\n%s", grepLines(metrics, "switchyard_recovered"))
	}
	r.stop(t)
	if strings.Contains(r.logs.String(), recoverTok) {
		t.Fatal("the API token is in the log")
	}
}

// TestRecoverLoopRunsEveryPeriod: serve's loop runs a source's recovery
// at start, then every recover.every (15m by default), on a moved clock.
func TestRecoverLoopRunsEveryPeriod(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "recover-loop-secret")
	t.Setenv("GITHUB_API_TOKEN", recoverTok)
	gh := newFakeGitHub(t, recoverTok, map[string][]hookDelivery{repoHook: failedDeliveries(time.Now())})
	gh.pageSize = 100
	_, q := openQueueWithStored(t, "guid-c")
	rules, err := loadRules(recoverRules(t, gh.srv.URL, "    recover:\n      hooks: [{repository: acme/web, hookID: 123}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var offset time.Duration
	type pass struct {
		at   time.Duration
		runs int
	}
	var seen []pass
	l := &recoverLoop{
		now: func() time.Time { return start.Add(offset) },
		wait: func(_ context.Context, d time.Duration) bool {
			seen = append(seen, pass{offset, len(gh.lists())})
			offset += d
			return offset <= 30*time.Minute
		},
		reg: prometheus.NewRegistry(),
	}
	l.run(context.Background(), func() *routing.Rules { return rules }, q, slog.New(slog.DiscardHandler))
	if len(seen) == 0 || seen[len(seen)-1].runs != 3 {
		t.Fatalf("passes %v: want three by 30m", seen)
	}
	for _, p := range seen {
		if want := 1 + int(p.at/(15*time.Minute)); p.runs != want {
			t.Fatalf("at %s: %d passes, want %d (passes: %v)", p.at, p.runs, want, seen)
		}
	}
	if got := len(gh.redeliveries()); got != 6 {
		t.Fatalf("%d redeliveries over three passes, want 6 (the stand-in never receives them)", got)
	}
}

// TestServeReportsDisabledGitLabHook: a gitlab source's recover block has
// serve read the project hook; a hook GitLab disabled is logged, counted
// (switchyard_hook_disabled 1) and noted on /readyz, which stays ready.
func TestServeReportsDisabledGitLabHook(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "gitlab-recover-secret")
	t.Setenv("GITLAB_WEBHOOK_SECRET", "gitlab-hook-secret")
	const token = "glpat-recoverTestToken"
	t.Setenv("GITLAB_API_TOKEN", token)
	var reads atomic.Int32
	gl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("PRIVATE-TOKEN") != token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.EscapedPath() != "/api/v4/projects/acme%2Fweb/hooks/9" {
			http.NotFound(w, r)
			return
		}
		reads.Add(1)
		until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		fmt.Fprintf(w, `{"id":9,"url":"https://router.example.com/v1/hooks/gitlab","alert_status":"temporarily_disabled","disabled_until":%q}`, until)
	}))
	t.Cleanup(gl.Close)
	r := startRouter(t, t.TempDir(), "--rules", gitlabRecoverRules(t, gl.URL))
	waitUntil(t, "the disabled hook's report", func() bool {
		return len(r.logs.logLines("gitlab disabled the hook after repeated failures: re-enable it in the project's webhook settings; events sent meanwhile are lost (replay them with a manual push or GitLab's resend of recent events)")) > 0
	})
	var ready map[string]string
	if err := json.Unmarshal([]byte(httpGet(t, r.url+"/readyz")), &ready); err != nil || ready["status"] != "ready" || !strings.Contains(ready["hooks"], "source gitlab") {
		t.Fatalf("/readyz %v (%v): want ready with a hooks note naming source gitlab", ready, err)
	}
	if m := httpGet(t, r.url+"/metrics"); !strings.Contains(m, `switchyard_hook_disabled{source="gitlab"} 1`) {
		t.Errorf("metrics:\n%s", grepLines(m, "switchyard_hook_disabled"))
	}
	r.stop(t)
	if reads.Load() == 0 || strings.Contains(r.logs.String(), token) {
		t.Fatalf("hook reads %d; token in log: %v", reads.Load(), strings.Contains(r.logs.String(), token))
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestRecoverLoopRefusedTokenNotLogged: a 401 from the host is logged as
// a failed recovery with the reason, and the token appears nowhere.
func TestRecoverLoopRefusedTokenNotLogged(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "recover-401-secret")
	t.Setenv("GITHUB_API_TOKEN", recoverTok)
	gh := newFakeGitHub(t, "the-right-token", map[string][]hookDelivery{repoHook: failedDeliveries(time.Now())})
	_, q := openQueueWithStored(t)
	rules, err := loadRules(recoverRules(t, gh.srv.URL, "    recover:\n      hooks: [{repository: acme/web, hookID: 123}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	l := &recoverLoop{wait: func(context.Context, time.Duration) bool { return false }, reg: prometheus.NewRegistry()}
	l.run(context.Background(), func() *routing.Rules { return rules }, q, slog.New(slog.NewJSONHandler(logs, nil)))
	failed := logs.logLines("recovery failed")
	if len(failed) != 1 || !strings.Contains(failed[0]["error"].(string), "401 Bad credentials") {
		t.Fatalf("recovery failed lines %v", failed)
	}
	if strings.Contains(logs.String(), recoverTok) || len(gh.redeliveries()) != 0 {
		t.Fatalf("token logged or something redelivered: %s", logs.String())
	}
}

// gitlabRecoverRules copies the shipped rules and adds a gitlab source
// whose recover block names project acme/web's hook 9 at apiURL.
func gitlabRecoverRules(t *testing.T, apiURL string) string {
	t.Helper()
	rules := copyTree(t, "../../rules")
	root := filepath.Join(rules, "root.yaml")
	data, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	source := "sources:\n  - name: gitlab\n    kind: gitlab\n    secret: {env: GITLAB_WEBHOOK_SECRET}\n" +
		"    apiToken: {env: GITLAB_API_TOKEN}\n    apiURL: " + apiURL + "/api/v4\n" +
		"    recover:\n      hooks: [{repository: acme/web, hookID: 9}]\n"
	if err := os.WriteFile(root, []byte(strings.Replace(string(data), "sources:\n", source, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestRecoverLoopFollowsGitLabHook: the disabled note follows the hook's
// state pass by pass; a failed check leaves the last known state.
func TestRecoverLoopFollowsGitLabHook(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "gitlab-loop-secret")
	t.Setenv("GITLAB_WEBHOOK_SECRET", "gitlab-loop-hook-secret")
	t.Setenv("GITLAB_API_TOKEN", "glpat-loop")
	answers := []string{"disabled", "error", "executable"}
	var pass atomic.Int32
	gl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch a := answers[min(int(pass.Load()), len(answers)-1)]; a {
		case "error":
			w.WriteHeader(http.StatusBadGateway)
		default:
			fmt.Fprintf(w, `{"id":9,"alert_status":%q}`, a)
		}
	}))
	t.Cleanup(gl.Close)
	rules, err := loadRules(gitlabRecoverRules(t, gl.URL))
	if err != nil {
		t.Fatal(err)
	}
	_, q := openQueueWithStored(t)
	start, offset := time.Now(), time.Duration(0)
	var noted []bool
	l := &recoverLoop{now: func() time.Time { return start.Add(offset) }, reg: prometheus.NewRegistry()}
	l.wait = func(_ context.Context, d time.Duration) bool {
		if d == 0 || offset%(15*time.Minute) == 0 {
			noted = append(noted, l.readyDetail()["hooks"] != "")
			pass.Add(1)
		}
		offset += d
		return offset < 45*time.Minute
	}
	l.run(context.Background(), func() *routing.Rules { return rules }, q, slog.New(slog.DiscardHandler))
	if want := []bool{true, true, false}; !slices.Equal(noted, want) {
		t.Fatalf("disabled note after each pass %v, want %v", noted, want)
	}
}
