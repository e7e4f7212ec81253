package ingest

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// rotating is a source in the middle of a rotation: the new secret first
// (the one `router send` signs with), the old one still listed.
func rotating(newSecret, oldSecret []byte) *routing.Source {
	return &routing.Source{Name: "rotating", Secret: newSecret, Secrets: [][]byte{newSecret, oldSecret}}
}

// TestVerifyHelpersAcceptEverySecret signs with the old and the new secret
// of a source listing both, and with a third: each verification helper
// accepts the first two and refuses the third.
func TestVerifyHelpersAcceptEverySecret(t *testing.T) {
	body := readSample(t, "github", "push.json")
	for _, tc := range []struct {
		name   string
		sign   func(req *Request, secret []byte)
		verify func(req *Request, src *routing.Source) error
	}{
		{
			name: "verifyHMACHex",
			sign: func(req *Request, secret []byte) { req.Header.Set("X-Signature", "sha256="+hexHMAC(secret, req.Body)) },
			verify: func(req *Request, src *routing.Source) error {
				return verifyHMACHex(req, src, "X-Signature", "sha256=")
			},
		},
		{
			name:   "verifyToken",
			sign:   func(req *Request, secret []byte) { req.PathToken = string(secret) },
			verify: func(req *Request, src *routing.Source) error { return verifyToken(req, req.PathToken, src, "token") },
		},
		{
			name:   "verifyHeaderToken bearer",
			sign:   func(req *Request, secret []byte) { req.Header.Set("Authorization", "Bearer "+string(secret)) },
			verify: func(req *Request, src *routing.Source) error { return verifyHeaderToken(req, src, "Authorization") },
		},
		{
			name:   "verifyHeaderToken header",
			sign:   func(req *Request, secret []byte) { req.Header.Set("X-Gitlab-Token", string(secret)) },
			verify: func(req *Request, src *routing.Source) error { return verifyHeaderToken(req, src, "X-Gitlab-Token") },
		},
		{
			name: "verifyStandardWebhook",
			sign: func(req *Request, secret []byte) { genericProvider{}.Sign(req, "", "msg-1", secret) },
			verify: func(req *Request, src *routing.Source) error {
				return verifyStandardWebhook(req, src, time.Now())
			},
		},
		{
			name:   "github",
			sign:   func(req *Request, secret []byte) { req.Header.Set(githubSignatureHeader, signGitHub(secret, req.Body)) },
			verify: githubProvider{}.Verify,
		},
		{
			name:   "nexus",
			sign:   func(req *Request, secret []byte) { nexusProvider{}.Sign(req, "", "d-1", secret) },
			verify: nexusProvider{}.Verify,
		},
		{
			name:   "artifactory token",
			sign:   func(req *Request, secret []byte) { artifactoryProvider{}.Sign(req, "", "", secret) },
			verify: artifactoryProvider{}.Verify,
		},
		{
			name:   "artifactory HMAC",
			sign:   func(req *Request, secret []byte) { req.Header.Set(artifactoryAuthHeader, hexHMAC(secret, req.Body)) },
			verify: artifactoryProvider{}.Verify,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oldSecret, newSecret, other := newSecret(t), newSecret(t), newSecret(t)
			src := rotating(newSecret, oldSecret)
			for _, c := range []struct {
				what   string
				secret []byte
				line   int // the secret's line in src, for the audit record; 0: refused
			}{{"old", oldSecret, 2}, {"new", newSecret, 1}, {"unlisted", other, 0}} {
				req := &Request{Header: http.Header{}, Body: body}
				tc.sign(req, c.secret)
				if err := tc.verify(req, src); (err == nil) != (c.line > 0) {
					t.Errorf("signed with the %s secret: err = %v, want accepted %v", c.what, err, c.line > 0)
				}
				if req.SecretLine != c.line {
					t.Errorf("signed with the %s secret: SecretLine = %d, want %d", c.what, req.SecretLine, c.line)
				}
			}
		})
	}
}

// TestSignersAcceptEverySecret checks every kind `router send` can sign
// for: whatever a kind accepts signed with a source's one secret, it
// accepts signed with either secret of a source listing two, and it
// refuses a third.
func TestSignersAcceptEverySecret(t *testing.T) {
	body := readSample(t, "github", "push.json")
	checked := 0
	for _, kind := range Kinds() {
		p, _ := Lookup(kind)
		signer, ok := p.(Signer)
		if !ok {
			continue
		}
		t.Run(kind, func(t *testing.T) {
			oldSecret, newSecret, other := newSecret(t), newSecret(t), newSecret(t)
			signed := func(secret []byte) *Request {
				req := &Request{Header: http.Header{}, Body: body}
				signer.Sign(req, "", "d-1", secret)
				return req
			}
			if p.Verify(signed(oldSecret), &routing.Source{Name: "one", Kind: kind, Secret: oldSecret}) != nil {
				t.Skip("this kind needs more than a secret to verify a signed sample")
			}
			checked++
			src := rotating(newSecret, oldSecret)
			src.Kind = kind
			for what, secret := range map[string][]byte{"old": oldSecret, "new": newSecret} {
				if err := p.Verify(signed(secret), src); err != nil {
					t.Errorf("signed with the %s secret: %v", what, err)
				}
			}
			if p.Verify(signed(other), src) == nil {
				t.Error("signed with an unlisted secret: accepted")
			}
		})
	}
	if checked < 5 {
		t.Fatalf("only %d kinds checked", checked)
	}
}

// TestGitHubHTTPRotation serves a GitHub source whose secret file lists the
// new secret and the old one: pushes signed with either get 202 while both
// are listed, and one signed with neither 401.
func TestGitHubHTTPRotation(t *testing.T) {
	oldSecret, newSecret := newSecret(t), newSecret(t)
	file := filepath.Join(t.TempDir(), "github-secret")
	data := "# new secret first: router send signs with it\n" + string(newSecret) + "\n\n# old, remove once GitHub sends the new one\n" + string(oldSecret) + "\n"
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHookServer(t, `  - name: gh
    kind: github
    secret: {file: `+file+`}
`, nil)
	push := readSample(t, "github", "push.json")
	for i, c := range []struct {
		what   string
		secret []byte
		status int
		line   int // the secret's line in the file, as the audit record names it
	}{
		{"old", oldSecret, http.StatusAccepted, 5},
		{"new", newSecret, http.StatusAccepted, 2},
		{"unlisted", []byte("guess"), http.StatusUnauthorized, 0},
	} {
		hd := githubHeader("push", "rot-"+string(rune('a'+i)))
		hd.Set("X-Hub-Signature-256", signGitHub(c.secret, push))
		if status, _, body := h.send(t, http.MethodPost, "/v1/hooks/gh", hd, push); status != c.status {
			t.Errorf("signed with the %s secret: status %d, want %d: %s", c.what, status, c.status, body)
		}
		recs := h.store.records()
		if last := recs[len(recs)-1]; last.SecretLine != c.line {
			t.Errorf("signed with the %s secret: audit record names secret line %d, want %d: %+v", c.what, last.SecretLine, c.line, last)
		}
	}
}
