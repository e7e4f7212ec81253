package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// The commands people use while writing rules: validate, normalize and
// explain. None of them needs a secret, a queue or a cluster.

// validateOptions are the flags of `router validate`.
type validateOptions struct {
	dir    string
	strict bool
}

func newValidateCmd(s ioStreams) *cobra.Command {
	o := validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check a rules directory; print every problem as file:line",
		Long: `Checks the manifest rooted at DIR/root.yaml (default ./rules) and prints
every problem as file:line: message, then the rules revision. Exit status 1
when there is any problem. Without --strict, secrets are not read (CI needs
none): what serve would still check is listed.`,
		Example: `  # Check ./rules, as CI does
  router validate

  # Check another directory, reading every secret file as serve would at start
  router validate --strict deploy/rules`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if cmd.Flags().Changed("rules") && args[0] != o.dir {
					return errors.New("give the rules directory once: --rules DIR or DIR")
				}
				o.dir = args[0]
			}
			return codeErr(runValidate(o, s.Out))
		},
	}
	cmd.Flags().StringVar(&o.dir, "rules", "rules", "rules directory holding root.yaml (a DIR argument works too)")
	cmd.Flags().BoolVar(&o.strict, "strict", false, "also read every secret, API token and tokens file named in the rules, as serve does at start")
	_ = cmd.MarkFlagDirname("rules")
	return cmd
}

func runValidate(o validateOptions, stdout io.Writer) int {
	opts := loadOptions()
	opts.ResolveSecrets = o.strict
	rules, err := routing.LoadDir(o.dir, opts)
	if errors.Is(err, routing.ErrNoRulesDir) {
		fmt.Fprintf(stdout, "%v: give the directory holding root.yaml (--rules DIR)\n", err)
		return 1
	}
	if err != nil {
		printProblems(stdout, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\nrules revision: %s\n", o.dir, rules.Revision())
	for _, w := range rules.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if refs := secretRefs(rules); !o.strict && len(refs) > 0 {
		fmt.Fprintln(stdout, "not checked (serve reads these at start; check them with --strict where they are set):")
		for _, r := range refs {
			fmt.Fprintf(stdout, "  %s\n", r)
		}
	}
	return 0
}

// secretRefs lists where the rules' secrets come from (never a secret).
func secretRefs(rules *routing.Rules) []string {
	var out []string
	ref := func(owner, what, env, file string) {
		switch {
		case env != "":
			out = append(out, fmt.Sprintf("%s: %s: environment variable %s", owner, what, env))
		case file != "":
			out = append(out, fmt.Sprintf("%s: %s: file %s", owner, what, file))
		}
	}
	for _, s := range rules.Sources() {
		owner := fmt.Sprintf("source %q", s.Name)
		ref(owner, "secret", s.SecretRef.Env, s.SecretRef.File)
		ref(owner, "apiToken", s.APITokenRef.Env, s.APITokenRef.File)
	}
	for _, e := range rules.Endpoints() {
		ref(fmt.Sprintf("endpoint %q", e.Name), "tokens", e.TokensRef.Env, e.TokensRef.File)
	}
	return out
}

// printRulesError says why the rules of dir could not be loaded: a wrong
// directory, or every problem in them.
func printRulesError(w io.Writer, cmd, dir string, err error) {
	if errors.Is(err, routing.ErrNoRulesDir) {
		fmt.Fprintf(w, "router %s: %v: give the directory holding root.yaml with --rules DIR\n", cmd, err)
		return
	}
	fmt.Fprintf(w, "router %s: the rules in %s are invalid:\n", cmd, dir)
	printProblems(w, err)
}

func printProblems(w io.Writer, err error) {
	var ps routing.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(w, p.String())
		}
		return
	}
	fmt.Fprintln(w, err)
}

