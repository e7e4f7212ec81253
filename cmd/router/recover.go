package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchyard-dev/switchyard/internal/recovery"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// recoverOptions are the flags of `router recover`.
type recoverOptions struct {
	source, rulesDir string
	repository, org  string
	app              bool
	hookID           int64
	since            time.Duration
	dryRun           bool
	maxAttempts      int
	conn             opsFlags
	progress         io.Writer // long listings report here (stderr); nil: silent
}

func (o *recoverOptions) flags(fs *pflag.FlagSet) {
	fs.StringVar(&o.source, "source", "", "the source (in the rules) the hook delivers to: its apiToken and apiURL are used")
	fs.StringVar(&o.rulesDir, "rules", "./rules", "rules directory holding root.yaml")
	fs.StringVar(&o.repository, "repository", "", "a repository hook's OWNER/REPO")
	fs.StringVar(&o.org, "org", "", "an organization hook's ORG")
	fs.BoolVar(&o.app, "app", false, "the GitHub App's hook (the source's recover block names the App's credentials)")
	fs.Int64Var(&o.hookID, "hook-id", 0, "the hook's id (the number in its settings URL)")
	fs.DurationVar(&o.since, "since", 24*time.Hour, "look at the deliveries of this past duration")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be redelivered; redeliver nothing")
	fs.IntVar(&o.maxAttempts, "max-attempts", recovery.DefaultMaxAttempts, "do not redeliver a delivery that failed this many times")
	o.conn.command = "router recover"
	o.conn.addFlags(fs)
}

func newRecoverCmd(s ioStreams) *cobra.Command {
	o := recoverOptions{progress: s.Err}
	cmd := &cobra.Command{
		Use:   "recover --source NAME (--repository OWNER/REPO --hook-id ID | --org ORG --hook-id ID | --app)",
		Short: "Redeliver the webhooks the Git host failed to deliver",
		Long: `Lists a GitHub hook's deliveries through the GitHub API, finds those that
failed and whose delivery id Switchyard never stored, and asks GitHub to
redeliver each (GitHub never redelivers on its own). A delivery that was
stored is never redelivered. serve does the same periodically for sources
with a recover block.`,
		Example: `  # What would be redelivered from the last day, changing nothing
  router recover --source github --repository acme/web --hook-id 123 --dry-run

  # Redeliver an organization hook's failed deliveries of the last 6 hours
  router recover --source github --org acme --hook-id 7 --since 6h

  # The GitHub App's hook, against the routers' external NATS
  router recover --source github --app --nats-url nats://nats.switchyard:4222`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := o.hook(); err != nil {
				return err
			}
			return codeErr(recoverExit(cmd.Context(), o, s))
		},
	}
	o.flags(cmd.Flags())
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.MarkFlagDirname("rules")
	_ = cmd.MarkFlagDirname("data-dir")
	return cmd
}

// hook is the hook the flags name.
func (o *recoverOptions) hook() (recovery.Hook, error) {
	h := recovery.Hook{Repository: o.repository, Organization: o.org, App: o.app, HookID: o.hookID}
	n := 0
	for _, set := range []bool{o.repository != "", o.org != "", o.app} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return h, errors.New("give exactly one of --repository OWNER/REPO, --org ORG or --app")
	case o.app && o.hookID != 0:
		return h, errors.New("--app takes no --hook-id: the App has one hook")
	case !o.app && o.hookID <= 0:
		return h, errors.New("--hook-id is required")
	}
	return h, nil
}

// recoverExit runs recover and reports its error on stderr: the exit code.
func recoverExit(ctx context.Context, o recoverOptions, s ioStreams) int {
	stdout, stderr := s.Out, s.Err
	if err := runRecover(ctx, o, stdout); err != nil {
		var ps routing.Problems
		if errors.As(err, &ps) || errors.Is(err, routing.ErrNoRulesDir) {
			printRulesError(stderr, "recover", o.rulesDir, err)
			return 1
		}
		fmt.Fprintf(stderr, "router recover: %v\n", err)
		return 1
	}
	return 0
}

