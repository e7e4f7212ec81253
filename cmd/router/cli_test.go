package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestCLIExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // in stdout
		wantErr  string // in stderr
	}{
		{name: "help", args: []string{"--help"}, wantOut: "Operating it:"},
		{name: "help command", args: []string{"help", "replay"}, wantOut: "router replay"},
		{name: "command help", args: []string{"validate", "--help"}, wantOut: "router validate [DIR]"},
		{name: "short help", args: []string{"dlq", "retry", "-h"}, wantOut: "router dlq retry --all --app web"},
		{name: "no command", args: nil, wantCode: 2, wantErr: "Usage:"},
		{name: "unknown command", args: []string{"serv"}, wantCode: 2, wantErr: "unknown command \"serv\" for \"router\"\n\nDid you mean this?\n\tserve"},
		{name: "unknown flag", args: []string{"validate", "--listen", ":1"}, wantCode: 2, wantErr: "router validate: unknown flag: --listen\nRun 'router validate --help' for usage."},
		{name: "single-dash long flag", args: []string{"validate", "-rules", "x"}, wantCode: 2, wantErr: "unknown shorthand flag: 'r' in -rules (long flags take two dashes: --rules)"},
		{name: "single-dash long flag with a value", args: []string{"replay", "-since=2h"}, wantCode: 2, wantErr: "(long flags take two dashes: --since=2h)"},
		{name: "unknown single-dash flag", args: []string{"validate", "-zz"}, wantCode: 2, wantErr: "unknown shorthand flag: 'z' in -zz\n"},
		{name: "too many arguments", args: []string{"validate", "a", "b"}, wantCode: 2, wantErr: "accepts at most 1 arg(s), received 2"},
		{name: "rules twice", args: []string{"validate", "--rules", "a", "b"}, wantCode: 2, wantErr: "give the rules directory once"},
		{name: "required flag", args: []string{"explain", "--body", "x.json"}, wantCode: 2, wantErr: `required flag(s) "source" not set`},
		{name: "bad output", args: []string{"audit", "-o", "yaml"}, wantCode: 2, wantErr: `--output "yaml": want text or json`},
		{name: "negative defer-above", args: []string{"serve", "--defer-above", "-1"}, wantCode: 2, wantErr: "--defer-above -1: want 0 (never defer) or more"},
		{name: "dlq without subcommand", args: []string{"dlq"}, wantCode: 2, wantErr: "give a subcommand: list, show or retry"},
		{name: "dlq bad sequence", args: []string{"dlq", "show", "x"}, wantCode: 2, wantErr: `"x" is not a dead-letter sequence number`},
		{name: "replay needs one selector", args: []string{"replay"}, wantCode: 2, wantErr: "give exactly one of --id ID or --since DURATION"},
		{name: "replay both selectors", args: []string{"replay", "--id", "a", "--since", "1h"}, wantCode: 2, wantErr: "[id since] were all set"},
		{name: "bench args before --", args: []string{"bench", "--listen"}, wantCode: 2, wantErr: "unknown flag: --listen"},
		{name: "command failure", args: []string{"validate", "--rules", "testdata/no-such-dir"}, wantCode: 1, wantOut: "does not exist"},
		{name: "completion", args: []string{"completion", "bash"}, wantOut: "__start_router"},
		{name: "completion of a flag value", args: []string{"__complete", "explain", "-o", ""}, wantOut: "text\njson\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q in stdout, %q in stderr", code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
}

// TestCLIFlagsBelongToTheirCommand: serve's flags are not on validate, and
// every command documents itself with an example.
func TestCLIFlagsBelongToTheirCommand(t *testing.T) {
	_, out, _ := runCmd(t, "", "validate", "--help")
	for _, serveOnly := range []string{"--listen", "--nats-url", "--dispatch-concurrency"} {
		if strings.Contains(out, serveOnly) {
			t.Errorf("validate --help shows serve's %s:\n%s", serveOnly, out)
		}
	}
	_, out, _ = runCmd(t, "", "serve", "--help")
	for _, flag := range []string{"--listen string", "--nats-url string", "--watch-rules", `(default "./rules")`, "(default 20s)"} {
		if !strings.Contains(out, flag) {
			t.Errorf("serve --help lacks %q", flag)
		}
	}

	root := newRootCmd(ioStreams{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			// Commands still parsing their own flags (the commands map)
			// document themselves in their -h.
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" || sub.DisableFlagParsing {
				continue
			}
			if sub.Example == "" || sub.Short == "" {
				t.Errorf("%s has no example or short description", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(root)
}

// TestLegacyCommand: a command registered in the commands map gets every
// argument after its name, --help included, and its exit code.
func TestLegacyCommand(t *testing.T) {
	commands["legacy-test"] = func(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) int {
		fmt.Fprintf(stdout, "%q", args)
		return 3
	}
	defer delete(commands, "legacy-test")
	code, out, _ := runCmd(t, "", "legacy-test", "-x", "--help", "a")
	if code != 3 || out != `["-x" "--help" "a"]` {
		t.Fatalf("exit %d, %s", code, out)
	}
}
