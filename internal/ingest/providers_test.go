package ingest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Table tests shared by the providers that authenticate with a secret
// (signature, token header or path token): each sample's normalization,
// Verify against signed, unsigned, wrong and tampered requests, and the
// answers through HTTP. Every provider also has its own fuzz test below.

// sampleCase is what one provider sample must normalize to.
type sampleCase struct {
	kind, sample string
	n            int // events; 1 when zero
	wantType     string
	wantExt      map[string]string
}

var sampleCases = []sampleCase{
	{kind: "gitlab", sample: "push", wantType: TypeGitPush, wantExt: map[string]string{
		"repository": "mike/diaspora", "branch": "master", "ref": "refs/heads/master", "actor": "John Smith",
		"revision": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "provider": "gitlab"}},
	{kind: "gitlab", sample: "tag", wantType: TypeGitTag, wantExt: map[string]string{"tag": "v1.0.0", "revision": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"}},
	{kind: "gitlab", sample: "merge-request", wantType: TypeGitPullRequest, wantExt: map[string]string{
		"action": "open", "branch": "master", "headbranch": "ms-viewport", "pullrequest": "1"}},
	{kind: "gitlab", sample: "release", wantType: TypeGitRelease, wantExt: map[string]string{"action": "create", "tag": "v1.1", "ref": "refs/tags/v1.1"}},
	{kind: "gitea", sample: "push", wantType: TypeGitPush, wantExt: map[string]string{
		"repository": "example/example", "branch": "master", "revision": "67b56589a45103f891bdee7c0546e5d40bc02001", "provider": "gitea"}},
	{kind: "gitea", sample: "create", wantType: TypeGitPush, wantExt: map[string]string{"branch": "master", "ref": "refs/heads/master"}},
	{kind: "gitea", sample: "delete", wantType: TypeGitBranchDeleted, wantExt: map[string]string{"branch": "example3"}},
	{kind: "gitea", sample: "pull-request", wantType: TypeGitPullRequest, wantExt: map[string]string{"action": "opened", "pullrequest": "2", "branch": "master"}},
	{kind: "gitea", sample: "release", wantType: TypeGitRelease, wantExt: map[string]string{"action": "published"}},
	{kind: "forgejo", sample: "push", wantType: TypeGitPush, wantExt: map[string]string{"provider": "forgejo", "branch": "master"}},
	{kind: "forgejo", sample: "delete", wantType: TypeGitBranchDeleted},
	{kind: "forgejo", sample: "pull-request", wantType: TypeGitPullRequest},
	{kind: "forgejo", sample: "create", wantType: TypeGitPush},
	{kind: "forgejo", sample: "release", wantType: TypeGitRelease},
	{kind: "bitbucket", sample: "repo-push", wantType: TypeGitPush, wantExt: map[string]string{
		"repository": "team_name/repo_name", "branch": "name-of-branch", "revision": "709d658dc5b6d6afcd46049c2f332ee3f515a67d", "provider": "bitbucket"}},
	{kind: "bitbucket", sample: "repo-push-multi", n: 3, wantType: TypeGitPush},
	{kind: "bitbucket", sample: "pull-request-created", wantType: TypeGitPullRequest, wantExt: map[string]string{
		"action": "created", "branch": "master", "headbranch": "branch2", "revision": "d3022fc0ca3d", "pullrequest": "1"}},
	{kind: "bitbucket", sample: "pull-request-updated", wantType: TypeGitPullRequest, wantExt: map[string]string{"action": "updated"}},
	{kind: "bitbucket", sample: "pull-request-merged", wantType: TypeGitPullRequest, wantExt: map[string]string{"action": "merged"}},
	{kind: "bitbucket", sample: "pull-request-declined", wantType: TypeGitPullRequest, wantExt: map[string]string{"action": "declined"}},
	{kind: "bitbucket-server", sample: "repo-refs-changed", wantType: TypeGitBranchDeleted, wantExt: map[string]string{
		"repository": "~gopher/webhook-test", "branch": "feature/wip", "revision": "32a0b8a740c2963c6f56bd8baf3dc05683d299e0"}},
	{kind: "bitbucket-server", sample: "repo-refs-changed-multi", n: 3, wantType: TypeGitPush, wantExt: map[string]string{"branch": "master"}},
	{kind: "bitbucket-server", sample: "pr-opened", wantType: TypeGitPullRequest, wantExt: map[string]string{
		"action": "opened", "pullrequest": "5", "branch": "master", "headbranch": "feature/wip", "revision": "32a0b8a740c2963c6f56bd8baf3dc05683d299e0"}},
	{kind: "bitbucket-server", sample: "pr-merged", wantType: TypeGitPullRequest, wantExt: map[string]string{"action": "merged"}},
	{kind: "bitbucket-server", sample: "pr-declined", wantType: TypeGitPullRequest, wantExt: map[string]string{"action": "declined"}},
	{kind: "bitbucket-server", sample: "pr-modified", wantType: TypeGitPullRequest, wantExt: map[string]string{"action": "modified"}},
	{kind: "dockerhub", sample: "push", wantType: TypeImagePush, wantExt: map[string]string{
		"repository": "docker.io/svendowideit/testhook", "tag": "latest", "actor": "trustedbuilder", "provider": "dockerhub"}},
	{kind: "quay", sample: "push", n: 2, wantType: TypeImagePush, wantExt: map[string]string{
		"repository": "quay.io/mynamespace/repository", "tag": "latest"}},
	{kind: "harbor", sample: "push-artifact", wantType: TypeImagePush, wantExt: map[string]string{
		"repository": "hub.harbor.com/test-webhook/debian", "tag": "latest", "actor": "admin",
		"digest": "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"}},
	{kind: "harbor", sample: "delete-artifact", wantType: TypeImageDelete, wantExt: map[string]string{"repository": "hub.harbor.com/test-webhook/debian"}},
	{kind: "harbor", sample: "cloudevents-push", wantType: TypeImagePush, wantExt: map[string]string{
		"repository": "localhost/library/busybox", "tag": "latest", "actor": "robot$library+scanner"}},
	{kind: "nexus", sample: "component-docker", wantType: TypeImagePush, wantExt: map[string]string{
		"repository": "docker-hosted/team/app", "tag": "v1.2.0", "actor": "admin", "action": "created"}},
	{kind: "nexus", sample: "component-npm", wantType: "com.sonatype.nexus.repository.component.created", wantExt: map[string]string{"repository": "npm-proxy"}},
	{kind: "artifactory", sample: "docker-pushed", wantType: TypeImagePush, wantExt: map[string]string{
		"repository": "acme.jfrog.io/docker-local/team/app", "tag": "v1.2.0", "actor": "ci-bot",
		"digest": "sha256:35c4a2c15539c6c1e4e5fa4e554dac323ad0107d8eb5c582d6ff386b383b7dce"}},
	{kind: "artifactory", sample: "artifact-deployed", wantType: "com.jfrog.artifactory.artifact.deployed", wantExt: map[string]string{
		"repository": "libs-release-local/com/acme/app/1.2.0/app-1.2.0.jar"}},
	{kind: "generic-hmac", sample: "deploy", wantType: "com.acme.deploy.finished", wantExt: map[string]string{
		"repository": "acme/web", "branch": "main", "actor": "release-script", "provider": "generic-hmac"}},
	{kind: "distribution", sample: "notification", n: 2, wantType: TypeImagePush, wantExt: map[string]string{
		"repository": "192.168.100.227:5000/hello-world", "tag": "latest", "actor": "ci-bot",
		"digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"}},
}

// sampleRequest reads a sample and the headers its provider sends with it.
func sampleRequest(t testing.TB, kind, sample string) *Request {
	t.Helper()
	body := readSample(t, kind, sample+".json")
	f, err := os.Open(filepath.Join(sampleDir, kind, sample+".headers"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := http.Header{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok {
			h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		}
	}
	return &Request{Header: h, Body: body}
}

func lookupProvider(t testing.TB, kind string) Provider {
	t.Helper()
	p, ok := Lookup(kind)
	if !ok {
		t.Fatalf("no provider %s", kind)
	}
	return p
}

func TestProviderSamples(t *testing.T) {
	for _, tc := range sampleCases {
		t.Run(tc.kind+"/"+tc.sample, func(t *testing.T) {
			req := sampleRequest(t, tc.kind, tc.sample)
			res, err := lookupProvider(t, tc.kind).Normalize(req)
			if err != nil {
				t.Fatal(err)
			}
			n := max(tc.n, 1)
			if len(res.Events) != n {
				t.Fatalf("%d events, want %d", len(res.Events), n)
			}
			ids := map[string]bool{}
			for _, ev := range res.Events {
				if err := ev.Validate(); err != nil {
					t.Fatalf("not a valid CloudEvent: %v", err)
				}
				if ids[ev.ID()] {
					t.Fatalf("two events share id %q", ev.ID())
				}
				ids[ev.ID()] = true
				if !bytes.Equal(ev.Data(), req.Body) {
					t.Error("data must be the original payload, unchanged")
				}
			}
			ev := res.Events[0]
			if ev.Type() != tc.wantType {
				t.Errorf("type %q, want %q", ev.Type(), tc.wantType)
			}
			for k, v := range tc.wantExt {
				if got := ev.Extensions()[k]; got != v {
					t.Errorf("extension %s = %v, want %q", k, got, v)
				}
			}
			checkGolden(t, tc.kind+"-"+tc.sample, res.Events)
		})
	}
}

// signedKinds are the providers Verify checks a secret for, with a sample
// each; hmac says the credential covers the body (a tampered body fails).
var signedKinds = []struct {
	kind, sample string
	hmac         bool
}{
	{"gitlab", "push", false},
	{"gitea", "push", true},
	{"forgejo", "push", true},
	{"bitbucket", "repo-push-multi", true},
	{"bitbucket-server", "repo-refs-changed", true},
	{"dockerhub", "push", false},
	{"quay", "push", false},
	{"harbor", "push-artifact", false},
	{"distribution", "notification", false},
	{"nexus", "component-docker", true},
	{"artifactory", "docker-pushed", false},
	{"generic-hmac", "deploy", true},
}

func TestProviderVerify(t *testing.T) {
	for _, k := range signedKinds {
		t.Run(k.kind, func(t *testing.T) {
			p := lookupProvider(t, k.kind)
			signer, ok := p.(Signer)
			if !ok {
				t.Fatal("provider cannot sign a request")
			}
			secret := newSecret(t)
			src := &routing.Source{Name: "s", Kind: k.kind, Secret: secret}
			signed := func(key []byte) *Request {
				r := sampleRequest(t, k.kind, k.sample)
				signer.Sign(r, "", "d-1", key)
				return r
			}
			if err := p.Verify(signed(secret), src); err != nil {
				t.Fatalf("signed: %v", err)
			}
			unsigned := sampleRequest(t, k.kind, k.sample)
			for name, r := range map[string]*Request{
				"unsigned":     unsigned,
				"wrong secret": signed([]byte("guess")),
			} {
				if err := p.Verify(r, src); !errors.Is(err, ErrUnauthorized) {
					t.Errorf("%s: Verify = %v, want ErrUnauthorized", name, err)
				}
			}
			if err := p.Verify(signed(secret), &routing.Source{Name: "s", Kind: k.kind}); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("no secret configured: Verify = %v, want ErrUnauthorized", err)
			}
			if k.hmac {
				r := signed(secret)
				r.Body = append([]byte(" "), r.Body...)
				if err := p.Verify(r, src); !errors.Is(err, ErrUnauthorized) {
					t.Errorf("tampered body: Verify = %v, want ErrUnauthorized", err)
				}
			}
		})
	}
}

func TestProviderHTTP(t *testing.T) {
	for _, k := range signedKinds {
		t.Run(k.kind, func(t *testing.T) {
			secret := newSecret(t)
			h := newHookServer(t, `  - name: hook
    kind: `+k.kind+`
    secret: {env: SECRET}
  - name: ungranted
    kind: `+k.kind+`
    secret: {env: SECRET}
`, map[string]string{"SECRET": string(secret)})
			signer := lookupProvider(t, k.kind).(Signer)
			var want sampleCase
			for _, tc := range sampleCases {
				if tc.kind == k.kind && tc.sample == k.sample {
					want = tc
				}
			}
			send := func(path string, r *Request, method string) (int, []byte) {
				if r.PathToken != "" {
					path += "/" + r.PathToken
				}
				status, _, body := h.send(t, method, path, r.Header, r.Body)
				return status, body
			}
			r := sampleRequest(t, k.kind, k.sample)
			signer.Sign(r, "", "d-http-1", secret)
			status, body := send("/v1/hooks/hook", r, http.MethodPost)
			if status != http.StatusAccepted {
				t.Fatalf("signed: %d %s", status, body)
			}
			if a := accepted(t, body); a.Type != want.wantType || len(a.Targets) != 1 || a.Targets[0].App != "all" {
				t.Fatalf("202 body %s, want type %s and the catch-all target", body, want.wantType)
			}
			if status, body := send("/v1/hooks/ungranted", r, http.MethodPost); status != http.StatusAccepted || len(accepted(t, body).Targets) != 0 {
				t.Fatalf("ungranted source: %d %s, want 202 with no targets", status, body)
			}
			if status, _ := send("/v1/hooks/hook", sampleRequest(t, k.kind, k.sample), http.MethodPost); status != http.StatusUnauthorized {
				t.Errorf("unsigned: %d, want 401", status)
			}
			wrong := sampleRequest(t, k.kind, k.sample)
			signer.Sign(wrong, "", "d-http-2", []byte("guess"))
			if status, _ := send("/v1/hooks/hook", wrong, http.MethodPost); status != http.StatusUnauthorized {
				t.Errorf("wrong secret: %d, want 401", status)
			}
			if status, _ := send("/v1/hooks/hook", &Request{Header: http.Header{}}, http.MethodGet); status != http.StatusMethodNotAllowed {
				t.Errorf("GET: %d, want 405", status)
			}
			plain := sampleRequest(t, k.kind, k.sample)
			signer.Sign(plain, "", "d-http-3", secret)
			plain.Header.Set("Content-Type", "text/plain")
			if status, _ := send("/v1/hooks/hook", plain, http.MethodPost); status != http.StatusUnsupportedMediaType {
				t.Errorf("text/plain: %d, want 415", status)
			}
		})
	}
}

// fuzzProvider checks one provider on arbitrary bodies, signed or not:
// Verify agrees with the signing, and Normalize returns valid CloudEvents
// or a classified error, never a panic.
func fuzzProvider(f *testing.F, kind string, samples ...string) {
	p := lookupProvider(f, kind)
	signer := p.(Signer)
	for _, s := range samples {
		f.Add(readSample(f, kind, s+".json"), true)
	}
	f.Add([]byte(`{}`), true)
	f.Add([]byte(`[1,2`), false)
	secret := []byte("fuzz-secret")
	headers := sampleRequest(f, kind, samples[0]).Header
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		req := &Request{Header: headers.Clone(), Body: body}
		if sign {
			signer.Sign(req, "", "fuzz", secret)
			for k, v := range headers { // the sample's event name; no credential
				req.Header[k] = v
			}
		}
		src := &routing.Source{Name: "fuzz", Kind: kind, Secret: secret}
		err := p.Verify(req, src)
		if sign != (err == nil) {
			t.Fatalf("sign=%v but Verify=%v", sign, err)
		}
		if ev, ok := p.(EarlyVerifier); ok {
			// The same credential, judged without the body.
			if err := ev.VerifyBeforeBody(&Request{Header: req.Header, PathToken: req.PathToken}, src); sign != (err == nil) {
				t.Fatalf("sign=%v but VerifyBeforeBody=%v", sign, err)
			}
		}
		res, err := p.Normalize(req)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedMediaType) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, ev := range res.Events {
			if err := ev.Validate(); err != nil {
				t.Fatalf("invalid CloudEvent: %v", err)
			}
			checkDataIsJSON(t, &ev)
		}
	})
}

