// Command router is Switchyard: it receives webhooks, routes them by the
// parent manifest and dispatches Tekton PipelineRuns. This package only
// wires the parts together; see internal/ for the behaviour.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `Switchyard event router.

Usage:
  router serve     [flags]           run the router (webhooks, queue, dispatch)
  router validate  [DIR]             check a rules directory; print file:line: problems
  router normalize --provider KIND   print the CloudEvent a webhook becomes
  router explain   --source NAME     show which triggers an event fires, and why not the others
  router send      --source NAME     post a signed sample webhook to a running router
  router dlq       list|show|retry   inspect dead-lettered work and queue it again
  router replay    --id ID | --since D   route stored events again with the current rules
  router status    --source S --id ID    the state of each target of an accepted event
  router audit     [--since D] [--id ID]  every ingest decision (accepted, duplicate, refused and why)
  router approve|reject ID [--source S]  release or drop the targets an approval gate holds

Run "router COMMAND -h" for the flags of a command.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	commands := map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) int{
		"serve":     cmdServe,
		"validate":  cmdValidate,
		"normalize": cmdNormalize,
		"explain":   cmdExplain,
		"send":      cmdSend,
		"dlq":       cmdDLQ,
		"replay":    cmdReplay,
		"status":    cmdStatus,
		"audit":     cmdAudit,
		"bench":     cmdBench,
		"approve":   cmdApprove, "reject": cmdReject,
	}
	cmd, ok := commands[args[0]]
	if !ok {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "router: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return cmd(ctx, args[1:], stdin, stdout, stderr)
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
