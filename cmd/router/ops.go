package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
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

// natsAuthFlags registers the credential and TLS files of an external NATS
// server, so no secret has to be in --nats-url.
func natsAuthFlags(fs *flag.FlagSet, a *queue.ClientAuth) {
	fs.StringVar(&a.CredsFile, "nats-creds", "", "with --nats-url: a .creds file (user JWT and nkey seed)")
	fs.StringVar(&a.NkeyFile, "nats-nkey", "", "with --nats-url: an nkey seed file")
	fs.StringVar(&a.UserFile, "nats-user-file", "", "with --nats-url: a file holding one line user:password")
	fs.StringVar(&a.TLSCA, "nats-tls-ca", "", "with --nats-url: PEM bundle of the CA the server's certificate must chain to")
	fs.StringVar(&a.TLSCert, "nats-tls-cert", "", "with --nats-url: client certificate (PEM), with --nats-tls-key")
	fs.StringVar(&a.TLSKey, "nats-tls-key", "", "with --nats-url: the client certificate's key (PEM)")
}

// newOpsFlagSet returns the flag set of operator command name, with the
// connection flags registered.
func newOpsFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *opsFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &opsFlags{command: "router " + name}
	fs.StringVar(&o.dataDir, "data-dir", "./data", "the router's data directory (its embedded NATS server's connection file, or its store when no router runs)")
	fs.StringVar(&o.natsURL, "nats-url", "", "the NATS server the routers use (as given to serve --nats-url)")
	natsAuthFlags(fs, &o.auth)
	return fs, o
}

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

const dlqUsage = `Usage:
  router dlq list  [-o json] [--app A]      the dead letters, oldest first
  router dlq show  SEQ                      one dead letter, as JSON
  router dlq retry SEQ... | --all [--app A] queue them for dispatch again and remove them

Connection flags (every subcommand): --data-dir DIR (default ./data), --nats-url URL,
and with --nats-url: --nats-creds FILE | --nats-nkey FILE | --nats-user-file FILE,
--nats-tls-ca FILE, --nats-tls-cert FILE --nats-tls-key FILE.
`

func cmdDLQ(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return 2
	}
	sub := args[0]
	fs, conn := newOpsFlagSet("dlq "+sub, stderr)
	output := fs.String("o", "text", "output format for list: text or json")
	app := fs.String("app", "", "only the dead letters of this app (list, retry --all)")
	all := fs.Bool("all", false, "retry every dead letter (of --app, if given)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var seqs []uint64
	for _, a := range fs.Args() {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			fmt.Fprintf(stderr, "router dlq %s: %q is not a dead-letter sequence number\n", sub, a)
			return 2
		}
		seqs = append(seqs, n)
	}
	switch {
	case sub == "list" && len(seqs) > 0, sub == "show" && len(seqs) != 1,
		sub == "retry" && (len(seqs) == 0) == !*all:
		fmt.Fprint(stderr, dlqUsage)
		return 2
	case sub != "list" && sub != "show" && sub != "retry":
		fmt.Fprintf(stderr, "router dlq: unknown subcommand %q\n\n%s", sub, dlqUsage)
		return 2
	}

	q, closeAll, err := conn.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "router dlq: %v\n", err)
		return 1
	}
	defer closeAll()

	switch sub {
	case "show":
		dl, err := q.DeadLetterAt(ctx, seqs[0])
		if err != nil {
			fmt.Fprintf(stderr, "router dlq show: %v\n", err)
			return 1
		}
		return printJSON(stdout, stderr, dl)
	case "list":
		dls, err := deadLettersOf(ctx, q, *app)
		if err != nil {
			fmt.Fprintf(stderr, "router dlq list: %v\n", err)
			return 1
		}
		if *output == "json" {
			if dls == nil {
				dls = []queue.DeadLetter{}
			}
			return printJSON(stdout, stderr, dls)
		}
		tw := newTable(stdout)
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
	default: // retry
		if *all {
			dls, err := deadLettersOf(ctx, q, *app)
			if err != nil {
				fmt.Fprintf(stderr, "router dlq retry: %v\n", err)
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
				fmt.Fprintf(stderr, "router dlq retry: %v\n", err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "requeued %d: %s/%s -> %s/%s\n", seq, w.Target.App, w.Target.Trigger, w.Target.Namespace, w.Target.Name)
		}
		return code
	}
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

func cmdReplay(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs, conn := newOpsFlagSet("replay", stderr)
	rulesDir := fs.String("rules", "./rules", "the rules to route the stored events with (the current ones)")
	id := fs.String("id", "", "replay the event with this id")
	source := fs.String("source", "", "with --id: only the event of this source")
	since := fs.Duration("since", 0, "replay every event accepted in this past duration (e.g. 2h)")
	app := fs.String("app", "", "only the targets of this app")
	dryRun := fs.Bool("dry-run", false, "print what would be queued; queue nothing")
	force := fs.Bool("force", false, "create new PipelineRuns, with new names, even where the event's PipelineRuns exist")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*id == "") == (*since == 0) || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "router replay: give exactly one of --id ID or --since DURATION")
		return 2
	}
	rules, err := routing.LoadDir(*rulesDir, loadOptions())
	if err != nil {
		printRulesError(stderr, "replay", *rulesDir, err)
		return 1
	}
	q, closeAll, err := conn.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "router replay: %v\n", err)
		return 1
	}
	defer closeAll()

	// The replay's key makes its work messages new to JetStream's duplicate
	// window; the PipelineRun names keep dispatch from creating anything
	// twice unless --force gives them new names.
	stamp := time.Now().UTC().Format("20060102T150405.000Z")
	key := "replay-" + stamp
	events, queued, refused := 0, 0, 0
	var failed error
	err = q.Events(ctx, sinceTime(*since), func(se queue.StoredEvent) bool {
		if *id != "" && (se.Event.ID() != *id || (*source != "" && se.Source != *source)) {
			return true
		}
		events++
		ev := se.Event
		targets := rules.Route(routing.Input{Source: se.Source, Event: &ev})
		// A replay is held to the same policy as the original request:
		// the sender's identity and principal under today's rules.
		if err := policy.JudgeStored(rules, se.Source, &ev, targets); err != nil {
			refused++
			fmt.Fprintf(stdout, "refused %s %s (%s): %v\n", se.Source, ev.ID(), ev.Type(), err)
			return true
		}
		for _, t := range targets {
			if *app != "" && t.App != *app {
				continue
			}
			if *force {
				t.Name = routing.RunName(t.App, t.Trigger, se.Source, ev.ID()+"#"+key, t.Index)
			}
			verb := "queued"
			if *dryRun {
				verb = "would queue"
			} else if err := q.Requeue(ctx, queue.Work{Source: se.Source, Event: ev, Target: t}, key); err != nil {
				failed = err
				return false
			}
			queued++
			fmt.Fprintf(stdout, "%s %s %s (%s): %s/%s -> %s/%s\n", verb, se.Source, ev.ID(), ev.Type(), t.App, t.Trigger, t.Namespace, t.Name)
		}
		return true
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		fmt.Fprintf(stderr, "router replay: %v\n", err)
		return 1
	}
	if events == 0 {
		fmt.Fprintln(stderr, "router replay: no stored event matched (events are kept for 7 days)")
		return 1
	}
	fmt.Fprintf(stdout, "%d event(s), %d target(s)", events, queued)
	if refused > 0 {
		fmt.Fprintf(stdout, ", %d event(s) refused by policy", refused)
	}
	if !*force && !*dryRun {
		fmt.Fprint(stdout, "; PipelineRuns that already exist are not created again (use --force for new runs)")
	}
	fmt.Fprintln(stdout)
	return 0
}

