//go:build !nonats

package ingest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// commentsRoot grants comment commands on the github source; web runs
// pull requests (triggers pr and lint), preview runs them too, held for
// reviewer's (or chhsia0's) approval.
const commentsRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: GH}
    apiToken: {env: GH_TOKEN}
    apiURL: %API%
    commands:
      retest: [chhsia0, lead, "team:acme/maintainers"]
      okToTest: [chhsia0]
      approve: [reviewer, chhsia0]
      cancel: [chhsia0]
apps:
  - {name: web, manifest: web.yaml, namespaces: [web-ci], sources: [github]}
  - name: preview
    manifest: preview.yaml
    namespaces: [preview]
    sources: [github]
    approval: {approvers: ["source:github/reviewer", "source:github/chhsia0"]}
`

const commentsWeb = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: pr
    match: {types: [dev.switchyard.git.pullrequest]}
    run: {pipelineRef: ci, params: [{name: revision, value: $(extensions.revision)}]}
  - name: lint
    match: {types: [dev.switchyard.git.pullrequest]}
    run: {pipelineRef: lint}
`

const commentsPreview = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: preview
triggers:
  - name: preview
    match: {types: [dev.switchyard.git.pullrequest]}
    run: {pipelineRef: preview}
`

// commentServer is approvalServer's queue behind a GitHub source with
// comment commands, and a GitHub API stand-in serving pull request 3.
type commentServer struct {
	*approvalServer
	secret   []byte
	apiCalls atomic.Int32
	headSHA  string
}

func newCommentServer(t testing.TB) *commentServer {
	t.Helper()
	cs := &commentServer{approvalServer: &approvalServer{audits: newMemStore()}, secret: newSecret(t)}
	apiToken := hex.EncodeToString(newSecret(t))
	var sample struct {
		PullRequest map[string]any `json:"pull_request"`
	}
	if err := json.Unmarshal(readComment(t, "github-pull-request.json"), &sample); err != nil {
		t.Fatal(err)
	}
	sample.PullRequest["number"] = 3
	sample.PullRequest["author_association"] = "CONTRIBUTOR"
	cs.headSHA = sample.PullRequest["head"].(map[string]any)["sha"].(string)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+apiToken && r.URL.Path == "/orgs/acme/teams/maintainers/memberships/teamie" {
			_, _ = w.Write([]byte(`{"state":"active","role":"member"}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+apiToken || r.URL.Path != "/repos/chhsia0/knative-route-demo/pulls/3" {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		cs.apiCalls.Add(1)
		_ = json.NewEncoder(w).Encode(sample.PullRequest)
	}))
	t.Cleanup(api.Close)

	dir := t.TempDir()
	for name, data := range map[string]string{"root.yaml": strings.Replace(commentsRoot, "%API%", api.URL, 1), "web.yaml": commentsWeb, "preview.yaml": commentsPreview} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"GH": string(cs.secret), "GH_TOKEN": apiToken}
	opts := LoadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	rules, err := routing.LoadDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	cs.q, cs.js = newEmbeddedQueue(t)
	audit := func(r policy.Record) { cs.q.Audit(r); cs.audits.Audit(r) }
	cs.srv = NewServer(Config{Rules: routing.NewHolder(rules), Publisher: cs.q, Status: cs.q, Approvals: cs.q, Audit: audit})
	hs := httptest.NewServer(cs.srv)
	t.Cleanup(hs.Close)
	cs.url = hs.URL
	return cs
}

