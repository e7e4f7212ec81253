package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strings"

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

func (o *approveOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.source, "source", "", "the source (hook or endpoint name) that accepted the event; needed only when several hold this id")
	fs.StringVar(&o.reason, "reason", "", "why, for the audit trail")
}

// cmdApprove is `router approve ID` (operators release held targets).
func cmdApprove(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cmdDecide(ctx, "approve", args, stdout, stderr)
}

// cmdReject is `router reject ID` (operators drop held targets).
func cmdReject(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cmdDecide(ctx, "reject", args, stdout, stderr)
}

func cmdDecide(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	fs, conn := newOpsFlagSet(name, stderr)
	o := approveOptions{conn: conn, reject: name == "reject", command: "router " + name}
	o.flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 { // ID first, flags after it
		o.id = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
	}
	if o.id == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: usage: %s ID [--source NAME] [--reason TEXT]\n", o.command, o.command)
		return 2
	}
	if err := runApprove(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", o.command, err)
		return 1
	}
	return 0
}

// runApprove decides on a held event as an operator: whoever reaches the
// routers' NATS is trusted with it, as with `router replay`. Dispatch
// still judges the released targets under the rules in force.
func runApprove(ctx context.Context, o approveOptions, stdout io.Writer) error {
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
