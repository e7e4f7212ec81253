// Command router is Switchyard: it receives webhooks, routes them by the
// parent manifest and dispatches Tekton PipelineRuns. This package only
// wires the parts together; see internal/ for the behaviour.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// ioStreams are the standard streams a command reads and writes.
type ioStreams struct {
	In       io.Reader
	Out, Err io.Writer
}

// exitCode is a command's failure, already reported on stderr: run returns
// it as the exit status without printing anything more.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// codeErr turns a command's exit status into RunE's error.
func codeErr(code int) error {
	if code == 0 {
		return nil
	}
	return exitCode(code)
}

// run executes one command and returns the process exit code: 0, 1 when
// the command failed, 2 for a usage error (unknown command or flag, wrong
// arguments).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(ioStreams{In: stdin, Out: stdout, Err: stderr})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	}
	// Everything else is cobra's: the command line itself is wrong.
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), strings.TrimRight(err.Error(), "\n"))
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	return 2
}

// newRootCmd builds the command tree; s are the streams every command uses.
func newRootCmd(s ioStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "router",
		Short: "Switchyard routes verified webhooks to Tekton PipelineRuns",
		Long: `Switchyard receives webhooks from Git hosts, registries and automation, verifies
them, normalizes them to CloudEvents, routes them by the parent manifest in
rules/, queues the work on NATS JetStream and dispatches it as Tekton
PipelineRuns.`,
		Example: `  # Check the rules, then run the router on a laptop (PipelineRuns as YAML files)
  router validate rules
  router serve --rules rules --dispatch dir

  # See which triggers an event fires, and why not the others
  router explain --source github -H 'X-GitHub-Event: push' --body push.json`,
		Version:           versionString(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Without a command: the help, on stderr, and a usage error.
			cmd.SetOut(s.Err)
			_ = cmd.Help()
			return exitCode(2)
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(singleDashHint)
	root.AddGroup(&cobra.Group{ID: "rules", Title: "Writing rules:"},
		&cobra.Group{ID: "run", Title: "Running the router:"},
		&cobra.Group{ID: "ops", Title: "Operating it:"})
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("rules", newValidateCmd(s), newNormalizeCmd(s), newExplainCmd(s), newImportCmd(s))
	add("run", newServeCmd(s), newSendCmd(s), newBenchCmd(s), newBenchLimitCmd(s), newVersionCmd(s))
	add("ops", newDLQCmd(s), newReplayCmd(s), newStatusCmd(s), newAuditCmd(s), newRecoverCmd(s), newApproveCmd(s), newRejectCmd(s))
	for name, fn := range commands {
		add("ops", newLegacyCmd(name, fn, s))
	}
	return root
}

// commands are subcommands not yet ported to cobra: each parses its own
// flags (it gets every argument after its name, --help included).
var commands = map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) int{}

// newLegacyCmd wraps a command that parses its own flags.
func newLegacyCmd(name string, fn func(context.Context, []string, io.Reader, io.Writer, io.Writer) int, s ioStreams) *cobra.Command {
	return &cobra.Command{
		Use:                name + " [flags]",
		Short:              "see router " + name + " --help",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return codeErr(fn(cmd.Context(), args, s.In, s.Out, s.Err))
		},
	}
}

// headerFlags collects repeated -H 'Name: value' flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q: want 'Name: value'", v)
	}
	*h = append(*h, v)
	return nil
}

// Type names the value in help: --header 'Name: value'.
func (h *headerFlags) Type() string { return "'Name: value'" }

// checkOutput refuses an -o value no command prints.
func checkOutput(format string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("--output %q: want text or json", format)
	}
	return nil
}

// fixedCompletion completes a flag from a fixed list of values.
func fixedCompletion(values ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
}

// singleDashHint adds to pflag's error for -name (a long flag with one
// dash, which Go's flag package took and pflag reads as shorthands) the
// flag meant.
func singleDashHint(cmd *cobra.Command, err error) error {
	_, arg, ok := strings.Cut(err.Error(), "' in -")
	if !ok || !strings.HasPrefix(err.Error(), "unknown shorthand flag") {
		return err
	}
	name, _, _ := strings.Cut(arg, "=")
	if cmd.Flags().Lookup(name) == nil {
		return err
	}
	return fmt.Errorf("%w (long flags take two dashes: --%s)", err, arg)
}
