package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// replayOptions are the flags of `router replay`.
type replayOptions struct {
	rulesDir string
	id       string
	source   string
	since    time.Duration
	app      string
	dryRun   bool
	force    bool
}

func newReplayCmd(s ioStreams) *cobra.Command {
	o := replayOptions{}
	cmd, conn := newOpsCmd("replay", &cobra.Command{
		Use:   "replay (--id ID | --since DURATION) [--app APP]",
		Short: "Route stored events again with the current rules",
		Long: `Routes accepted events again, from the events stream (kept 7 days), with the
current rules and under today's policy for the original sender. PipelineRuns
that already exist are not created again unless --force gives them new names.`,
		Example: `  # What would the last two hours of events start under today's rules?
  router replay --since 2h --dry-run

  # Run one event's web targets again, as new PipelineRuns
  router replay --id 3f1c-delivery --source github --app web --force` + fmt.Sprintf(opsExampleConn, "replay --since 2h"),
		Args: cobra.NoArgs,
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if (o.id == "") == (o.since == 0) {
			return errors.New("give exactly one of --id ID or --since DURATION")
		}
		return codeErr(runReplay(cmd.Context(), o, conn, s.Out, s.Err))
	}
	f := cmd.Flags()
	f.StringVar(&o.rulesDir, "rules", "./rules", "the rules to route the stored events with (the current ones)")
	f.StringVar(&o.id, "id", "", "replay the event with this id")
	f.StringVar(&o.source, "source", "", "with --id: only the event of this source")
	f.DurationVar(&o.since, "since", 0, "replay every event accepted in this past duration (e.g. 2h)")
	f.StringVar(&o.app, "app", "", "only the targets of this app")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what would be queued; queue nothing")
	f.BoolVar(&o.force, "force", false, "create new PipelineRuns, with new names, even where the event's PipelineRuns exist")
	cmd.MarkFlagsMutuallyExclusive("id", "since")
	_ = cmd.MarkFlagDirname("rules")
	return cmd
}

func runReplay(ctx context.Context, o replayOptions, conn *opsFlags, stdout, stderr io.Writer) int {
	rules, err := routing.LoadDir(o.rulesDir, loadOptions())
	if err != nil {
		printRulesError(stderr, "replay", o.rulesDir, err)
		return 1
	}
	nc, closeAll, err := conn.connect()
	if err != nil {
		fmt.Fprintf(stderr, "router replay: %v\n", err)
		return 1
	}
	defer closeAll()
	// Attach, not Open: the streams stay as the routers configured them.
	q, err := queue.Attach(ctx, nc, nil)
	if err != nil {
		fmt.Fprintf(stderr, "router replay: %v\n", err)
		return 1
	}
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(stderr, "router replay: %v\n", err)
		return 1
	}
	events, err := storedEvents(ctx, q, o)
	if err == nil && len(events) == 0 {
		err = errors.New("no stored event matched (events are kept for 7 days)")
	}
	var orig map[eventKey]string
	if err == nil {
		orig, err = originalRevisions(ctx, q, events[0].Stored)
	}
	if err != nil {
		fmt.Fprintf(stderr, "router replay: %v\n", err)
		return 1
	}
	// The replay's key makes its work messages new to JetStream's duplicate
	// window; the PipelineRun names keep dispatch from creating anything
	// twice unless --force gives them new names.
	rp := &replayer{o: o, rules: rules, q: q, js: js, out: stdout, orig: orig,
		key: "replay-" + time.Now().UTC().Format("20060102T150405.000Z")}
	fmt.Fprintf(stdout, "rules revision now: %s\n", rules.Revision())
	for _, se := range events {
		if err := rp.replay(ctx, se); err != nil {
			fmt.Fprintf(stderr, "router replay: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "%d event(s), %d target(s)", len(events), rp.queued)
	if rp.refused > 0 {
		fmt.Fprintf(stdout, ", %d event(s) refused by policy", rp.refused)
	}
	if !o.force && !o.dryRun {
		fmt.Fprint(stdout, "; PipelineRuns that already exist are not created again (use --force for new runs)")
	}
	fmt.Fprintln(stdout)
	return 0
}

// storedEvents are the stored events o selects, oldest first.
func storedEvents(ctx context.Context, q *queue.Queue, o replayOptions) ([]queue.StoredEvent, error) {
	var events []queue.StoredEvent
	err := q.Events(ctx, sinceTime(o.since), func(se queue.StoredEvent) bool {
		if o.id == "" || (se.Event.ID() == o.id && (o.source == "" || se.Source == o.source)) {
			events = append(events, se)
		}
		return true
	})
	return events, err
}

// eventKey names an accepted event: ids are unique per source.
type eventKey struct{ source, id string }

// originalRevisions maps each event accepted since (about) from to the
// revision of the rules that routed it, from its audit record. Events
// accepted by a router older than the revision have none.
func originalRevisions(ctx context.Context, q *queue.Queue, from time.Time) (map[eventKey]string, error) {
	revs := map[eventKey]string{}
	// The record is written as the request is answered, just after the
	// event is stored; a minute covers the clocks of other replicas.
	err := q.AuditRecords(ctx, from.Add(-time.Minute), func(r policy.Record) bool {
		if r.Decision == policy.DecisionAccepted && r.Kind != replayKind && r.RulesRevision != "" && r.EventID != "" {
			revs[eventKey{r.Source, r.EventID}] = r.RulesRevision
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read the original rules revisions: %w", err)
	}
	return revs, nil
}

// replayKind is the Kind of the audit records replays write.
const replayKind = "replay"

// replayer routes stored events again with the current rules.
type replayer struct {
	o       replayOptions
	rules   *routing.Rules
	q       *queue.Queue
	js      jetstream.JetStream
	out     io.Writer
	key     string
	orig    map[eventKey]string
	queued  int
	refused int
}

// replay routes one stored event, judges it under today's policy, queues
// its targets (unless a dry run) and records what it did and under which
// revisions.
func (rp *replayer) replay(ctx context.Context, se queue.StoredEvent) error {
	ev := se.Event
	orig := rp.orig[eventKey{se.Source, ev.ID()}]
	shown := orig
	if shown == "" {
		shown = "unknown (no audit record of its acceptance with a revision)"
	}
	fmt.Fprintf(rp.out, "event %s %s (%s): first routed by rules %s\n", se.Source, ev.ID(), ev.Type(), shown)
	rec := policy.Record{Kind: replayKind, Source: se.Source, EventID: ev.ID(), Type: ev.Type(), Identity: identityOf(se),
		RulesRevision: rp.rules.Revision(), OriginalRulesRevision: orig}
	targets := rp.rules.Route(routing.Input{Source: se.Source, Event: &ev})
	// A replay is held to the same policy as the original request: the
	// sender's identity and principal under today's rules.
	if err := policy.JudgeStored(rp.rules, se.Source, &ev, targets); err != nil {
		rp.refused++
		fmt.Fprintf(rp.out, "refused %s %s (%s): %v\n", se.Source, ev.ID(), ev.Type(), err)
		rec.Decision, rec.Reason = policy.DecisionDenied, "replay refused: "+err.Error()
		return rp.audit(ctx, rec)
	}
	for _, t := range targets {
		if rp.o.app != "" && t.App != rp.o.app {
			continue
		}
		if rp.o.force {
			t.Name = routing.RunName(t.App, t.Trigger, se.Source, ev.ID()+"#"+rp.key, t.Index)
		}
		verb := "queued"
		if rp.o.dryRun {
			verb = "would queue"
		} else if err := rp.q.Requeue(ctx, queue.Work{Source: se.Source, Event: ev, Target: t}, rp.key); err != nil {
			return err
		}
		rp.queued++
		rec.Targets++
		fmt.Fprintf(rp.out, "%s %s %s (%s): %s/%s -> %s/%s\n", verb, se.Source, ev.ID(), ev.Type(), t.App, t.Trigger, t.Namespace, t.Name)
	}
	rec.Decision, rec.Reason = policy.DecisionAccepted, "replay"
	if rp.o.force {
		rec.Reason = "replay --force (new PipelineRuns)"
	}
	return rp.audit(ctx, rec)
}

// audit records a replay, not a dry run. Unlike a request's record it
// waits for JetStream's ack: the command exits right after.
func (rp *replayer) audit(ctx context.Context, rec policy.Record) error {
	if rp.o.dryRun {
		return nil
	}
	rec.Time = time.Now().UTC()
	data, err := json.Marshal(rec)
	if err == nil {
		_, err = rp.js.Publish(ctx, queue.AuditSubjectPrefix+rec.Decision, data)
	}
	if err != nil {
		return fmt.Errorf("audit record of the replay: %w", err)
	}
	return nil
}

// identityOf is the router identity that authenticated a stored event.
func identityOf(se queue.StoredEvent) string {
	id, _ := se.Event.Extensions()["identity"].(string)
	return id
}
