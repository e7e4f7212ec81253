package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/report"
)

// The operator commands (dlq, replay, status, audit) work on the queue of
// a running or a stopped router: through --nats-url, or through the
// connection file a running router's embedded server leaves in its data
// directory, or, when no router runs, by opening the data directory's store
// themselves.

// natsConnFile is where serve records how to reach its embedded server.
const natsConnFile = "nats.json"

// connInfo is the content of natsConnFile. The token is what the embedded
// server requires of every client; the file is readable by its owner only.
type connInfo struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate nats token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func writeConnInfo(path string, ci connInfo) error {
	data, err := json.Marshal(ci)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// opsFlags are the connection flags every operator command takes.
type opsFlags struct {
	command string
	dataDir string
	natsURL string
	auth    queue.ClientAuth
}

// errAuthNeedsURL: credential and TLS files are for an external server; the
// embedded one is reached in-process or with its generated token.
var errAuthNeedsURL = errors.New("--nats-creds, --nats-nkey, --nats-user-file and --nats-tls-* need --nats-url")

// stringFlags is what natsAuthFlags needs of a flag set: a stdlib one
// (commands that parse their own flags) or a pflag one.
type stringFlags interface {
	StringVar(p *string, name, value, usage string)
}

// natsAuthFlags registers the credential and TLS files of an external NATS
// server, so no secret has to be in --nats-url.
func natsAuthFlags(fs stringFlags, a *queue.ClientAuth) {
	fs.StringVar(&a.CredsFile, "nats-creds", "", "with --nats-url: a .creds file (user JWT and nkey seed)")
	fs.StringVar(&a.NkeyFile, "nats-nkey", "", "with --nats-url: an nkey seed file")
	fs.StringVar(&a.UserFile, "nats-user-file", "", "with --nats-url: a file holding one line user:password")
	fs.StringVar(&a.TLSCA, "nats-tls-ca", "", "with --nats-url: PEM bundle of the CA the server's certificate must chain to")
	fs.StringVar(&a.TLSCert, "nats-tls-cert", "", "with --nats-url: client certificate (PEM), with --nats-tls-key")
	fs.StringVar(&a.TLSKey, "nats-tls-key", "", "with --nats-url: the client certificate's key (PEM)")
}

// addFlags registers the connection flags on fs.
func (o *opsFlags) addFlags(fs stringFlags) {
	fs.StringVar(&o.dataDir, "data-dir", "./data", "the router's data directory (its embedded NATS server's connection file, or its store when no router runs)")
	fs.StringVar(&o.natsURL, "nats-url", "", "the NATS server the routers use (as given to serve --nats-url)")
	natsAuthFlags(fs, &o.auth)
}

// newOpsCmd returns cmd with the connection flags on it, and where they go.
func newOpsCmd(name string, cmd *cobra.Command) (*cobra.Command, *opsFlags) {
	o := &opsFlags{command: "router " + name}
	o.addFlags(cmd.Flags())
	_ = cmd.MarkFlagDirname("data-dir")
	return cmd, o
}

// opsExampleConn is the connection part every operator command's help shows.
const opsExampleConn = `

  # Against the routers' external NATS cluster
  router %s --nats-url nats://nats.switchyard:4222 --nats-creds ops.creds`

// open connects to the queue and returns it with a function that closes
// everything it opened.
func (o *opsFlags) open(ctx context.Context) (*queue.Queue, func(), error) {
	nc, closeAll, err := o.connect()
	if err != nil {
		return nil, nil, err
	}
	// Attach, not Open: the streams stay as the routers configured them.
	q, err := queue.Attach(ctx, nc, nil)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return q, closeAll, nil
}

// connect reaches the routers' NATS server: --nats-url, or a running
// router's embedded server through its connection file, or else, when no
// router runs, an embedded server of its own on the data directory's store.
func (o *opsFlags) connect() (*nats.Conn, func(), error) {
	opts := []nats.Option{nats.Name("switchyard-ops"), nats.Timeout(5 * time.Second)}
	if o.natsURL != "" {
		nc, err := queue.Connect(o.natsURL, o.auth, opts...)
		if err != nil {
			return nil, nil, err
		}
		return nc, nc.Close, nil
	}
	if o.auth != (queue.ClientAuth{}) {
		return nil, nil, errAuthNeedsURL
	}
	// A running router: its embedded server, through the connection file.
	connFile := filepath.Join(o.dataDir, natsConnFile)
	data, err := os.ReadFile(connFile)
	if err == nil {
		var ci connInfo
		if err := json.Unmarshal(data, &ci); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", connFile, err)
		}
		nc, err := nats.Connect(ci.URL, append(opts, nats.Token(ci.Token))...)
		if err == nil {
			return nc, nc.Close, nil
		}
		// A file left by a router that was killed: no server answers, so
		// none holds the store either.
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	storeDir := filepath.Join(o.dataDir, "jetstream")
	if _, err := os.Stat(storeDir); err != nil {
		return nil, nil, fmt.Errorf("no router reachable and no store at %s (use --data-dir or --nats-url)", storeDir)
	}
	// No router answers: open the store ourselves, but only if no process
	// holds it (a router started with --nats-listen "" has no connection
	// file); holding the lock meanwhile keeps a router from starting on it.
	lock, err := queue.LockDataDir(o.dataDir, queue.LockHolder{Command: o.command})
	if err != nil {
		if errors.Is(err, queue.ErrDataDirLocked) {
			return nil, nil, fmt.Errorf("%w, and it cannot be reached through %s: not opening a store another process holds (start the router with --nats-listen, or use --nats-url)", err, connFile)
		}
		return nil, nil, err
	}
	emb, err := queue.StartEmbedded(queue.EmbeddedOptions{StoreDir: storeDir})
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	nc, err := emb.Connect(opts...)
	if err != nil {
		emb.Shutdown()
		lock.Unlock()
		return nil, nil, err
	}
	return nc, func() { nc.Close(); emb.Shutdown(); lock.Unlock() }, nil
}

// newTable returns the writer of a command's table output; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// sinceTime is the start of the past duration d; zero (everything) when d
// is not positive.
func sinceTime(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(-d)
}

func newDLQCmd(s ioStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect dead-lettered work and queue it again",
		Long: `Work that dispatch could not do (an invalid template, a forbidden namespace,
retries exhausted) is dead-lettered with the reason. list and show read the
dead letters; retry queues them for dispatch again and removes them.`,
		Example: `  # The dead letters of the router whose data directory is ./data
  router dlq list

  # Fix the cause, then queue every dead letter of app web again
  router dlq retry --all --app web`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("give a subcommand: list, show or retry")
		},
	}
	cmd.AddCommand(newDLQListCmd(s), newDLQShowCmd(s), newDLQRetryCmd(s))
	return cmd
}