func readComment(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "comments", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// comment is the sample issue_comment with action, comment id, author and
// body replaced.
func comment(t testing.TB, action string, id int, login, body string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(readComment(t, "github-issue-comment.json"), &p); err != nil {
		t.Fatal(err)
	}
	p["action"] = action
	c := p["comment"].(map[string]any)
	c["id"], c["body"] = id, body
	c["user"].(map[string]any)["login"] = login
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deliver posts body as a GitHub delivery of kind, signed with the
// source's secret.
func (cs *commentServer) deliver(t *testing.T, kind, delivery string, body []byte) AcceptedResponse {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {kind}, "X-Github-Delivery": {delivery},
		"X-Hub-Signature-256": {"sha256=" + hexHMAC(cs.secret, body)}}
	code, _, out := (&hookServer{url: cs.url}).send(t, http.MethodPost, "/v1/hooks/github", h, body)
	if code != http.StatusAccepted {
		t.Fatalf("%s %s: %d %s", kind, delivery, code, out)
	}
	return accepted(t, out)
}

// queued is the app/trigger of every work item queued, sorted.
func (cs *commentServer) queued(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, w := range cs.work(t) {
		out = append(out, w.Target.App+"/"+w.Target.Trigger+"@"+w.Event.ID())
	}
	sort.Strings(out)
	return out
}

func TestCommentCommands(t *testing.T) {
	cs := newCommentServer(t)
	// A pull request GitHub does not vouch for fires nothing.
	res := cs.deliver(t, "pull_request", "pr-opened", readComment(t, "github-pull-request.json"))
	if len(res.Targets) != 0 || len(cs.queued(t)) != 0 {
		t.Fatalf("an untrusted pull request fired: %+v", res)
	}

	// /retest by a granted commenter re-runs the head for the pull request triggers.
	res = cs.deliver(t, "issue_comment", "c-1", comment(t, "created", 1001, "chhsia0", "Looks flaky.\r\n/retest\r\n"))
	id := "comment-1001-retest"
	want := []string{"web/lint@" + id, "web/pr@" + id}
	if got := cs.queued(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("/retest queued %v, want %v: %+v %+v", got, want, res, cs.audits.records())
	}
	w := cs.work(t)[0]
	if w.Event.Extensions()["revision"] != cs.headSHA || w.Target.Name != routing.PipelineRunName(w.Target.App, w.Target.Trigger, "github", id) {
		t.Fatalf("/retest work: %+v", w)
	}
	if st, err := cs.q.Status(context.Background(), "github", id); err != nil || len(st.Targets) != 3 || st.Targets[0].App != "preview" || st.Targets[0].State != policy.StateAwaitingApproval {
		t.Fatalf("the gated preview does not wait: %+v %v", st, err)
	}
	// Redelivered, or the same comment with a new delivery id, or edited: nothing twice.
	cs.deliver(t, "issue_comment", "c-1", comment(t, "created", 1001, "chhsia0", "/retest"))
	cs.deliver(t, "issue_comment", "c-1-again", comment(t, "created", 1001, "chhsia0", "/retest"))
	cs.deliver(t, "issue_comment", "c-1-edit", comment(t, "edited", 1001, "chhsia0", "/retest lint"))
	// Not granted: ignored, with an audit record.
	cs.deliver(t, "issue_comment", "c-2", comment(t, "created", 1002, "mallory", "/retest"))
	cs.deliver(t, "issue_comment", "c-3", comment(t, "created", 1003, "lead", "/ok-to-test"))
	if got := cs.queued(t); len(got) != 2 {
		t.Fatalf("redelivered, edited or ungranted commands queued work: %v", got)
	}
	// /retest TRIGGER runs that trigger only; /ok-to-test runs the pull request.
	cs.deliver(t, "issue_comment", "c-4", comment(t, "created", 1004, "lead", "/retest lint"))
	cs.deliver(t, "issue_comment", "c-5", comment(t, "created", 1005, "chhsia0", "/ok-to-test"))
	got := strings.Join(cs.queued(t), " ")
	if !strings.Contains(got, "web/lint@comment-1004-retest-lint") || strings.Contains(got, "web/pr@comment-1004") || !strings.Contains(got, "web/pr@comment-1005-ok-to-test") {
		t.Fatalf("queued %s", got)
	}
	checkCommentAudits(t, cs.audits.records())
	checkApproveComments(t, cs, id)
	checkCancelComments(t, cs)

	// A member of a granted team may; someone else may not.
	cs.deliver(t, "issue_comment", "t-1", comment(t, "created", 3001, "teamie", "/retest pr"))
	cs.deliver(t, "issue_comment", "t-2", comment(t, "created", 3002, "outsider", "/retest pr"))
	got = strings.Join(cs.queued(t), " ")
	if !strings.Contains(got, "web/pr@comment-3001-retest-pr") || strings.Contains(got, "comment-3002") {
		t.Fatalf("team grant: queued %s", got)
	}
}

// cancels records what /cancel asked the cluster side to cancel.
type cancels struct {
	mu    sync.Mutex
	calls []string
}

func (c *cancels) CancelPullRequest(_ context.Context, source, repo, number, trigger string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, strings.Join([]string{source, repo, number, trigger}, " "))
	return 1, nil
}

// checkCancelComments: /cancel [trigger] from a granted commenter reaches
// the canceller once per comment; anyone else's is ignored.
func checkCancelComments(t *testing.T, cs *commentServer) {
	t.Helper()
	c := &cancels{}
	cs.srv.cfg.Cancel = c
	cs.deliver(t, "issue_comment", "x-1", comment(t, "created", 2001, "chhsia0", "/cancel"))
	cs.deliver(t, "issue_comment", "x-1", comment(t, "created", 2001, "chhsia0", "/cancel"))
	cs.deliver(t, "issue_comment", "x-2", comment(t, "created", 2002, "lead", "/cancel"))
	cs.deliver(t, "issue_comment", "x-3", comment(t, "created", 2003, "chhsia0", "/cancel lint"))
	want := "github chhsia0/knative-route-demo 3 |github chhsia0/knative-route-demo 3 lint"
	if got := strings.Join(c.calls, "|"); got != want {
		t.Fatalf("cancels %q, want %q", got, want)
	}
}