// readRequest builds a webhook request from -H flags and a body file ("-"
// is standard input).
func readRequest(headers headerFlags, bodyPath string, stdin io.Reader) (*ingest.Request, error) {
	if bodyPath == "" {
		return nil, errors.New("--body is required (a file, or - for standard input)")
	}
	var body []byte
	var err error
	if bodyPath == "-" {
		body, err = io.ReadAll(stdin)
	} else {
		body, err = os.ReadFile(bodyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	h := http.Header{}
	for _, kv := range headers {
		name, value, _ := strings.Cut(kv, ":")
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	return &ingest.Request{Header: h, Body: body}, nil
}

// normalizeOptions are the flags of `router normalize`.
type normalizeOptions struct {
	provider string
	body     string
	headers  headerFlags
}

func newNormalizeCmd(s ioStreams) *cobra.Command {
	o := normalizeOptions{}
	cmd := &cobra.Command{
		Use:   "normalize --provider KIND --body FILE [-H 'Name: value']...",
		Short: "Print the CloudEvent a webhook becomes",
		Long: `Prints, as JSON, the CloudEvent (or events) a provider's webhook is normalized
to: the attributes and extensions rules match on. Nothing is verified or
routed; no rules are read.`,
		Example: `  # A GitHub push, as the router sees it
  router normalize --provider github -H 'X-GitHub-Event: push' --body push.json

  # A Harbor webhook from standard input
  curl -s https://example.com/harbor.json | router normalize --provider harbor --body -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runNormalize(o, s))
		},
	}
	cmd.Flags().StringVar(&o.provider, "provider", "", "provider kind: "+strings.Join(ingest.Kinds(), ", "))
	cmd.Flags().StringVar(&o.body, "body", "", "payload file, or - for standard input")
	cmd.Flags().VarP(&o.headers, "header", "H", "request header 'Name: value' (repeatable), e.g. -H 'X-GitHub-Event: push'")
	_ = cmd.MarkFlagRequired("provider")
	_ = cmd.RegisterFlagCompletionFunc("provider", fixedCompletion(ingest.Kinds()...))
	return cmd
}

func runNormalize(o normalizeOptions, s ioStreams) int {
	stdin, stdout, stderr := s.In, s.Out, s.Err
	req, err := readRequest(o.headers, o.body, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "router normalize: %v\n", err)
		return 2
	}
	res, err := ingest.Normalize(o.provider, req)
	if err != nil {
		fmt.Fprintf(stderr, "router normalize: %v\n", err)
		return 1
	}
	if res.Ping {
		fmt.Fprintln(stdout, `{"ping": true}`)
		return 0
	}
	if res.Reply != nil && len(res.Events) == 0 {
		// A handshake: what the router would answer, nothing routed.
		return printJSON(stdout, stderr, map[string]any{"reply": map[string]any{
			"status": res.Reply.Status, "header": res.Reply.Header, "body": string(res.Reply.Body)}})
	}
	var out any = res.Events
	if len(res.Events) == 1 {
		out = res.Events[0]
	}
	return printJSON(stdout, stderr, out)
}

func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "router: %v\n", err)
		return 1
	}
	return 0
}

// explanation is the JSON form of `router explain -o json`.
type explanation struct {
	Event event.Event `json:"event"`
	// RulesRevision is the revision of the rules explain routed with.
	RulesRevision string `json:"rulesRevision"`
	// Changes are the changed files paths conditions saw (GitHub pushes).
	Changes   *routing.Changes  `json:"changes,omitempty"`
	Targets   []explainedTarget `json:"targets"`
	Unmatched []routing.Miss    `json:"unmatched"`
	// Refused, when set, is why policy would refuse the event (the router
	// would answer 403 and store nothing).
	Refused string `json:"refused,omitempty"`
}

type explainedTarget struct {
	routing.Target
	// PipelineRun is the rendered, validated object dispatch would create.
	PipelineRun json.RawMessage `json:"pipelineRun,omitempty"`
	// RenderError says why dispatch would dead-letter this target.
	RenderError string `json:"renderError,omitempty"`
	// yaml is the PipelineRun as the text output shows it.
	yaml []byte
}

// explainOptions are the flags of `router explain`.
type explainOptions struct {
	rulesDir string
	source   string
	body     string
	output   string
	fetch    bool
	headers  headerFlags
}

func newExplainCmd(s ioStreams) *cobra.Command {
	o := explainOptions{}
	cmd := &cobra.Command{
		Use:   "explain --source NAME --body FILE [-H 'Name: value']...",
		Short: "Show which triggers an event fires, and why not the others",
		Long: `Routes a webhook offline, as serve would: the CloudEvent, the identity, policy,
every matched trigger with its rendered and validated PipelineRun, and for
every other trigger the reason it did not match. Signatures are not checked.`,
		Example: `  # Which triggers does this push fire?
  router explain --source github -H 'X-GitHub-Event: push' --body push.json

  # The same as JSON, with the PipelineRuns dispatch would create
  router explain --source github -H 'X-GitHub-Event: push' --body push.json -o json

  # A truncated push: ask GitHub for the changed files with the source's apiToken
  router explain --source github -H 'X-GitHub-Event: push' --body big-push.json --fetch-changes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			return codeErr(runExplain(cmd.Context(), o, s))
		},
	}
	cmd.Flags().StringVar(&o.rulesDir, "rules", "rules", "rules directory")
	cmd.Flags().StringVar(&o.source, "source", "", "the source (hook name) the event arrives on")
	cmd.Flags().StringVar(&o.body, "body", "", "payload file, or - for standard input")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&o.fetch, "fetch-changes", false, "ask the provider's API for the changed files of a truncated push, with the source's apiToken (read from its env or file); without it explain stays offline")
	cmd.Flags().VarP(&o.headers, "header", "H", "request header 'Name: value' (repeatable)")
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.MarkFlagDirname("rules")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion("text", "json"))
	return cmd
}