func FuzzGitLab(f *testing.F)       { fuzzProvider(f, "gitlab", "push", "merge-request", "release") }
func FuzzGitea(f *testing.F)        { fuzzProvider(f, "gitea", "push", "pull-request", "delete") }
func FuzzForgejo(f *testing.F)      { fuzzProvider(f, "forgejo", "push", "release") }
func FuzzDockerHub(f *testing.F)    { fuzzProvider(f, "dockerhub", "push") }
func FuzzQuay(f *testing.F)         { fuzzProvider(f, "quay", "push") }
func FuzzHarbor(f *testing.F)       { fuzzProvider(f, "harbor", "push-artifact", "cloudevents-push") }
func FuzzDistribution(f *testing.F) { fuzzProvider(f, "distribution", "notification") }
func FuzzNexus(f *testing.F)        { fuzzProvider(f, "nexus", "component-docker", "component-npm") }
func FuzzArtifactory(f *testing.F) {
	fuzzProvider(f, "artifactory", "docker-pushed", "artifact-deployed")
}
func FuzzGenericHMAC(f *testing.F) { fuzzProvider(f, "generic-hmac", "deploy") }

// TestArtifactorySignedPayload: with "use secret for payload signing" the
// header carries the body's HMAC-SHA256 instead of the token.
func TestArtifactorySignedPayload(t *testing.T) {
	secret := newSecret(t)
	src := &routing.Source{Name: "af", Kind: "artifactory", Secret: secret}
	r := sampleRequest(t, "artifactory", "docker-pushed")
	r.Header.Set("X-JFrog-Event-Auth", hexHMAC(secret, r.Body))
	if err := lookupProvider(t, "artifactory").Verify(r, src); err != nil {
		t.Fatalf("signed payload: %v", err)
	}
	r.Body = append(r.Body, ' ')
	if err := lookupProvider(t, "artifactory").Verify(r, src); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("tampered signed payload: %v", err)
	}
}

