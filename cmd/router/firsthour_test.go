package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The first-hour walkthrough (the README's quick start, then
// docs/first-hour.md) is run by TestFirstHour: every block marked
// <!-- first-hour: NAME --> is either a command the test runs as written
// or the output it must print, so the docs cannot drift from the code.

// docBlocks returns the fenced blocks that follow a marker line, by name.
func docBlocks(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks := map[string]string{}
	sc := bufio.NewScanner(f)
	name, inBlock := "", false
	var b strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inBlock && strings.HasPrefix(line, "```"):
			blocks[name], name, inBlock = b.String(), "", false
			b.Reset()
		case inBlock:
			b.WriteString(line + "\n")
		case name != "" && strings.HasPrefix(line, "```"):
			inBlock = true
		case strings.HasPrefix(line, "<!-- first-hour: "):
			name = strings.TrimSuffix(strings.TrimPrefix(line, "<!-- first-hour: "), " -->")
		}
	}
	return blocks
}

// shellWords splits a command as sh would for the quoting the docs use:
// '...', "..." with $VAR expanded from env, and backslash-newline.
func shellWords(s string, env map[string]string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '$' && quote != '\'':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			cur.WriteString(env[s[i+1:j]])
			i = j - 1
			inWord = true
		case quote == '"':
			if c == '"' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			i++
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// docCommand returns the router arguments of a block holding one
// "[VAR=value ...] go run ./cmd/router ARGS" command, and its variables.
func docCommand(t *testing.T, block string) (map[string]string, []string) {
	t.Helper()
	words := shellWords(block, nil)
	env := map[string]string{}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		k, v, _ := strings.Cut(words[0], "=")
		env[k] = v
		words = words[1:]
	}
	if len(words) < 3 || strings.Join(words[:3], " ") != "go run ./cmd/router" {
		t.Fatalf("not a router command: %q", block)
	}
	return env, words[3:]
}