func checkCommentAudits(t *testing.T, recs []policy.Record) {
	t.Helper()
	var refused, edited bool
	for _, r := range recs {
		refused = refused || r.Kind == "command" && r.Subject == "mallory" && r.Rule == "commands.retest" && r.Decision == policy.DecisionIgnored
		edited = edited || r.Kind == "command" && r.Subject == "chhsia0" && r.Decision == policy.DecisionIgnored && strings.Contains(r.Reason, "edited")
	}
	if !refused || !edited {
		t.Fatalf("audit: ungranted %v edited %v: %+v", refused, edited, recs)
	}
}

// checkApproveComments: the pull request's author may not approve its
// runs; a granted reviewer named by the gate does, once.
func checkApproveComments(t *testing.T, cs *commentServer, id string) {
	t.Helper()
	before := len(cs.queued(t))
	cs.deliver(t, "issue_comment", "c-6", comment(t, "created", 1006, "chhsia0", "/approve"))
	cs.deliver(t, "issue_comment", "c-7", comment(t, "created", 1007, "lead", "/approve"))
	if n := len(cs.queued(t)); n != before {
		t.Fatalf("an author's or an ungranted approval released work: %d -> %d", before, n)
	}
	cs.deliver(t, "issue_comment", "c-8", comment(t, "created", 1008, "reviewer", "/approve"))
	cs.deliver(t, "issue_comment", "c-9", comment(t, "created", 1009, "reviewer", "/approve"))
	cs.deliver(t, "issue_comment", "c-9", comment(t, "created", 1009, "reviewer", "/approve")) // redelivered
	var previews []string
	for _, q := range cs.queued(t) {
		if strings.HasPrefix(q, "preview/") {
			previews = append(previews, q)
		}
	}
	if len(previews) < 1 || previews[0] != "preview/preview@"+id {
		t.Fatalf("reviewer's /approve queued %v", previews)
	}
	var self, approved, dup bool
	for _, r := range cs.audits.records() {
		dup = dup || r.EventID == "comment-1009-approve" && strings.HasPrefix(r.Reason, "duplicate")
		self = self || r.Subject == "chhsia0" && r.Type == "/approve" && r.Rule == "approval.self"
		approved = approved || r.Subject == "reviewer" && r.Decision == policy.DecisionApproved && r.EventID == id
	}
	if !self || !approved || !dup {
		t.Fatalf("audit: self-approval refused %v, approval %v, redelivery ignored %v", self, approved, dup)
	}
}

// FuzzCommentCommands: whatever a signed comment says, the answer is 202
// or 400, never a 5xx, and only a granted login's command queues work;
// the same comment unsigned is 401 and runs nothing.
func FuzzCommentCommands(f *testing.F) {
	f.Add("created", "chhsia0", "/retest\n/retest lint\n/approve\n/cancel pr")
	f.Add("edited", "chhsia0", "/retest")
	f.Add("created", "mallory", "/ok-to-test")
	f.Add("created", "chhsia0", "/retest "+strings.Repeat("a", 70))
	f.Add("deleted", "", "\x00/retest\r\n")
	cs := newCommentServer(f)
	n := 0
	f.Fuzz(func(t *testing.T, action, login, body string) {
		n++
		before := len(cs.work(t))
		payload := comment(t, action, 500000+n, login, body)
		h := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"issue_comment"}, "X-Github-Delivery": {"fuzz-" + strconv.Itoa(n)}}
		if code, _, out := (&hookServer{url: cs.url}).send(t, http.MethodPost, "/v1/hooks/github", h, payload); code != http.StatusUnauthorized {
			t.Fatalf("unsigned: %d %s", code, out)
		}
		if len(cs.work(t)) != before {
			t.Fatal("an unsigned comment queued work")
		}
		h.Set("X-Hub-Signature-256", "sha256="+hexHMAC(cs.secret, payload))
		code, _, out := (&hookServer{url: cs.url}).send(t, http.MethodPost, "/v1/hooks/github", h, payload)
		switch code {
		case http.StatusAccepted, http.StatusBadRequest:
		default:
			t.Fatalf("status %d: %s", code, out)
		}
		granted := slices.ContainsFunc([]string{"chhsia0", "lead", "reviewer"}, func(g string) bool { return strings.EqualFold(g, login) })
		if len(cs.work(t)) != before && (!granted || action != "created") {
			t.Fatalf("%s's %s comment %q queued work", login, action, body)
		}
	})
}