func newDLQListCmd(s ioStreams) *cobra.Command {
	var output, app string
	cmd, conn := newOpsCmd("dlq list", &cobra.Command{
		Use:     "list [--app APP] [-o json]",
		Short:   "List the dead letters, oldest first",
		Example: "  router dlq list\n  router dlq list --app web -o json" + fmt.Sprintf(opsExampleConn, "dlq list"),
		Args:    cobra.NoArgs,
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(output); err != nil {
			return err
		}
		return codeErr(runDLQList(cmd.Context(), conn, app, output, s))
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&app, "app", "", "only the dead letters of this app")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion("text", "json"))
	return cmd
}

func newDLQShowCmd(s ioStreams) *cobra.Command {
	cmd, conn := newOpsCmd("dlq show", &cobra.Command{
		Use:     "show SEQ",
		Short:   "Print one dead letter as JSON",
		Example: "  # The work, the reason and the last error of dead letter 12\n  router dlq show 12",
		Args:    cobra.ExactArgs(1),
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		seqs, err := parseSeqs(args)
		if err != nil {
			return err
		}
		return codeErr(runDLQShow(cmd.Context(), conn, seqs[0], s))
	}
	return cmd
}

func newDLQRetryCmd(s ioStreams) *cobra.Command {
	var app string
	var all bool
	cmd, conn := newOpsCmd("dlq retry", &cobra.Command{
		Use:   "retry (SEQ... | --all [--app APP])",
		Short: "Queue dead letters for dispatch again and remove them",
		Example: `  # Retry dead letters 12 and 13
  router dlq retry 12 13

  # Retry every dead letter of app web
  router dlq retry --all --app web`,
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		seqs, err := parseSeqs(args)
		if err != nil {
			return err
		}
		if (len(seqs) == 0) == !all {
			return errors.New("give dead-letter sequence numbers or --all, not both")
		}
		if app != "" && !all {
			return errors.New("--app selects with --all only")
		}
		return codeErr(runDLQRetry(cmd.Context(), conn, seqs, all, app, s))
	}
	cmd.Flags().StringVar(&app, "app", "", "with --all: only the dead letters of this app")
	cmd.Flags().BoolVar(&all, "all", false, "retry every dead letter (of --app, if given)")
	return cmd
}

// parseSeqs reads dead-letter sequence numbers.
func parseSeqs(args []string) ([]uint64, error) {
	var seqs []uint64
	for _, a := range args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q is not a dead-letter sequence number", a)
		}
		seqs = append(seqs, n)
	}
	return seqs, nil
}