func cmdStatus(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs, conn := newOpsFlagSet("status", stderr)
	source := fs.String("source", "", "the source (hook or endpoint name) that accepted the event")
	id := fs.String("id", "", "the event id (the 202's id)")
	output := fs.String("o", "text", "output format: text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *source == "" || *id == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "router status: --source and --id are required")
		return 2
	}
	q, closeAll, err := conn.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "router status: %v\n", err)
		return 1
	}
	defer closeAll()
	st, err := q.Status(ctx, *source, *id)
	if err != nil {
		fmt.Fprintf(stderr, "router status: %v\n", err)
		return 1
	}
	if *output == "json" {
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

func cmdAudit(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs, conn := newOpsFlagSet("audit", stderr)
	since := fs.Duration("since", 24*time.Hour, "how far back (0: everything kept, 90 days)")
	identity := fs.String("identity", "", "only decisions about this identity (e.g. source:github)")
	source := fs.String("source", "", "only this hook source or endpoint")
	decision := fs.String("decision", "", "only this decision: accepted, unauthenticated, denied (also: deny), rate-limited, invalid, unavailable")
	id := fs.String("id", "", "only decisions about the event with this id (the 202's id)")
	output := fs.String("o", "text", "output format: text or json (one record per line)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *decision == "deny" {
		*decision = policy.DecisionDenied
	}
	q, closeAll, err := conn.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "router audit: %v\n", err)
		return 1
	}
	defer closeAll()
	tw := newTable(stdout)
	if *output != "json" {
		fmt.Fprintln(tw, "TIME\tDECISION\tSTATUS\tSOURCE\tIDENTITY\tEVENT\tTYPE\tREASON")
	}
	enc := json.NewEncoder(stdout)
	err = q.AuditRecords(ctx, sinceTime(*since), func(r policy.Record) bool {
		if (*identity != "" && r.Identity != *identity) || (*source != "" && r.Source != *source) || (*decision != "" && r.Decision != *decision) ||
			(*id != "" && r.EventID != *id) {
			return true
		}
		if *output == "json" {
			_ = enc.Encode(r)
			return true
		}
		reason := r.Reason
		if r.Rule != "" {
			reason = r.Rule + ": " + reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Time.Format(time.RFC3339), r.Decision, r.Status, r.Source, r.Identity, r.EventID, r.Type, oneLine(reason, 100))
		return true
	})
	_ = tw.Flush()
	if err != nil {
		fmt.Fprintf(stderr, "router audit: %v\n", err)
		return 1
	}
	return 0
}