// normalize replaces what differs from run to run (pids, addresses,
// times, the data directory) in a command's output.
func normalize(s, base, dataDir string) string {
	s = strings.ReplaceAll(s, base, "http://localhost:8080")
	if dataDir != "" {
		s = strings.ReplaceAll(s, dataDir, "./data")
	}
	for re, with := range map[*regexp.Regexp]string{
		regexp.MustCompile(`pid \d+`):                                                 "pid 12345",
		regexp.MustCompile(`listening on [^,)]+`):                                     "listening on [::]:8080",
		regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`): "2026-11-29T10:00:00Z",
		// The rules revision changes with every edit of rules/.
		regexp.MustCompile(`sha256:[0-9a-f]{12}(,git:[0-9a-f]{12})?`): "sha256:5e1f0c2a9b7d",
	} {
		s = re.ReplaceAllString(s, with)
	}
	return s
}

// sameText compares outputs line by line, ignoring trailing blanks (which
// Markdown editors strip).
func sameText(got, doc string) bool {
	trim := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		for i, l := range lines {
			lines[i] = strings.TrimRight(l, " \t")
		}
		return strings.Join(lines, "\n")
	}
	return trim(got) == trim(doc)
}

// firstHour is the walkthrough's state: the router under test and where
// its files are.
type firstHour struct {
	t       *testing.T
	rules   string
	dataDir string
	r       *runningRouter
	readme  map[string]string
	guide   map[string]string
}

// block returns a marked block of the README or the guide.
func (f *firstHour) block(name string) string {
	f.t.Helper()
	b, ok := f.readme[name]
	if !ok {
		b, ok = f.guide[name]
	}
	if !ok {
		f.t.Fatalf("no block marked first-hour: %s", name)
	}
	return b
}

// runBlock runs the router command of block name (against the router under
// test, with its rules and data) and checks its output against block
// want ("" checks nothing); it returns the exit code and both outputs.
func (f *firstHour) runBlock(name, want string) (int, string, string) {
	f.t.Helper()
	env, args := docCommand(f.t, f.block(name))
	for k, v := range env {
		f.t.Setenv(k, v)
	}
	switch args[0] {
	case "send":
		args = append(args, "--rules", f.rules, "--url", f.r.url)
	case "audit", "status":
		args = append(args, "--data-dir", f.dataDir)
	}
	code, out, stderr := runCmd(f.t, "", args...)
	if want != "" {
		got := normalize(out+stderr, f.r.url, f.dataDir)
		if exp := f.block(want); !sameText(got, exp) {
			f.t.Fatalf("%s printed:\n%s\nthe docs (%s) say:\n%s", name, got, want, exp)
		}
	}
	return code, out, stderr
}

// curlBlock runs the curl command of block name and checks the body
// against block want.
func (f *firstHour) curlBlock(name, want string, env map[string]string) {
	f.t.Helper()
	words := shellWords(f.block(name), env)
	if words[0] != "curl" {
		f.t.Fatalf("%s: not a curl command: %q", name, f.block(name))
	}
	var url, body string
	header := http.Header{}
	for i := 1; i < len(words); i++ {
		switch words[i] {
		case "-sS":
		case "-H":
			k, v, _ := strings.Cut(words[i+1], ":")
			header.Set(k, strings.TrimSpace(v))
			i++
		case "-d":
			body = words[i+1]
			i++
		default:
			url = strings.Replace(words[i], "http://localhost:8080", f.r.url, 1)
		}
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if exp := f.block(want); !sameText(normalize(string(got), f.r.url, f.dataDir), exp) {
		f.t.Fatalf("%s answered %d:\n%s\nthe docs (%s) say:\n%s", name, resp.StatusCode, got, want, exp)
	}
}

// edit applies a rules edit the guide shows: the block's text replaces old
// in file.
func (f *firstHour) edit(file, old, block string, subst ...string) {
	f.t.Helper()
	path := filepath.Join(f.rules, file)
	data, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		f.t.Fatalf("%s no longer holds %q, which the guide edits", file, old)
	}
	text := strings.NewReplacer(subst...).Replace(f.block(block))
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, text, 1)), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *firstHour) start() {
	f.r = startRouter(f.t, f.dataDir, "--rules", f.rules)
}

func TestFirstHour(t *testing.T) {
	f := &firstHour{t: t, rules: copyTree(t, "../../rules"), dataDir: t.TempDir(),
		readme: docBlocks(t, "../../README.md"), guide: docBlocks(t, "../../docs/first-hour.md")}

	// The README's quick start: serve, then send a signed sample.
	env, args := docCommand(t, f.block("serve"))
	if strings.Join(args, " ") != "serve" {
		t.Fatalf("the quick start runs %q", args)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	f.start()
	f.runBlock("send", "send-output")
	waitForFile(t, runFile(f.dataDir, "first-1"))
	file := filepath.Base(runFile(f.dataDir, "first-1"))
	if readme, _ := os.ReadFile("../../README.md"); !strings.Contains(string(readme), "data/pipelineruns/ci/"+file) {
		t.Fatalf("the README does not name the PipelineRun file %s", file)
	}

	// A redelivery: still 202, marked duplicate, in the audit too.
	f.runBlock("resend", "resend-output")
	waitUntil(t, "both audit records", func() bool {
		_, out, _ := f.runBlock("audit", "")
		return strings.Count(out, "first-1") == 2
	})
	f.runBlock("audit", "audit-output")

	// The second-terminal mistake: a second serve on the same data.
	_, args = docCommand(t, f.block("serve-again"))
	code, out, stderr := runCmd(t, "", append(args, "--rules", f.rules, "--data-dir", f.dataDir, "--listen", "127.0.0.1:0")...)
	if got := normalize(out+stderr, f.r.url, f.dataDir); code != 1 || !sameText(got, f.block("serve-again-output")) {
		t.Fatalf("a second serve exited %d:\n%s\nthe docs say:\n%s", code, got, f.block("serve-again-output"))
	}

	// An agent with a static token: the hash in a file, the file in the
	// endpoint; the running router reloads it.
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	tok := hex.EncodeToString(token)
	sum := sha256.Sum256([]byte(tok))
	tokens := filepath.Join(t.TempDir(), "release-agent.tokens")
	if err := os.WriteFile(tokens, []byte("sha256:"+hex.EncodeToString(sum[:])+" laptop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloads := len(f.r.logs.logLines("rules reloaded"))
	f.edit("root.yaml", "      # tokens: {file: /etc/switchyard/release-agent.tokens}\n", "agent-tokens", "./release-agent.tokens", tokens)
	waitUntil(t, "the reload", func() bool { return len(f.r.logs.logLines("rules reloaded")) > reloads })
	f.curlBlock("agent-staging", "agent-staging-output", map[string]string{"TOKEN": tok})
	f.curlBlock("agent-production", "agent-production-output", map[string]string{"TOKEN": tok})
	waitUntil(t, "the denial's audit record", func() bool {
		_, out, _ := f.runBlock("audit-denied", "")
		return strings.Contains(out, "deploy-2")
	})
	f.runBlock("audit-denied", "audit-denied-output")

	// A second source: its variable is not in the running router's
	// environment, so the reload fails and says to restart.
	const failed = "rules reload failed; keeping the last good rules"
	fails := len(f.r.logs.logLines(failed))
	f.edit("root.yaml", "sources:\n", "gitlab-source")
	waitUntil(t, "the failed reload", func() bool { return len(f.r.logs.logLines(failed)) > fails })
	msg := f.r.logs.logLines(failed)[fails]["error"].(string)
	if want := strings.TrimSpace(f.block("gitlab-reload-error")); !strings.Contains(strings.ReplaceAll(msg, f.rules, "rules"), want) {
		t.Fatalf("reload error:\n%s\nthe docs say it contains:\n%s", msg, want)
	}
	code, _, _ = f.runBlock("gitlab-send", "gitlab-send-404")
	if code != 1 {
		t.Fatalf("send to the new source before the restart exited %d", code)
	}
	f.r.stop(t)
	env, _ = docCommand(t, f.block("serve-gitlab"))
	for k, v := range env {
		t.Setenv(k, v)
	}
	f.start()
	f.runBlock("gitlab-send", "gitlab-send-output")
	f.r.stop(t)
}