func runExplain(ctx context.Context, o explainOptions, s ioStreams) int {
	stdin, stdout, stderr := s.In, s.Out, s.Err
	rules, err := routing.LoadDir(o.rulesDir, loadOptions())
	if err != nil {
		printRulesError(stderr, "explain", o.rulesDir, err)
		return 1
	}
	for _, w := range rules.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	src := rules.Source(o.source)
	if src == nil {
		fmt.Fprintf(stderr, "router explain: %s in %s\n", unknownSource(rules, o.source), o.rulesDir)
		return 1
	}
	if o.fetch {
		token, err := src.ResolveAPIToken()
		if err != nil {
			fmt.Fprintf(stderr, "router explain: --fetch-changes: %v\n", err)
			return 1
		}
		cp := *src
		cp.APIToken = token
		src = &cp
	}
	req, err := readRequest(o.headers, o.body, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "router explain: %v\n", err)
		return 2
	}
	res, err := ingest.Normalize(src.Kind, req)
	if err != nil {
		fmt.Fprintf(stderr, "router explain: %v\n", err)
		return 1
	}
	if res.Ping {
		fmt.Fprintln(stdout, "ping: answered 200, nothing is routed")
		return 0
	}
	var all []explanation
	for i := range res.Events {
		ev := &res.Events[i]
		// The same sequence as a webhook: identity, changed files,
		// routing (which strips credential headers), then policy.
		in := ingest.ExplainInput(ctx, rules, src, ev, req.Header)
		d := rules.Explain(in)
		x := explanation{Event: *ev, RulesRevision: rules.Revision(), Changes: in.Changes, Unmatched: d.Unmatched, Targets: []explainedTarget{}}
		if err := policy.Judge(rules, policy.Request{Source: src.Name, Caller: policy.SourceCaller(src.Name), Event: ev, Targets: d.Targets}); err != nil {
			x.Refused = err.Error()
		}
		if x.Unmatched == nil {
			x.Unmatched = []routing.Miss{}
		}
		for _, t := range d.Targets {
			et := explainedTarget{Target: t}
			pr, err := dispatch.RenderAny(ctx, queue.Work{Source: src.Name, Event: *ev, Target: t})
			if err != nil {
				et.RenderError = err.Error()
			} else if et.PipelineRun, err = json.Marshal(pr); err != nil {
				et.RenderError = err.Error()
			} else if et.yaml, err = dispatch.MarshalRunYAML(pr); err != nil {
				et.RenderError = err.Error()
			}
			x.Targets = append(x.Targets, et)
		}
		all = append(all, x)
	}
	if o.output == "json" {
		var out any = all
		if len(all) == 1 {
			out = all[0]
		}
		return printJSON(stdout, stderr, out)
	}
	for _, x := range all {
		printExplanation(stdout, x)
	}
	return 0
}

func printExplanation(w io.Writer, x explanation) {
	ev := x.Event
	fmt.Fprintf(w, "event %s\n  type     %s\n  source   %s\n", ev.ID(), ev.Type(), ev.Source())
	if ev.Subject() != "" {
		fmt.Fprintf(w, "  subject  %s\n", ev.Subject())
	}
	for _, k := range []string{"repository", "branch", "tag", "revision", "action", "actor", "identity"} {
		if v, ok := ev.Extensions()[k]; ok {
			fmt.Fprintf(w, "  %-8s %v\n", k, v)
		}
	}
	if c := x.Changes; c != nil {
		state := "complete"
		if !c.Complete {
			state = "incomplete"
		}
		fmt.Fprintf(w, "  changes  %d files, %s: %s\n", len(c.Files), state, c.Reason)
	}
	fmt.Fprintf(w, "\nrules revision %s\n", x.RulesRevision)
	if x.Refused != "" {
		fmt.Fprintf(w, "\nrefused by policy: %s (the router answers 403 and stores nothing)\n", x.Refused)
	}
	fmt.Fprintf(w, "\nmatched (%d):\n", len(x.Targets))
	for _, t := range x.Targets {
		ref := "pipelineRef " + t.PipelineRef
		if len(t.Resource) > 0 {
			ref = "from a TriggerTemplate"
			if t.PipelineRef != "" {
				ref += ", pipelineRef " + t.PipelineRef
			}
		}
		fmt.Fprintf(w, "  %s/%s -> %s %s/%s (%s)\n", t.App, t.Trigger, t.RunKind(), t.Namespace, t.Name, ref)
		for _, p := range t.Params {
			fmt.Fprintf(w, "      param %s = %q\n", p.Name, p.Value)
		}
		for _, n := range t.Notes {
			fmt.Fprintf(w, "      note: %s\n", n)
		}
		if t.RenderError != "" {
			fmt.Fprintf(w, "      would fail: %s\n", t.RenderError)
			continue
		}
		for _, line := range strings.Split(strings.TrimRight(string(t.yaml), "\n"), "\n") {
			fmt.Fprintf(w, "      | %s\n", line)
		}
	}
	fmt.Fprintf(w, "\nnot matched (%d):\n", len(x.Unmatched))
	for _, m := range x.Unmatched {
		fmt.Fprintf(w, "  %s/%s: %s\n", m.App, m.Trigger, m.Reason)
	}
}