// TestNexusPrettyBody: Nexus hashes the JSON without whitespace; a body
// re-indented on the way still verifies, a changed one does not.
func TestNexusPrettyBody(t *testing.T) {
	secret := newSecret(t)
	src := &routing.Source{Name: "nx", Kind: "nexus", Secret: secret}
	r := sampleRequest(t, "nexus", "component-npm")
	r.Header.Set("X-Nexus-Webhook-Signature", hex.EncodeToString(hmacSHA1(secret, bytes.TrimSpace(r.Body))))
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, r.Body, "", "  "); err != nil {
		t.Fatal(err)
	}
	r.Body = pretty.Bytes()
	if err := lookupProvider(t, "nexus").Verify(r, src); err != nil {
		t.Fatalf("indented body: %v", err)
	}
	r.Body = bytes.Replace(r.Body, []byte("angular2"), []byte("angular3"), 1)
	if err := lookupProvider(t, "nexus").Verify(r, src); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("changed body: %v", err)
	}
}

// TestRegistryIDs: a registry's retry of the same body gets the same ids
// (so it is deduplicated), and each image of one request its own.
func TestRegistryIDs(t *testing.T) {
	for _, k := range []struct{ kind, sample string }{{"dockerhub", "push"}, {"quay", "push"}, {"harbor", "push-artifact"}, {"distribution", "notification"}} {
		first, err := lookupProvider(t, k.kind).Normalize(sampleRequest(t, k.kind, k.sample))
		if err != nil {
			t.Fatal(err)
		}
		again, err := lookupProvider(t, k.kind).Normalize(sampleRequest(t, k.kind, k.sample))
		if err != nil {
			t.Fatal(err)
		}
		for i := range first.Events {
			if first.Events[i].ID() != again.Events[i].ID() {
				t.Errorf("%s: event %d id %q then %q: a retry must repeat the id", k.kind, i, first.Events[i].ID(), again.Events[i].ID())
			}
		}
	}
}

