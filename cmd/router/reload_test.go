package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyTree copies the rules directory to a temporary one a test may edit.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// sendTargets posts the sample push and returns the "app/trigger" it fired.
// It signs with the shipped rules' source, which the edited copy shares.
func sendTargets(t *testing.T, url, delivery string) []string {
	t.Helper()
	got, _ := sendAccepted(t, url, delivery)
	return got
}

// sendAccepted is sendTargets, with the 202's rules revision.
func sendAccepted(t *testing.T, url, delivery string) ([]string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"send", "--rules", "../../rules", "--source", "github", "--url", url, "--delivery", delivery}, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("router send exited %d: %s %s", code, out.String(), errOut.String())
	}
	lines := strings.SplitN(out.String(), "\n", 3)
	var resp struct {
		Targets       []struct{ App, Trigger string } `json:"targets"`
		RulesRevision string                          `json:"rulesRevision"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &resp); err != nil {
		t.Fatalf("202 body %q: %v", lines[2], err)
	}
	var got []string
	for _, tg := range resp.Targets {
		got = append(got, tg.App+"/"+tg.Trigger)
	}
	return got, resp.RulesRevision
}

// rulesInfoSeries returns the switchyard_rules_info series /metrics shows.
func rulesInfoSeries(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var series []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "switchyard_rules_info{") {
			series = append(series, line)
		}
	}
	return series
}

// TestServeReloadsChangedRules edits a rule file under a running router: the
// change is picked up without a restart; an invalid edit is refused and the
// last good rules keep routing.
func TestServeReloadsChangedRules(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "reload-test-secret")
	rulesDir := copyTree(t, "../../rules")
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--rules", rulesDir, "--data-dir", t.TempDir(),
			"--listen", "127.0.0.1:0", "--dispatch", "dir", "--drain-delay", "0"}, nil, &bytes.Buffer{}, logs)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("router exited with %d", code)
		}
	}()
	var url string
	waitLog := func(msg string, n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for len(logs.logLines(msg)) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q log record:\n%s", msg, logs.b.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLog("listening", 1)
	url = "http://" + logs.logLines("listening")[0]["addr"].(string)
	waitLog("watching rules", 1)

	before := rulesRevision(t, rulesDir)
	got, rev := sendAccepted(t, url, "reload-1")
	if strings.Join(got, ",") != "web/build" || rev != before {
		t.Fatalf("before the edit the sample fired %v under rules %q, want web/build under %q", got, rev, before)
	}
	if s := rulesInfoSeries(t, url); len(s) != 1 || s[0] != `switchyard_rules_info{revision="`+before+`"} 1` {
		t.Fatalf("switchyard_rules_info before the edit: %q", s)
	}

	web := filepath.Join(rulesDir, "apps", "web.yaml")
	orig, err := os.ReadFile(web)
	if err != nil {
		t.Fatal(err)
	}
	lint := strings.Replace(string(orig), "triggers:\n", "triggers:\n  - name: lint\n    match: {types: [dev.switchyard.git.push], branches: [main]}\n    run: {pipelineRef: lint}\n", 1)
	if err := os.WriteFile(web, []byte(lint), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog("rules reloaded", 1)
	after := rulesRevision(t, rulesDir)
	got, rev = sendAccepted(t, url, "reload-2")
	if strings.Join(got, ",") != "web/lint,web/build" || rev != after || after == before {
		t.Fatalf("after the edit the sample fired %v under rules %q, want web/lint,web/build under a new revision %q (was %q)", got, rev, after, before)
	}
	// Only the revision in force: the old series is gone.
	if s := rulesInfoSeries(t, url); len(s) != 1 || s[0] != `switchyard_rules_info{revision="`+after+`"} 1` {
		t.Fatalf("switchyard_rules_info after the reload: %q", s)
	}

	broken := strings.Replace(lint, "pipelineRef: lint", "pipelineRef: lint, namespace: kube-system", 1)
	if err := os.WriteFile(web, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog("rules reload failed; keeping the last good rules", 1)
	rec := logs.logLines("rules reload failed; keeping the last good rules")[0]
	if !strings.Contains(rec["error"].(string), `namespace "kube-system" exceeds the grant of app "web"`) {
		t.Errorf("reload error = %v", rec["error"])
	}
	if got := sendTargets(t, url, "reload-3"); strings.Join(got, ",") != "web/lint,web/build" {
		t.Fatalf("after an invalid edit the sample fired %v, want the last good rules", got)
	}
}

// TestReloadMissingEnvNeedsRestart: a reload that adds a source whose
// variable is unset says a restart is needed, and the new hook's 404 says
// the last reload failed.
func TestReloadMissingEnvNeedsRestart(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "reload-env-secret")
	rulesDir := copyTree(t, "../../rules")
	r := startRouter(t, t.TempDir(), "--rules", rulesDir)
	defer r.stop(t)
	waitUntil(t, "the rules watch", func() bool { return len(r.logs.logLines("watching rules")) > 0 })

	root := filepath.Join(rulesDir, "root.yaml")
	data, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	added := strings.Replace(string(data), "sources:\n", "sources:\n  - name: gitlab\n    kind: gitlab\n    secret: {env: FH_UNSET_GITLAB_TOKEN}\n", 1)
	if err := os.WriteFile(root, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	const failed = "rules reload failed; keeping the last good rules"
	waitUntil(t, "the failed reload", func() bool { return len(r.logs.logLines(failed)) > 0 })
	msg := r.logs.logLines(failed)[0]["error"].(string)
	if !strings.Contains(msg, "FH_UNSET_GITLAB_TOKEN is not set") || !strings.Contains(msg, "FH_UNSET_GITLAB_TOKEN: a running router reads its environment only at start") ||
		!strings.Contains(msg, "restart it") {
		t.Fatalf("reload error %q does not say a restart is needed", msg)
	}

	resp, err := http.Post(r.url+"/v1/hooks/gitlab", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "the last reload of the rules failed") {
		t.Fatalf("POST to the new hook: %d %s", resp.StatusCode, body)
	}
}
