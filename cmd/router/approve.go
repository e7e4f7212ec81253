package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
)

// approveOptions are the flags of `router approve ID` and `router reject ID`.
type approveOptions struct {
	conn    *opsFlags
	reject  bool
	id      string
	source  string
	reason  string
	command string
}

func newApproveCmd(s ioStreams) *cobra.Command { return newDecideCmd(s, "approve") }

func newRejectCmd(s ioStreams) *cobra.Command { return newDecideCmd(s, "reject") }

// newDecideCmd is `router approve ID` or `router reject ID`: operators
// release or drop the targets an approval gate holds.
func newDecideCmd(s ioStreams, name string) *cobra.Command {
	o := approveOptions{reject: name == "reject", command: "router " + name}
	verb := map[string]string{"approve": "Release", "reject": "Drop"}[name]
	cmd, conn := newOpsCmd(name, &cobra.Command{
		Use:   name + " ID [--source NAME] [--reason TEXT]",
		Short: verb + " the targets an approval gate holds for an event",
		Long: verb + ` the targets of an accepted event that wait in the state
awaiting-approval (see docs/approvals.md), as an operator: whoever reaches the
routers' NATS is trusted with it, as with router replay. The decision is
audited as operator:<user>. Approvals carry no parameters: what runs is what
was requested, still judged by the rules in force at dispatch.`,
		Example: fmt.Sprintf(`  # The id is the 202's "id"
  router %[1]s evt-42 --reason "change CHG-1234"

  # Two sources accepted events with this id: say which
  router %[1]s 3f1c-delivery --source github`, name) + fmt.Sprintf(opsExampleConn, name+" evt-42"),
		Args: cobra.ExactArgs(1),
	})
	o.conn = conn
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		o.id = args[0]
		if err := runApprove(cmd.Context(), o, s.Out, s.Err); err != nil {
			fmt.Fprintf(s.Err, "%s: %v\n", o.command, err)
			return exitCode(1)
		}
		return nil
	}
	f := cmd.Flags()
	f.StringVar(&o.source, "source", "", "the source (hook or endpoint name) that accepted the event; needed only when several hold this id")
	f.StringVar(&o.reason, "reason", "", "why, for the audit trail")
	return cmd
}

// runApprove decides on a held event as an operator: whoever reaches the
// routers' NATS is trusted with it, as with `router replay`. Dispatch
// still judges the released targets under the rules in force.
func runApprove(ctx context.Context, o approveOptions, stdout, stderr io.Writer) error {
	q, closeAll, err := o.conn.open(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	found, err := q.Approvals(ctx, o.source, o.id)
	if err != nil {
		return err
	}
	if len(found) > 1 {
		var sources []string
		for _, a := range found {
			sources = append(sources, a.Source)
		}
		return fmt.Errorf("events of several sources have id %q (%s): add --source", o.id, strings.Join(sources, ", "))
	}
	ap := found[0]
	by := operator()
	got, err := q.Decide(ctx, queue.Decision{Source: ap.Source, EventID: o.id, Approve: !o.reject, By: by, Reason: o.reason})
	rec := policy.Record{Kind: "approval", Source: ap.Source, Identity: by, EventID: o.id, Type: ap.Event.Type(),
		Rule: strings.Join(ap.Gates, ","), Targets: len(ap.Targets), Reason: o.reason, Status: 200}
	switch {
	case errors.Is(err, queue.ErrApprovalExpired):
		rec.Decision, rec.Status, rec.Reason = policy.DecisionExpired, 409, err.Error()
	case err != nil:
		return err
	case o.reject:
		rec.Decision = policy.DecisionRejected
	default:
		rec.Decision = policy.DecisionApproved
	}
	q.Audit(rec)
	flushCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if ferr := q.FlushAudit(flushCtx); ferr != nil {
		fmt.Fprintf(stderr, "warning: the audit record of this decision was not stored: %v\n", ferr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "event %s of %s: %s by %s\n", o.id, got.Source, got.State, got.DecidedBy)
	for _, t := range got.Targets {
		fmt.Fprintf(stdout, "  %s/%s -> %s/%s\n", t.App, t.Trigger, t.Namespace, t.Name)
	}
	return nil
}

// operator names the person at the terminal for the audit trail.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "operator:" + u.Username
	}
	return "operator"
}
