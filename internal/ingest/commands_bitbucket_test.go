//go:build !nonats

package ingest

import (
	"encoding/hex"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// bitbucketRoot grants commands on Bitbucket Cloud by account_id (with
// the colon Atlassian account ids have) and on Data Center by user slug.
const bitbucketRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: bitbucket
    kind: bitbucket
    secret: {env: BB}
    commands: {retest: ["557058:maint"], okToTest: ["557058:maint"]}
  - name: bitbucket-dc
    kind: bitbucket-server
    secret: {env: BBDC}
    commands: {retest: [gopher], approve: [reviewer, gopher]}
apps:
  - {name: web, manifest: web.yaml, namespaces: [web-ci], sources: [bitbucket, bitbucket-dc]}
  - name: preview
    manifest: preview.yaml
    namespaces: [preview]
    sources: [bitbucket-dc]
    approval: {approvers: ["source:bitbucket-dc/reviewer", "source:bitbucket-dc/gopher"]}
`

// TestCommentCommandsBitbucket: the commands from Bitbucket Cloud's
// pullrequest:comment_created and Data Center's pr:comment:added samples,
// signed as the hosts sign them: a fork's pull request waits for
// /ok-to-test, /retest re-runs the pull request's head, an edit or a
// redelivery runs nothing again, an ungranted commenter is audited.
func TestCommentCommandsBitbucket(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"root.yaml": bitbucketRoot, "web.yaml": hostsWeb, "preview.yaml": commentsPreview} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cloudSecret, dcSecret := hex.EncodeToString(newSecret(t)), hex.EncodeToString(newSecret(t))
	opts := LoadOptions()
	opts.ResolveSecrets = true
	env := map[string]string{"BB": cloudSecret, "BBDC": dcSecret}
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
	send := func(source, secret, key, idHeader, delivery string, body []byte) AcceptedResponse {
		t.Helper()
		h := http.Header{"Content-Type": {"application/json"}, "X-Event-Key": {key}, idHeader: {delivery},
			"X-Hub-Signature": {"sha256=" + hexHMAC([]byte(secret), body)}}
		code, _, out := (&hookServer{url: hs.URL}).send(t, http.MethodPost, "/v1/hooks/"+source, h, body)
		if code != http.StatusAccepted {
			t.Fatalf("%s %s: %d %s", source, key, code, out)
		}
		return accepted(t, out)
	}
	cloud := func(key, delivery string, body []byte) AcceptedResponse {
		return send("bitbucket", cloudSecret, key, "X-Request-UUID", delivery, body)
	}
	dc := func(key, delivery string, body []byte) AcceptedResponse {
		return send("bitbucket-dc", dcSecret, key, "X-Request-Id", delivery, body)
	}

	// A pull request from a fork fires nothing until /ok-to-test.
	fork := withJSON(t, readSample(t, "bitbucket", "pull-request-created.json"), func(p map[string]any) {
		src := p["pullrequest"].(map[string]any)["source"].(map[string]any)
		src["repository"].(map[string]any)["full_name"] = "mallory/repo_name"
	})
	if res := cloud("pullrequest:created", "pr-1", fork); len(res.Targets) != 0 {
		t.Fatalf("a fork's pull request fired: %+v", res)
	}
	cloudComment := func(id int, account, body string) []byte {
		return withJSON(t, readComment(t, "bitbucket-pull-request-comment-created.json"), func(p map[string]any) {
			c := p["comment"].(map[string]any)
			c["id"], c["content"].(map[string]any)["raw"] = id, body
			p["actor"].(map[string]any)["account_id"] = account
		})
	}
	cloud("pullrequest:comment_created", "c-1", cloudComment(17, "557058:maint", "Checked the diff.\n/ok-to-test\n"))
	cloud("pullrequest:comment_updated", "c-2", cloudComment(18, "557058:maint", "/retest"))       // an edit
	cloud("pullrequest:comment_created", "c-3", cloudComment(19, "557058:mallory", "/retest"))     // not granted
	cloud("pullrequest:comment_created", "c-1", cloudComment(17, "557058:maint", "/ok-to-test\n")) // redelivered
	dcComment := func(id int, slug, text string) []byte {
		return withJSON(t, readComment(t, "bitbucket-server-pr-comment-added.json"), func(p map[string]any) {
			c := p["comment"].(map[string]any)
			c["id"], c["text"] = id, text
			c["author"].(map[string]any)["slug"] = slug
		})
	}
	// /retest runs web/pr at once and holds preview for an approver.
	dc("pr:comment:added", "d-1", dcComment(167, "gopher", "/retest"))
	dc("pr:comment:added", "d-1", dcComment(167, "gopher", "/retest"))
	// The pull request's author never approves; another approver does.
	dc("pr:comment:added", "d-2", dcComment(168, "gopher", "/approve"))
	if n := len(as.work(t)); n != 2 {
		t.Fatalf("%d work items after the author's /approve, want 2", n)
	}
	dc("pr:comment:added", "d-3", dcComment(169, "reviewer", "/approve"))

	got := map[string]string{}
	for _, w := range as.work(t) {
		got[w.Source+"/"+w.Event.ID()+"/"+w.Target.App+"/"+w.Target.Trigger], _ = w.Event.Extensions()["revision"].(string)
	}
	want := map[string]string{
		"bitbucket/comment-17-ok-to-test/web/pr":          "d3022fc0ca3d",
		"bitbucket-dc/comment-167-retest/web/pr":          "50a8ee1fae3abf75738a85f9039b4b2de4947174",
		"bitbucket-dc/comment-167-retest/preview/preview": "50a8ee1fae3abf75738a85f9039b4b2de4947174",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("queued %v, want %v (audit %+v)", got, want, as.audits.records())
	}
	var refused, self bool
	for _, r := range as.audits.records() {
		refused = refused || r.Source == "bitbucket" && r.Subject == "557058:mallory" && r.Rule == "commands.retest" && r.Decision == policy.DecisionIgnored
		self = self || r.Source == "bitbucket-dc" && r.Subject == "gopher" && r.Rule == "approval.self"
	}
	if !refused || !self {
		t.Fatalf("audit trail lacks the ungranted comment (%v) or the author's own approval (%v): %+v", refused, self, as.audits.records())
	}
}
