//go:build !nonats

package ingest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// rerunRoot reports check runs as GitHub App 12, and grants retest to
// octocat only; web builds every push.
const rerunRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: GH}
    report: checks
    githubApp: {appID: 12, installationID: 77, privateKey: {env: APP_KEY}}
    commands: {retest: [octocat]}
apps:
  - {name: web, manifest: web.yaml, namespaces: [web-ci], sources: [github]}
`

const rerunWeb = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    match: {types: [dev.switchyard.git.push]}
    run: {pipelineRef: build, params: [{name: revision, value: $(extensions.revision)}]}
  - name: lint
    match: {types: [dev.switchyard.git.push]}
    run: {pipelineRef: lint}
`

// newRerunServer is a router with a real embedded JetStream queue behind
// the rerunRoot rules.
func newRerunServer(t *testing.T) *commentServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cs := &commentServer{approvalServer: &approvalServer{audits: newMemStore()}, secret: newSecret(t)}
	dir := t.TempDir()
	for name, data := range map[string]string{"root.yaml": rerunRoot, "web.yaml": rerunWeb} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"GH": string(cs.secret), "APP_KEY": string(pemKey)}
	opts := LoadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	rules, err := routing.LoadDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	cs.q, cs.js = newEmbeddedQueue(t)
	audit := func(r policy.Record) { cs.q.Audit(r); cs.audits.Audit(r) }
	cs.srv = NewServer(Config{Rules: routing.NewHolder(rules), Publisher: cs.q, Status: cs.q, Events: cs.q, Audit: audit})
	hs := httptest.NewServer(cs.srv)
	t.Cleanup(hs.Close)
	cs.url = hs.URL
	return cs
}

// checkRunClick is GitHub's check_run sample as a click on the Re-run
// button of the check run with externalID, by login.
func checkRunClick(t *testing.T, externalID, headSHA, repo, login string, appID int) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(readComment(t, "github-check-run.json"), &p); err != nil {
		t.Fatal(err)
	}
	p["action"] = "requested_action"
	p["requested_action"] = map[string]any{"identifier": "rerun"}
	cr := p["check_run"].(map[string]any)
	cr["external_id"], cr["head_sha"], cr["name"] = externalID, headSHA, "switchyard/web/build"
	cr["app"].(map[string]any)["id"] = appID
	p["repository"].(map[string]any)["full_name"] = repo
	p["sender"].(map[string]any)["login"] = login
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCheckRunRerun: a granted login's click on a Switchyard check run's
// Re-run queues that one target again, as a new event named after the
// click's delivery, with the original sender's identity; a redelivered
// click, an ungranted login and another App's check run queue nothing.
func TestCheckRunRerun(t *testing.T) {
	cs := newRerunServer(t)
	cs.deliver(t, "push", "push-1", readSample(t, "github", "push.json"))
	if got := cs.queued(t); len(got) != 2 {
		t.Fatalf("push queued %v", got)
	}
	orig := cs.work(t)[0]
	sha, _ := orig.Event.Extensions()["revision"].(string)
	const ext = "switchyard:v1:github:web:build:push-1"

	cs.deliver(t, "check_run", "click-1", checkRunClick(t, ext, sha, "acme/web", "OctoCat", 12))
	want := []string{"web/build@push-1", "web/build@rerun-click-1", "web/lint@push-1"}
	got := cs.queued(t)
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("after the click: %v, want %v (audit %+v)", got, want, cs.audits.records())
	}
	var rerun routing.Target
	for _, w := range cs.work(t) {
		if w.Event.ID() == "rerun-click-1" {
			rerun = w.Target
			if w.Event.Extensions()["identity"] != orig.Event.Extensions()["identity"] || w.Event.Extensions()["revision"] != sha {
				t.Errorf("re-run event %+v, want the original's identity and revision", w.Event)
			}
		}
	}
	if rerun.Name != routing.RunName("web", "build", "github", "rerun-click-1", 0) || rerun.Name == orig.Target.Name {
		t.Errorf("re-run name %q (original %q)", rerun.Name, orig.Target.Name)
	}

	// The same delivery again, an ungranted login, another App's check run,
	// a check run whose commit is not its event's: nothing more.
	cs.deliver(t, "check_run", "click-1", checkRunClick(t, ext, sha, "acme/web", "octocat", 12))
	cs.deliver(t, "check_run", "click-2", checkRunClick(t, ext, sha, "acme/web", "mallory", 12))
	cs.deliver(t, "check_run", "click-3", checkRunClick(t, ext, sha, "acme/web", "octocat", 99))
	cs.deliver(t, "check_run", "click-4", checkRunClick(t, ext, "0000000000000000000000000000000000000000", "acme/web", "octocat", 12))
	cs.deliver(t, "check_run", "click-5", checkRunClick(t, "switchyard:v1:github:web:build:no-such-event", sha, "acme/web", "octocat", 12))
	if got := cs.queued(t); len(got) != 3 {
		t.Fatalf("queued %v, want the three of before", got)
	}
	why := map[string]policy.Record{}
	for _, r := range cs.audits.records() {
		if r.Kind == "command" {
			why[r.EventID+" "+r.Subject] = r
		}
	}
	var keys []string
	for k := range why {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if r := why["rerun-click-1 OctoCat"]; r.Decision != policy.DecisionAccepted || r.Targets != 1 {
		t.Errorf("click audit %+v (all %v)", r, keys)
	}
	if r := why["rerun-click-2 mallory"]; r.Decision != policy.DecisionIgnored || r.Rule != "commands.retest" {
		t.Errorf("ungranted click audit %+v (all %v)", r, keys)
	}
	for _, k := range []string{"rerun-click-3 octocat", "rerun-click-4 octocat", "rerun-click-5 octocat"} {
		if r, ok := why[k]; !ok || r.Decision != policy.DecisionIgnored {
			t.Errorf("%s: audit %+v (all %v)", k, r, keys)
		}
	}
}

// TestParseCheckRunExternalID: ids with colons survive; anything else is
// not a Switchyard check run.
func TestParseCheckRunExternalID(t *testing.T) {
	src, app, trig, id, ok := ParseCheckRunExternalID("switchyard:v1:github:web:build:urn:x:1")
	if !ok || src != "github" || app != "web" || trig != "build" || id != "urn:x:1" {
		t.Errorf("got %q %q %q %q %v", src, app, trig, id, ok)
	}
	for _, s := range []string{"", "0b5c6a1e-1111", "switchyard:v1:github:web:build:", "switchyard:v2:a:b:c:d"} {
		if _, _, _, _, ok := ParseCheckRunExternalID(s); ok {
			t.Errorf("%q parsed", s)
		}
	}
}
