package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sendRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: gitlab
    kind: gitlab
    secret:
      env: FH_GITLAB_TOKEN
  - name: hub
    kind: dockerhub
    secret:
      env: FH_HUB_TOKEN
  - name: quay
    kind: quay
    secret:
      env: FH_QUAY_TOKEN
`

// TestSendSampleOfTheSourceKind: send posts the sample of the source's
// kind, authenticated as that kind's sender does (the path token for
// Docker Hub and Quay), and never prints the token.
func TestSendSampleOfTheSourceKind(t *testing.T) {
	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "root.yaml"), []byte(sendRoot), 0o644); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{"FH_GITLAB_TOKEN": "gitlab-token-1", "FH_HUB_TOKEN": "hub-token-2", "FH_QUAY_TOKEN": "quay-token-3"}
	for k, v := range tokens {
		t.Setenv(k, v)
	}
	r := startRouter(t, t.TempDir(), "--rules", rules)
	defer r.stop(t)
	for _, tc := range []struct{ source, wantType string }{
		{"gitlab", "dev.switchyard.git.push"},
		{"hub", "dev.switchyard.image.push"},
		{"quay", "dev.switchyard.image.push"},
	} {
		t.Run(tc.source, func(t *testing.T) {
			code, out, stderr := runCmd(t, "", "send", "--rules", rules, "--source", tc.source, "--url", r.url)
			if code != 0 || !strings.Contains(out, "202 Accepted") {
				t.Fatalf("send exited %d: %s %s", code, out, stderr)
			}
			var body struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &body); err != nil || body.Type != tc.wantType {
				t.Fatalf("accepted as %q (%v), want %s: %s", body.Type, err, tc.wantType, out)
			}
			for _, tok := range tokens {
				if strings.Contains(out+stderr, tok) {
					t.Fatalf("send printed a token: %s", out)
				}
			}
		})
	}
	code, _, stderr := runCmd(t, "", "send", "--rules", rules, "--source", "gitlub", "--url", r.url)
	if code != 1 || !strings.Contains(stderr, `did you mean "gitlab"?`) || !strings.Contains(stderr, "known: gitlab, hub, quay") {
		t.Fatalf("unknown source: exit %d, %q", code, stderr)
	}
	t.Setenv("GITHUB_WEBHOOK_SECRET", "s")
	code, _, stderr = runCmd(t, "", "send", "--rules", "../../rules", "--source", "release-agent", "--url", r.url)
	if code != 1 || !strings.Contains(stderr, `"release-agent" is an endpoint`) {
		t.Fatalf("send to an endpoint: exit %d, %q", code, stderr)
	}
}

// TestSendEveryKind: every built-in sample, signed by send as its kind's
// sender signs, is accepted by a router with a source of that kind.
func TestSendEveryKind(t *testing.T) {
	entries, err := samples.ReadDir("samples")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	root := "apiVersion: switchyard.dev/v1alpha1\nkind: Root\nsources:\n"
	for _, e := range entries {
		if kind, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			kinds = append(kinds, kind)
			env := "SEND_" + strings.ToUpper(strings.ReplaceAll(kind, "-", "_"))
			t.Setenv(env, "secret-of-"+kind)
			root += fmt.Sprintf("  - name: %s\n    kind: %s\n    secret: {env: %s}\n", kind, kind, env)
		}
	}
	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "root.yaml"), []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRouter(t, t.TempDir(), "--rules", rules)
	defer r.stop(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			code, out, stderr := runCmd(t, "", "send", "--rules", rules, "--source", kind, "--url", r.url)
			if code != 0 || !strings.Contains(out, "202 Accepted") {
				t.Fatalf("send exited %d: %s %s", code, out, stderr)
			}
		})
	}
}

// TestEverySampleNormalizes: each built-in sample is a payload its kind's
// provider accepts.
func TestEverySampleNormalizes(t *testing.T) {
	entries, err := samples.ReadDir("samples")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		kind, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		t.Run(kind, func(t *testing.T) {
			body, header, err := sampleFor(kind)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"normalize", "--provider", kind, "--body", "-"}
			for name := range header {
				args = append(args, "-H", name+": "+header.Get(name))
			}
			if code, out, stderr := runCmd(t, string(body), args...); code != 0 {
				t.Fatalf("normalize exited %d: %s %s", code, out, stderr)
			}
		})
	}
}