func runDLQShow(ctx context.Context, conn *opsFlags, seq uint64, s ioStreams) int {
	q, closeAll, err := conn.open(ctx)
	if err != nil {
		fmt.Fprintf(s.Err, "router dlq show: %v\n", err)
		return 1
	}
	defer closeAll()
	dl, err := q.DeadLetterAt(ctx, seq)
	if err != nil {
		fmt.Fprintf(s.Err, "router dlq show: %v\n", err)
		return 1
	}
	return printJSON(s.Out, s.Err, dl)
}

func runDLQList(ctx context.Context, conn *opsFlags, app, output string, s ioStreams) int {
	q, closeAll, err := conn.open(ctx)
	if err != nil {
		fmt.Fprintf(s.Err, "router dlq list: %v\n", err)
		return 1
	}
	defer closeAll()
	dls, err := deadLettersOf(ctx, q, app)
	if err != nil {
		fmt.Fprintf(s.Err, "router dlq list: %v\n", err)
		return 1
	}
	if output == "json" {
		if dls == nil {
			dls = []queue.DeadLetter{}
		}
		return printJSON(s.Out, s.Err, dls)
	}
	tw := newTable(s.Out)
	fmt.Fprintln(tw, "SEQ\tTIME\tAPP\tTRIGGER\tEVENT\tREASON\tATTEMPTS\tLAST ERROR")
	for _, dl := range dls {
		w := dl.Work
		id := ""
		if w.Event.Context != nil {
			id = w.Event.ID()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", dl.Seq, dl.Time.Format(time.RFC3339), w.Target.App,
			w.Target.Trigger, id, dl.Reason, dl.Attempts, oneLine(dl.LastError, 100))
	}
	_ = tw.Flush()
	return 0
}

func runDLQRetry(ctx context.Context, conn *opsFlags, seqs []uint64, all bool, app string, s ioStreams) int {
	q, closeAll, err := conn.open(ctx)
	if err != nil {
		fmt.Fprintf(s.Err, "router dlq retry: %v\n", err)
		return 1
	}
	defer closeAll()
	if all {
		dls, err := deadLettersOf(ctx, q, app)
		if err != nil {
			fmt.Fprintf(s.Err, "router dlq retry: %v\n", err)
			return 1
		}
		for _, dl := range dls {
			seqs = append(seqs, dl.Seq)
		}
	}
	code := 0
	for _, seq := range seqs {
		w, err := q.RetryDeadLetter(ctx, seq)
		if err != nil {
			fmt.Fprintf(s.Err, "router dlq retry: %v\n", err)
			code = 1
			continue
		}
		fmt.Fprintf(s.Out, "requeued %d: %s/%s -> %s/%s\n", seq, w.Target.App, w.Target.Trigger, w.Target.Namespace, w.Target.Name)
	}
	return code
}

func deadLettersOf(ctx context.Context, q *queue.Queue, app string) ([]queue.DeadLetter, error) {
	dls, err := q.DeadLetters(ctx)
	if err != nil || app == "" {
		return dls, err
	}
	var out []queue.DeadLetter
	for _, dl := range dls {
		if dl.Work.Target.App == app {
			out = append(out, dl)
		}
	}
	return out, nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-1] + "…"
	}
	return s
}

// statusOptions are the flags of `router status`.
type statusOptions struct {
	source     string
	id         string
	output     string
	kubeconfig string
}

func newStatusCmd(s ioStreams) *cobra.Command {
	o := statusOptions{}
	cmd, conn := newOpsCmd("status", &cobra.Command{
		Use:   "status --source NAME --id ID [-o json]",
		Short: "Show the state of each target of an accepted event",
		Long: `Shows an accepted event and, for each (app, trigger) it fired, the
PipelineRun, its state (queued, created, running, succeeded, run-failed,
failed and retrying, dead-lettered, ...), attempts and reason. The same as
GET /v1/events/{id}. Whether a created run is running, succeeded or
run-failed is read from the cluster (--kubeconfig, else $KUBECONFIG, else
the in-cluster config); without one, created runs show as created.`,
		Example: `  # The event id is the 202's "id" (for GitHub, the X-GitHub-Delivery header)
  router status --source github --id 3f1c-delivery

  router status --source release-agent --id evt-42 -o json` + fmt.Sprintf(opsExampleConn, "status --source github --id 3f1c-delivery"),
		Args: cobra.NoArgs,
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(o.output); err != nil {
			return err
		}
		return codeErr(runStatus(cmd.Context(), o, conn, s.Out, s.Err))
	}
	f := cmd.Flags()
	f.StringVar(&o.source, "source", "", "the source (hook or endpoint name) that accepted the event")
	f.StringVar(&o.id, "id", "", "the event id (the 202's id)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig path, to read the runs' own states (default $KUBECONFIG, then in-cluster config)")
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion("text", "json"))
	return cmd
}

