package ingest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleDir holds the provider sample payloads shared by every test.
const sampleDir = "../../test/testdata"

func readSample(t testing.TB, provider, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(sampleDir, provider, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func newSecret(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return []byte(hex.EncodeToString(b))
}

// signGitHub computes X-Hub-Signature-256 as GitHub does.
func signGitHub(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// signGitHubSHA1 computes the legacy X-Hub-Signature.
func signGitHubSHA1(secret, body []byte) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

func githubHeader(event, delivery string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", delivery)
	h.Set("User-Agent", "GitHub-Hookshot/044aadd")
	return h
}

func TestGitHubVerify(t *testing.T) {
	secret := newSecret(t)
	body := readSample(t, "github", "push.json")
	tests := []struct {
		name    string
		sig     string
		secret  []byte
		sha1    bool // the source allows SHA-1; sig goes in X-Hub-Signature
		wantErr bool
	}{
		{name: "valid", sig: signGitHub(secret, body), secret: secret},
		{name: "missing", sig: "", secret: secret, wantErr: true},
		{name: "wrong secret", sig: signGitHub([]byte("other"), body), secret: secret, wantErr: true},
		{name: "tampered body", sig: signGitHub(secret, append([]byte(" "), body...)), secret: secret, wantErr: true},
		{name: "sha1 refused", sig: "sha1=" + hex.EncodeToString(make([]byte, 20)), secret: secret, wantErr: true},
		{name: "not hex", sig: "sha256=zz", secret: secret, wantErr: true},
		{name: "no secret configured", sig: signGitHub(nil, body), secret: nil, wantErr: true},
		{name: "sha1 allowed by the source", sig: signGitHubSHA1(secret, body), secret: secret, sha1: true},
		{name: "sha1 allowed, wrong secret", sig: signGitHubSHA1([]byte("other"), body), secret: secret, sha1: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := githubHeader("push", "d-1")
			switch {
			case tt.sha1:
				h.Set("X-Hub-Signature", tt.sig)
			case tt.sig != "":
				h.Set("X-Hub-Signature-256", tt.sig)
			}
			src := &routing.Source{Name: "github", Kind: "github", Secret: tt.secret, AllowSHA1: tt.sha1}
			err := githubProvider{}.Verify(&Request{Header: h, Body: body}, src)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error %v does not wrap ErrUnauthorized", err)
			}
		})
	}
}

// TestGitHubNormalizeGolden checks the normalized CloudEvent for each sample
// against testdata/golden; run with -update after a deliberate change.
func TestGitHubNormalizeGolden(t *testing.T) {
	tests := []struct {
		name, sample, event string
		wantType            string
		wantExt             map[string]string
	}{
		{name: "push", sample: "push.json", event: "push", wantType: TypeGitPush,
			wantExt: map[string]string{"repository": "acme/web", "branch": "main", "ref": "refs/heads/main",
				"revision": "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d", "actor": "octocat", "provider": "github"}},
		{name: "push-tag", sample: "push-tag.json", event: "push", wantType: TypeGitTag,
			wantExt: map[string]string{"tag": "v1.2.0", "ref": "refs/tags/v1.2.0"}},
		{name: "push-branch-deleted", sample: "push-branch-deleted.json", event: "push", wantType: TypeGitBranchDeleted,
			wantExt: map[string]string{"branch": "feature/old", "revision": "1d4f8e2c9b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"}},
		{name: "issues", sample: "issues.json", event: "issues", wantType: "com.github.issues",
			wantExt: map[string]string{"action": "opened", "repository": "acme/web"}},
		{name: "pull-request", sample: "pull-request.json", event: "pull_request", wantType: TypeGitPullRequest,
			wantExt: map[string]string{"action": "opened", "pullrequest": "1", "branch": "master", "headbranch": "changes",
				"ref": "refs/pull/1/head", "revision": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "repository": "baxterthehacker/public-repo"}},
		{name: "pull-request-synchronize", sample: "pull-request-synchronize.json", event: "pull_request", wantType: TypeGitPullRequest,
			wantExt: map[string]string{"action": "synchronize"}},
		{name: "pull-request-reopened", sample: "pull-request-reopened.json", event: "pull_request", wantType: TypeGitPullRequest,
			wantExt: map[string]string{"action": "reopened"}},
		{name: "pull-request-labeled", sample: "pull-request-labeled.json", event: "pull_request", wantType: TypeGitPullRequest,
			wantExt: map[string]string{"action": "labeled"}},
		{name: "pull-request-merged", sample: "pull-request-merged.json", event: "pull_request", wantType: TypeGitPullRequest,
			wantExt: map[string]string{"action": "merged"}},
		{name: "pull-request-closed", sample: "pull-request-closed.json", event: "pull_request", wantType: TypeGitPullRequest,
			wantExt: map[string]string{"action": "closed"}},
		{name: "release", sample: "release.json", event: "release", wantType: TypeGitRelease,
			wantExt: map[string]string{"action": "published", "tag": "0.0.1", "ref": "refs/tags/0.0.1"}},
		{name: "create", sample: "create.json", event: "create", wantType: TypeGitTag,
			wantExt: map[string]string{"tag": "0.0.1", "ref": "refs/tags/0.0.1"}},
		{name: "delete", sample: "delete.json", event: "delete", wantType: TypeGitTagDeleted,
			wantExt: map[string]string{"tag": "simple-tag"}},
		{name: "workflow-run", sample: "workflow-run.json", event: "workflow_run", wantType: "com.github.workflow_run",
			wantExt: map[string]string{"branch": "master", "repository": "baxterthehacker/public-repo"}},
		{name: "check-suite", sample: "check-suite.json", event: "check_suite", wantType: "com.github.check_suite",
			wantExt: map[string]string{"action": "requested", "branch": "master", "revision": "d6fde92930d4715a2b49857d24b940956b26d2d3"}},
		{name: "package-container", sample: "package-container.json", event: "package", wantType: TypeImagePush,
			wantExt: map[string]string{"repository": "ghcr.io/acme/web", "tag": "v1.2.0", "provider": "github", "action": "published",
				"digest": "sha256:4b2b8a3f0d9c1e6a7b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"}},
		{name: "registry-package-container", sample: "registry-package-container.json", event: "registry_package", wantType: TypeImagePush,
			wantExt: map[string]string{"repository": "ghcr.io/acme/web", "tag": "v1.2.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := readSample(t, "github", tt.sample)
			res, err := githubProvider{}.Normalize(&Request{Header: githubHeader(tt.event, "72d3162e-cc78-11e3-81ab-4c9367dc0958"), Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 1 {
				t.Fatalf("got %d events", len(res.Events))
			}
			ev := res.Events[0]
			if err := ev.Validate(); err != nil {
				t.Fatalf("not a valid CloudEvent: %v", err)
			}
			if ev.Type() != tt.wantType || ev.ID() != "72d3162e-cc78-11e3-81ab-4c9367dc0958" {
				t.Errorf("type %q id %q", ev.Type(), ev.ID())
			}
			for k, v := range tt.wantExt {
				if got := ev.Extensions()[k]; got != v {
					t.Errorf("extension %s = %v, want %q", k, got, v)
				}
			}
			if !bytes.Equal(ev.Data(), body) {
				t.Error("data must be the original payload, unchanged")
			}
			checkGolden(t, "github-"+tt.name, res.Events)
		})
	}
}

func TestGitHubNormalizeErrors(t *testing.T) {
	push := readSample(t, "github", "push.json")
	form := []byte("payload=" + url.QueryEscape(string(push)))
	tests := []struct {
		name    string
		ct      string
		event   string
		body    []byte
		wantErr error
		wantMsg string // in the error, with wantErr
		ping    bool
	}{
		{name: "form encoded push is accepted", ct: "application/x-www-form-urlencoded", event: "push", body: form},
		{name: "ping", ct: "application/json", event: "ping", body: readSample(t, "github", "ping.json"), ping: true},
		{name: "malformed json", ct: "application/json", event: "push", body: []byte(`{"ref":`), wantErr: ErrMalformed, wantMsg: "not valid JSON"},
		{name: "missing event header", ct: "application/json", event: "", body: push, wantErr: ErrMalformed},
		{name: "push without ref", ct: "application/json", event: "push", body: []byte(`{"after":"x"}`), wantErr: ErrMalformed},
		{name: "wrong type for ref", ct: "application/json", event: "push", body: []byte(`{"ref":42}`), wantErr: ErrMalformed},
		{name: "bad head commit timestamp", ct: "application/json", event: "push", body: []byte(`{"ref":"refs/heads/x","head_commit":{"timestamp":"soon"}}`), wantErr: ErrMalformed},
		{name: "a field normalization does not read is not checked", ct: "application/json", event: "push", body: []byte(`{"ref":"refs/heads/x","size":"big","commits":{}}`)},
		{name: "form without payload", ct: "application/x-www-form-urlencoded", event: "push", body: []byte("a=b"), wantErr: ErrMalformed, wantMsg: "not valid JSON"},
		{name: "ping must be JSON", ct: "application/json", event: "ping", body: []byte(`{"zen":`), wantErr: ErrMalformed, wantMsg: "not valid JSON"},
		{name: "pull request number of the wrong type", ct: "application/json", event: "pull_request", body: []byte(`{"pull_request":{"number":"1"}}`), wantErr: ErrMalformed},
		{name: "pull request without pull_request", ct: "application/json", event: "pull_request", body: []byte(`{"action":"opened"}`), wantErr: ErrMalformed},
		{name: "xml", ct: "application/xml", event: "push", body: []byte(`<push/>`), wantErr: ErrUnsupportedMediaType},
		{name: "no content type", ct: "", event: "push", body: push, wantErr: ErrUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := githubHeader(tt.event, "d")
			h.Set("Content-Type", tt.ct)
			if tt.event == "" {
				h.Del("X-GitHub-Event")
			}
			res, err := githubProvider{}.Normalize(&Request{Header: h, Body: tt.body})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("err = %v, want %v %s", err, tt.wantErr, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Ping != tt.ping {
				t.Fatalf("ping = %v", res.Ping)
			}
			if !tt.ping && (len(res.Events) != 1 || res.Events[0].Type() != TypeGitPush) {
				t.Fatalf("events = %+v", res.Events)
			}
		})
	}
}

func TestGitHubEventIDWithoutDelivery(t *testing.T) {
	body := readSample(t, "github", "push.json")
	h := githubHeader("push", "")
	a, err := githubProvider{}.Normalize(&Request{Header: h, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := githubProvider{}.Normalize(&Request{Header: h, Body: body})
	if a.Events[0].ID() == "" || a.Events[0].ID() != b.Events[0].ID() {
		t.Fatalf("ids %q and %q: a payload without delivery id needs a stable content id", a.Events[0].ID(), b.Events[0].ID())
	}
}

func FuzzGitHub(f *testing.F) {
	secret := []byte("fuzz-secret")
	for _, s := range []string{"push.json", "push-tag.json", "ping.json", "issues.json"} {
		f.Add("push", readSample(f, "github", s), true)
	}
	f.Add("push", []byte(`{"ref":"refs/heads/x","deleted":true}`), false)
	f.Add("issues", []byte(`[]`), true)
	f.Fuzz(func(t *testing.T, event string, body []byte, sign bool) {
		h := githubHeader(event, "fuzz")
		if sign {
			h.Set("X-Hub-Signature-256", signGitHub(secret, body))
		}
		p := githubProvider{}
		req := &Request{Header: h, Body: body}
		err := p.Verify(req, &routing.Source{Secret: secret})
		if sign != (err == nil) {
			t.Fatalf("sign=%v but Verify=%v", sign, err)
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
			if !bytes.Equal(ev.Data(), body) {
				t.Fatal("data changed")
			}
		}
	})
}

func BenchmarkGitHubVerify(b *testing.B) {
	secret := []byte("bench-secret")
	body := readSample(b, "github", "push.json")
	h := githubHeader("push", "d")
	h.Set("X-Hub-Signature-256", signGitHub(secret, body))
	req := &Request{Header: h, Body: body}
	src := &routing.Source{Secret: secret}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := (githubProvider{}).Verify(req, src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGitHubNormalize(b *testing.B) {
	body := readSample(b, "github", "push.json")
	req := &Request{Header: githubHeader("push", "d"), Body: body}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := (githubProvider{}).Normalize(req); err != nil {
			b.Fatal(err)
		}
	}
}
