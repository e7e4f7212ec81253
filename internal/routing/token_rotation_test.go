package routing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tokenRoot is testRoot with an endpoint whose static token hashes are in
// file.
func tokenRoot(secretFile, tokensFile string) string {
	return rotationRoot(secretFile) + `endpoints:
  - name: agent
    auth:
      tokens: {file: ` + tokensFile + `}
    scope:
      eventTypes: [com.acme.*]
`
}

// tokenLine is a tokens file line for token, with a name.
func tokenLine(token, name string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:]) + " " + name + "\n"
}

// TestMatchTokenLine: every listed token matches, and the match names its
// line (comments and blanks counted), never the token.
func TestMatchTokenLine(t *testing.T) {
	hashes, err := parseTokenHashes([]byte("# rotating, 2026-11-29\n" + tokenLine("new-token", "bot") + "\n" + tokenLine("old-token", "bot")))
	if err != nil {
		t.Fatal(err)
	}
	e := &Endpoint{Tokens: hashes}
	for _, tc := range []struct {
		token    string
		wantLine int
		wantOK   bool
	}{
		{token: "new-token", wantLine: 2, wantOK: true},
		{token: "old-token", wantLine: 4, wantOK: true},
		{token: "third-token"},
	} {
		name, line, ok := e.MatchToken(tc.token)
		if ok != tc.wantOK || line != tc.wantLine || (ok && name != "bot") {
			t.Errorf("MatchToken(%q) = %q, %d, %v; want bot, %d, %v", tc.token, name, line, ok, tc.wantLine, tc.wantOK)
		}
	}
}

// TestReloaderWatchesTokenFiles rotates an endpoint's tokens file kept
// outside the rules directory under a running reloader: the new token is
// added, then the old one removed, without a restart. Before, the tokens
// file was not watched and only a rules edit or SIGHUP read it again.
func TestReloaderWatchesTokenFiles(t *testing.T) {
	dir, secrets := t.TempDir(), t.TempDir()
	secret, tokens := filepath.Join(secrets, "github"), filepath.Join(secrets, "agent-tokens")
	writeFile(t, secret, "s3cret\n")
	writeFile(t, tokens, tokenLine("old-token", "bot"))
	writeFile(t, filepath.Join(dir, "root.yaml"), tokenRoot(secret, tokens))
	writeFile(t, filepath.Join(dir, "apps", "web.yaml"), appWithTriggers("build"))
	load := func(d string) (*Rules, error) { return LoadDir(d, Options{ResolveSecrets: true}) }
	rules, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := rules.SecretFiles(); !slices.Equal(got, []string{tokens, secret}) {
		t.Fatalf("SecretFiles = %q, want the tokens file too", got)
	}
	holder := NewHolder(rules)
	logs := &lockedBuffer{}
	r := NewReloader(ReloaderConfig{Dir: dir, Load: load, Holder: holder, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Debounce: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, "the watcher to start", func() bool { return strings.Contains(logs.String(), "watching rules") })
	accepts := func(token string) (int, bool) {
		_, line, ok := holder.Rules().Endpoint("agent").MatchToken(token)
		return line, ok
	}

	writeFile(t, tokens, tokenLine("new-token", "bot")+tokenLine("old-token", "bot"))
	waitFor(t, "the new token", func() bool { _, ok := accepts("new-token"); return ok })
	if line, ok := accepts("old-token"); !ok || line != 2 {
		t.Fatalf("during the rotation the old token: line %d, %v; want line 2, accepted", line, ok)
	}
	writeFile(t, tokens, tokenLine("new-token", "bot"))
	waitFor(t, "the old token removed", func() bool { _, ok := accepts("old-token"); return !ok })
	if line, ok := accepts("new-token"); !ok || line != 1 {
		t.Fatalf("after the rotation the new token: line %d, %v; want line 1, accepted", line, ok)
	}
}