// TestPathTokenIsNotLogged: Docker Hub's token, in the URL, appears in no
// log line, whether the request is accepted or refused.
func TestPathTokenIsNotLogged(t *testing.T) {
	var logs bytes.Buffer
	secret := string(newSecret(t))
	rules := mustRules(t, `  - name: hub
    kind: dockerhub
    secret: {env: SECRET}
`, map[string]string{"SECRET": secret})
	srv := NewServer(Config{Rules: routing.NewHolder(rules), Publisher: newMemStore(), Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	body := readSample(t, "dockerhub", "push.json")
	for _, path := range []string{"/v1/hooks/hub/" + secret, "/v1/hooks/hub/" + secret + "x", "/v1/hooks/hub"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		srv.ServeHTTP(rec, req)
		want := http.StatusUnauthorized
		if path == "/v1/hooks/hub/"+secret {
			want = http.StatusAccepted
		}
		if rec.Code != want {
			t.Fatalf("%s: %d, want %d: %s", strings.Replace(path, secret, "<token>", 1), rec.Code, want, rec.Body)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatal("the answer repeats the token")
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no log lines")
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("the token is in the log:\n%s", logs.String())
	}
}

func FuzzBitbucket(f *testing.F) {
	fuzzProvider(f, "bitbucket", "repo-push-multi", "pull-request-merged")
}
func FuzzBitbucketServer(f *testing.F) {
	fuzzProvider(f, "bitbucket-server", "repo-refs-changed-multi", "pr-opened")
}

// TestBitbucketMultiChange: one Bitbucket push of three refs is three
// events with their own ids, types and refs.
func TestBitbucketMultiChange(t *testing.T) {
	res, err := lookupProvider(t, "bitbucket").Normalize(sampleRequest(t, "bitbucket", "repo-push-multi"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range res.Events {
		got = append(got, ev.ID()+" "+ev.Type()+" "+ev.Subject())
	}
	want := []string{
		"5b0c8c29-77e4-4d5e-9e1f-6c0a1b2c3d4e/0 " + TypeGitPush + " refs/heads/name-of-branch",
		"5b0c8c29-77e4-4d5e-9e1f-6c0a1b2c3d4e/1 " + TypeGitTag + " refs/tags/v1.2.0",
		"5b0c8c29-77e4-4d5e-9e1f-6c0a1b2c3d4e/2 " + TypeGitBranchDeleted + " refs/heads/old-feature",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBitbucketServerPing(t *testing.T) {
	res, err := lookupProvider(t, "bitbucket-server").Normalize(sampleRequest(t, "bitbucket-server", "ping"))
	if err != nil || !res.Ping {
		t.Fatalf("diagnostics:ping = %+v, %v; want a ping", res, err)
	}
}

// A payload URL that is not a URI reference must not make the event
// invalid (the sdk refuses to send or store one): the provider's default
// source stands in for it.
func TestUnparsableSourceURL(t *testing.T) {
	for _, tc := range []struct{ kind, sample, old, want string }{
		{"github", "push", `"html_url": "https://github.com/acme/web"`, "https://github.com"},
		{"gitea", "push", `"html_url": "http://localhost:3000/example/example"`, "urn:gitea"},
		{"gitlab", "push", `"web_url":"http://example.com/mike/diaspora"`, "urn:switchyard:gitlab"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			req := sampleRequest(t, tc.kind, tc.sample)
			if !bytes.Contains(req.Body, []byte(tc.old)) {
				t.Fatalf("sample has no %s", tc.old)
			}
			req.Body = bytes.ReplaceAll(req.Body, []byte(tc.old), []byte(strings.SplitN(tc.old, ":", 2)[0]+`:"http://[::1"`))
			res, err := lookupProvider(t, tc.kind).Normalize(req)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range res.Events {
				if err := ev.Validate(); err != nil {
					t.Errorf("invalid event: %v", err)
				}
				if ev.Source() != tc.want {
					t.Errorf("source = %q, want %q", ev.Source(), tc.want)
				}
			}
		})
	}
}

// Source fields a kind would silently ignore are refused at load.
func TestCheckSourceRefusesIgnoredFields(t *testing.T) {
	for _, tc := range []struct {
		src  routing.Source
		want string // "" means accepted
	}{
		{routing.Source{Kind: "harbor", Header: "X-Harbor-Token"}, ""},
		{routing.Source{Kind: "artifactory", Header: "X-Proxy-Auth"}, ""},
		{routing.Source{Kind: "gitlab", Header: "X-Other"}, "remove header"},
		{routing.Source{Kind: "github", AllowSHA1: true}, ""},
		{routing.Source{Kind: "gitea", AllowSHA1: true}, "github only"},
	} {
		tc.src.SecretRef.Env = "S"
		err := CheckSource(&tc.src)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: got %v, want %q", tc.src, err, tc.want)
		}
	}
}

// distribution v3 (registry:3) labels the same envelope events.v2+json.
func TestDistributionV3MediaType(t *testing.T) {
	req := sampleRequest(t, "distribution", "notification")
	want, err := lookupProvider(t, "distribution").Normalize(req)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
	got, err := lookupProvider(t, "distribution").Normalize(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != len(want.Events) || len(got.Events) == 0 {
		t.Fatalf("v2 media type: %d events, v1: %d", len(got.Events), len(want.Events))
	}
}

// With header: Authorization, Artifactory's token may carry a scheme, as
// for every kind whose credential header can be renamed.
func TestArtifactoryAuthorizationHeader(t *testing.T) {
	secret := []byte("af-token-1")
	src := &routing.Source{Name: "af", Kind: "artifactory", Secret: secret, Header: "Authorization"}
	for value, ok := range map[string]bool{"Bearer af-token-1": true, "af-token-1": true, "Bearer af-token-2": false, "": false} {
		r := sampleRequest(t, "artifactory", "docker-pushed")
		r.Header.Del("X-JFrog-Event-Auth")
		if value != "" {
			r.Header.Set("Authorization", value)
		}
		if err := lookupProvider(t, "artifactory").Verify(r, src); (err == nil) != ok {
			t.Errorf("Authorization %q: %v, want accepted=%v", value, err, ok)
		}
	}
}

// The token route is only for kinds whose senders can do nothing else; on
// another kind the request is refused, not authenticated by its header
// with the path segment silently ignored.
func TestPathTokenRouteOnlyForTokenKinds(t *testing.T) {
	secret := newSecret(t)
	h := newHookServer(t, "  - name: gh\n    kind: github\n    secret: {env: S}\n", map[string]string{"S": string(secret)})
	req := sampleRequest(t, "github", "push")
	githubProvider{}.Sign(req, "push", "d-1", secret)
	if code, _, body := h.send(t, http.MethodPost, "/v1/hooks/gh/whatever", req.Header, req.Body); code != http.StatusNotFound || !strings.Contains(string(body), "does not take a token in the path") {
		t.Fatalf("token route on a github source: %d %s", code, body)
	}
	if code, _, body := h.send(t, http.MethodPost, "/v1/hooks/gh", req.Header, req.Body); code != http.StatusAccepted {
		t.Fatalf("the plain route: %d %s", code, body)
	}
}

// A default-format Harbor payload whose repository is named "specversion"
// is still read as the default format.
func TestHarborDefaultFormatNamedSpecversion(t *testing.T) {
	req := sampleRequest(t, "harbor", "push-artifact")
	req.Body = bytes.ReplaceAll(req.Body, []byte(`"debian"`), []byte(`"specversion"`))
	if !bytes.Contains(req.Body, []byte(`"specversion"`)) {
		t.Fatal("sample has no repository name to replace")
	}
	res, err := lookupProvider(t, "harbor").Normalize(req)
	if err != nil || len(res.Events) != 1 || res.Events[0].Type() != TypeImagePush {
		t.Fatalf("%v %v", err, res.Events)
	}
}

// A normalized event shows its JSON payload as JSON ("data"), as the queue
// stores it, not base64: `router normalize` prints what replay will read.
func TestNormalizedDataIsJSON(t *testing.T) {
	for _, kind := range []string{"gitlab", "github"} {
		res, err := lookupProvider(t, kind).Normalize(sampleRequest(t, kind, "push"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(res.Events[0])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["data_base64"]; ok || !bytes.HasPrefix(m["data"], []byte("{")) {
			t.Fatalf("%s: data is not embedded as JSON: %.200s", kind, b)
		}
	}
}

// A registry notification with nothing to route (pulls, mounts, layer
// pushes) is acknowledged, so the registry does not retry it, and stores
// nothing.
func TestRegistryIgnoredEventsHTTP(t *testing.T) {
	secret := newSecret(t)
	h := newHookServer(t, "  - name: reg\n    kind: distribution\n    secret: {env: S}\n", map[string]string{"S": string(secret)})
	body := []byte(`{"events": [
	  {"id": "p-1", "action": "pull", "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "repository": "team/app", "digest": "sha256:aa", "tag": "v1"}},
	  {"id": "m-1", "action": "mount", "target": {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "repository": "team/app", "digest": "sha256:bb"}},
	  {"id": "b-1", "action": "push", "target": {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "repository": "team/app", "digest": "sha256:cc"}}]}`)
	req := &Request{Header: http.Header{}, Body: body}
	lookupProvider(t, "distribution").(Signer).Sign(req, "", "", secret)
	status, _, out := h.send(t, http.MethodPost, "/v1/hooks/reg", req.Header, body)
	if status != http.StatusAccepted {
		t.Fatalf("%d %s", status, out)
	}
	if a := accepted(t, out); a.ID != "" || len(a.allEvents()) != 0 || len(a.Targets) != 0 {
		t.Fatalf("ignored events were stored: %s", out)
	}
}
