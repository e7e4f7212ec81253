//go:build !nonats

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

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

const hostsRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: gitea
    kind: gitea
    secret: {env: GITEA}
    apiToken: {env: GITEA_TOKEN}
    apiURL: %API%
    commands: {retest: [example], approve: [example2]}
  - name: gitlab
    kind: gitlab
    secret: {env: GITLAB}
    commands: {retest: [root]}
apps:
  - {name: web, manifest: web.yaml, namespaces: [web-ci], sources: [gitea, gitlab]}
`

const hostsWeb = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: pr
    match: {types: [dev.switchyard.git.pullrequest]}
    run: {pipelineRef: ci, params: [{name: revision, value: $(extensions.revision)}]}
`

// giteaPull is what the Gitea API stand-in answers for pull request 2
// (the fields of Gitea's PullRequest object the router reads).
const giteaPull = `{"number":2,"merged":false,"head":{"ref":"feature","sha":"4f1b7e3c8c9e0a4b5d6e7f8091a2b3c4d5e6f708","repo":{"full_name":"example/example"}},` +
	`"base":{"ref":"main","repo":{"full_name":"example/example"}}}`

// The same commands from Gitea's issue_comment and GitLab's note samples.
func TestCommentCommandsGiteaAndGitLab(t *testing.T) {
	token := hex.EncodeToString(newSecret(t))
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "token "+token || r.URL.Path != "/repos/example/example/pulls/2" {
			http.Error(w, "{}", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(giteaPull))
	}))
	t.Cleanup(api.Close)
	dir := t.TempDir()
	for name, data := range map[string]string{"root.yaml": strings.Replace(hostsRoot, "%API%", api.URL, 1), "web.yaml": hostsWeb} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	giteaSecret, gitlabSecret := hex.EncodeToString(newSecret(t)), hex.EncodeToString(newSecret(t))
	env := map[string]string{"GITEA": giteaSecret, "GITEA_TOKEN": token, "GITLAB": gitlabSecret}
	opts := LoadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	rules, err := routing.LoadDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	as := &approvalServer{audits: newMemStore()}
	as.q, as.js = newEmbeddedQueue(t)
	as.srv = NewServer(Config{Rules: routing.NewHolder(rules), Publisher: as.q, Status: as.q, Approvals: as.q, Audit: as.audits.Audit})
	hs := httptest.NewServer(as.srv)
	t.Cleanup(hs.Close)

	send := func(source string, h http.Header, body []byte) {
		t.Helper()
		code, _, out := (&hookServer{url: hs.URL}).send(t, http.MethodPost, "/v1/hooks/"+source, h, body)
		if code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", source, code, out)
		}
	}
	gitea := func(body []byte, delivery string) {
		send("gitea", http.Header{"Content-Type": {"application/json"}, "X-Gitea-Event": {"issue_comment"}, "X-Gitea-Delivery": {delivery},
			"X-Gitea-Signature": {hexHMAC([]byte(giteaSecret), body)}}, body)
	}
	gitlab := func(body []byte, delivery string) {
		send("gitlab", http.Header{"Content-Type": {"application/json"}, "X-Gitlab-Event": {"Note Hook"}, "X-Gitlab-Event-Uuid": {delivery},
			"X-Gitlab-Token": {gitlabSecret}}, body)
	}
	giteaComment := withJSON(t, readComment(t, "gitea-issue-comment.json"), func(p map[string]any) {
		p["comment"].(map[string]any)["body"] = "/retest"
	})
	gitea(giteaComment, "g-1")
	gitea(giteaComment, "g-1") // redelivered
	gitlabNote := withJSON(t, readComment(t, "gitlab-note-merge-request.json"), func(p map[string]any) {
		p["object_attributes"].(map[string]any)["note"] = "/retest pr"
	})
	gitlab(gitlabNote, "l-1")
	edited := withJSON(t, gitlabNote, func(p map[string]any) { p["object_attributes"].(map[string]any)["action"] = "update" })
	gitlab(edited, "l-2")
	other := withJSON(t, gitlabNote, func(p map[string]any) {
		p["object_attributes"].(map[string]any)["id"] = 9999
		p["user"].(map[string]any)["username"] = "mallory"
	})
	gitlab(other, "l-3")

	got := map[string]string{}
	for _, w := range as.work(t) {
		got[w.Source+"/"+w.Event.ID()] = w.Event.Extensions()["revision"].(string)
	}
	want := map[string]string{"gitea/comment-6-retest": "4f1b7e3c8c9e0a4b5d6e7f8091a2b3c4d5e6f708",
		"gitlab/comment-1244-retest-pr": "562e173be03b8ff2efb05345d12df18815438a4b"}
	if len(got) != len(want) || got["gitea/comment-6-retest"] != want["gitea/comment-6-retest"] || got["gitlab/comment-1244-retest-pr"] != want["gitlab/comment-1244-retest-pr"] {
		t.Fatalf("queued %v, want %v", got, want)
	}
	var refused bool
	for _, r := range as.audits.records() {
		refused = refused || r.Source == "gitlab" && r.Subject == "mallory" && r.Rule == "commands.retest" && r.Decision == policy.DecisionIgnored
	}
	if !refused {
		t.Fatal("the ungranted note is not in the audit trail")
	}
}

// withJSON decodes body, lets change edit it, and encodes it again.
func withJSON(t *testing.T, body []byte, change func(map[string]any)) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	change(p)
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