// runRecover redelivers the hook's failed, unstored deliveries and prints
// a table of what it did.
func runRecover(ctx context.Context, o recoverOptions, stdout io.Writer) error {
	hook, err := o.hook()
	if err != nil {
		return err
	}
	rules, err := routing.LoadDir(o.rulesDir, loadOptions())
	if err != nil {
		return err
	}
	src := rules.Source(o.source)
	if src == nil {
		return fmt.Errorf("no source named %q in %s", o.source, o.rulesDir)
	}
	host, err := recoveryHost(src, hook)
	if err != nil {
		return err
	}
	q, closeAll, err := o.conn.open(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	since := o.since
	if kept, err := q.StoredFor(ctx); err == nil && kept > 0 && (since <= 0 || since > kept) {
		// An older delivery may have been stored and forgotten since.
		fmt.Fprintf(stdout, "note: --since %s is beyond how long stored events are remembered; looking back %s\n", since, kept)
		since = kept
	}
	opts := recovery.Options{Source: src.Name, Hook: hook, Since: time.Now().Add(-since), DryRun: o.dryRun, MaxAttempts: o.maxAttempts}
	if o.progress != nil {
		pages := 0
		opts.Progress = func(listed int) {
			if pages++; pages > 1 { // a long listing: say it is moving
				fmt.Fprintf(o.progress, "listed %d deliveries…\n", listed)
			}
		}
	}
	rep, runErr := recovery.Run(ctx, host, q, opts)
	printRecoverReport(stdout, hook, rep)
	return runErr
}

func printRecoverReport(w io.Writer, hook recovery.Hook, rep recovery.Report) {
	tw := newTable(w)
	fmt.Fprintln(tw, "DELIVERY\tATTEMPT\tEVENT\tSTATUS\tATTEMPTS\tDELIVERED\tACTION")
	for _, r := range rep.Results {
		d := r.Delivery
		event := d.Event
		if d.Action != "" {
			event += "." + d.Action
		}
		action := string(r.Action)
		if r.Err != nil {
			action += ": " + oneLine(r.Err.Error(), 100)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d %s\t%d\t%s\t%s\n", d.GUID, d.ID, event, d.StatusCode, d.Status, r.Attempts,
			d.DeliveredAt.UTC().Format(time.RFC3339), action)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%s: %d attempt(s) of %d delivery(ies); redelivered %d, would redeliver %d, already stored %d, succeeded %d, gave up %d, failed %d\n",
		hook, rep.Listed, len(rep.Results), rep.Count(recovery.Redelivered), rep.Count(recovery.DryRun), rep.Count(recovery.AlreadyStored),
		rep.Count(recovery.Succeeded), rep.Count(recovery.GaveUp), rep.Count(recovery.Failed))
}

// recoveryHost is the deliveries API of src for hook: the source's
// apiToken and apiURL, or for the App's hook the source's githubApp.
func recoveryHost(src *routing.Source, hook recovery.Hook) (*recovery.GitHub, error) {
	if src.Kind != "github" {
		return nil, fmt.Errorf("source %s is %s: only GitHub can redeliver past deliveries (GitLab has no such API; serve reports GitLab hooks it disabled)", src.Name, src.Kind)
	}
	cfg := recovery.GitHubConfig{APIURL: src.APIURL}
	if hook.App {
		if src.GitHubApp == nil || src.GitHubApp.AppID == 0 {
			return nil, fmt.Errorf("source %s: %w", src.Name, recovery.ErrNoAppCredentials)
		}
		key, err := src.GitHubApp.ResolveKey()
		if err != nil {
			return nil, fmt.Errorf("source %s: githubApp private key: %w", src.Name, err)
		}
		cfg.AppID, cfg.AppKey = src.GitHubApp.AppID, key
		return recovery.NewGitHub(cfg)
	}
	cfg.Token = src.APIToken
	if len(cfg.Token) == 0 {
		token, err := src.ResolveAPIToken()
		if err != nil {
			return nil, fmt.Errorf("source %s: %w (the hooks API needs a token with admin:repo_hook)", src.Name, err)
		}
		cfg.Token = token
	}
	return recovery.NewGitHub(cfg)
}