func runStatus(ctx context.Context, o statusOptions, conn *opsFlags, stdout, stderr io.Writer) int {
	q, closeAll, err := conn.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "router status: %v\n", err)
		return 1
	}
	defer closeAll()
	st, err := q.Status(ctx, o.source, o.id)
	if err != nil {
		fmt.Fprintf(stderr, "router status: %v\n", err)
		return 1
	}
	if client, err := newTektonClient(o.kubeconfig, 0, 0); err != nil {
		fmt.Fprintf(stderr, "router status: the runs' own states are not shown: %v\n", err)
	} else if client != nil {
		report.NewRunStates(client).Fill(ctx, &st)
	}
	if o.output == "json" {
		return printJSON(stdout, stderr, st)
	}
	fmt.Fprintf(stdout, "event %s (%s) from %s, identity %s, accepted %s\n", st.ID, st.Type, st.Source, st.Identity, st.Accepted.Format(time.RFC3339))
	tw := newTable(stdout)
	fmt.Fprintln(tw, "APP\tTRIGGER\tPIPELINERUN\tSTATE\tATTEMPTS\tREASON")
	for _, t := range st.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%d\t%s\n", t.App, t.Trigger, t.Namespace, t.Name, t.State, t.Attempts, oneLine(t.Reason, 100))
	}
	_ = tw.Flush()
	return 0
}

// auditOptions are the flags of `router audit`.
type auditOptions struct {
	since    time.Duration
	identity string
	source   string
	decision string
	id       string
	output   string
}

func newAuditCmd(s ioStreams) *cobra.Command {
	o := auditOptions{}
	cmd, conn := newOpsCmd("audit", &cobra.Command{
		Use:   "audit [--since DURATION] [--id ID] [--decision D] [-o json]",
		Short: "List every ingest decision: accepted, duplicate, refused and why",
		Long: `Lists the audit records of the last --since: every request the router judged,
with its decision, HTTP status, source, identity, event and reason (refusals
name the rule or scope). Records are kept 90 days.`,
		Example: `  # Everything refused in the last hour
  router audit --since 1h --decision denied

  # One event's decisions, as JSON lines
  router audit --id 3f1c-delivery -o json` + fmt.Sprintf(opsExampleConn, "audit"),
		Args: cobra.NoArgs,
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(o.output); err != nil {
			return err
		}
		return codeErr(runAudit(cmd.Context(), o, conn, s.Out, s.Err))
	}
	f := cmd.Flags()
	f.DurationVar(&o.since, "since", 24*time.Hour, "how far back (0: everything kept, 90 days)")
	f.StringVar(&o.identity, "identity", "", "only decisions about this identity (e.g. source:github)")
	f.StringVar(&o.source, "source", "", "only this hook source or endpoint")
	f.StringVar(&o.decision, "decision", "", "only this decision: accepted, unauthenticated, denied (also: deny), rate-limited, invalid, unavailable")
	f.StringVar(&o.id, "id", "", "only decisions about the event with this id (the 202's id)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json (one record per line)")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion("text", "json"))
	_ = cmd.RegisterFlagCompletionFunc("decision", fixedCompletion("accepted", "unauthenticated", "denied", "rate-limited", "invalid", "unavailable"))
	return cmd
}

// auditReason is the REASON column of `router audit`: the rule that
// refused, the reason, and for a webhook judged behind its 202 during a
// burst, that its sender was answered 202 whatever the STATUS says.
func auditReason(r policy.Record) string {
	reason := r.Reason
	if r.Rule != "" {
		reason = r.Rule + ": " + reason
	}
	if r.Deferred {
		reason = strings.TrimSuffix("judged behind a 202 (burst); "+reason, "; ")
	}
	return reason
}

func runAudit(ctx context.Context, o auditOptions, conn *opsFlags, stdout, stderr io.Writer) int {
	if o.decision == "deny" {
		o.decision = policy.DecisionDenied
	}
	q, closeAll, err := conn.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "router audit: %v\n", err)
		return 1
	}
	defer closeAll()
	tw := newTable(stdout)
	if o.output != "json" {
		fmt.Fprintln(tw, "TIME\tDECISION\tSTATUS\tSOURCE\tIDENTITY\tEVENT\tTYPE\tREASON")
	}
	enc := json.NewEncoder(stdout)
	err = q.AuditRecords(ctx, sinceTime(o.since), func(r policy.Record) bool {
		if (o.identity != "" && r.Identity != o.identity) || (o.source != "" && r.Source != o.source) || (o.decision != "" && r.Decision != o.decision) ||
			(o.id != "" && r.EventID != o.id) {
			return true
		}
		if o.output == "json" {
			_ = enc.Encode(r)
			return true
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Time.Format(time.RFC3339), r.Decision, r.Status, r.Source, r.Identity, r.EventID, r.Type, oneLine(auditReason(r), 100))
		return true
	})
	_ = tw.Flush()
	if err != nil {
		fmt.Fprintf(stderr, "router audit: %v\n", err)
		return 1
	}
	return 0
}
