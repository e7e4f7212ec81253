package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// The commands people use while writing rules: validate, normalize and
// explain. None of them needs a secret, a queue or a cluster.

func cmdValidate(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("rules", "rules", "rules directory holding root.yaml (a DIR argument works too)")
	strict := fs.Bool("strict", false, "also read every secret, API token and tokens file named in the rules, as serve does at start")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: router validate [--strict] [--rules DIR | DIR]\n\nChecks the manifest rooted at DIR/root.yaml (default ./rules) and prints\nevery problem as file:line: message. Exit status 1 when there is any.\nWithout --strict, secrets are not read (CI needs none): what serve would\nstill check is listed.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case fs.NArg() > 1:
		fs.Usage()
		return 2
	case fs.NArg() == 1:
		if rulesFlagSet(fs) && fs.Arg(0) != *dir {
			fmt.Fprintln(stderr, "router validate: give the rules directory once: --rules DIR or DIR")
			return 2
		}
		*dir = fs.Arg(0)
	}
	opts := loadOptions()
	opts.ResolveSecrets = *strict
	rules, err := routing.LoadDir(*dir, opts)
	if errors.Is(err, routing.ErrNoRulesDir) {
		fmt.Fprintf(stdout, "%v: give the directory holding root.yaml (--rules DIR)\n", err)
		return 1
	}
	if err != nil {
		printProblems(stdout, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\nrules revision: %s\n", *dir, rules.Revision())
	for _, w := range rules.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if refs := secretRefs(rules); !*strict && len(refs) > 0 {
		fmt.Fprintln(stdout, "not checked (serve reads these at start; check them with --strict where they are set):")
		for _, r := range refs {
			fmt.Fprintf(stdout, "  %s\n", r)
		}
	}
	return 0
}

func rulesFlagSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "rules" })
	return set
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

func cmdNormalize(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("normalize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	provider := fs.String("provider", "", "provider kind: "+strings.Join(ingest.Kinds(), ", "))
	body := fs.String("body", "", "payload file, or - for standard input")
	var headers headerFlags
	fs.Var(&headers, "H", "request header 'Name: value' (repeatable), e.g. -H 'X-GitHub-Event: push'")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *provider == "" {
		fmt.Fprintln(stderr, "router normalize: --provider is required")
		return 2
	}
	req, err := readRequest(headers, *body, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "router normalize: %v\n", err)
		return 2
	}
	res, err := ingest.Normalize(*provider, req)
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

func cmdExplain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rulesDir := fs.String("rules", "rules", "rules directory")
	source := fs.String("source", "", "the source (hook name) the event arrives on")
	body := fs.String("body", "", "payload file, or - for standard input")
	output := fs.String("o", "text", "output format: text or json")
	fetch := fs.Bool("fetch-changes", false, "ask the provider's API for the changed files of a truncated push, with the source's apiToken (read from its env or file); without it explain stays offline")
	var headers headerFlags
	fs.Var(&headers, "H", "request header 'Name: value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *source == "" {
		fmt.Fprintln(stderr, "router explain: --source is required")
		return 2
	}
	rules, err := routing.LoadDir(*rulesDir, loadOptions())
	if err != nil {
		printRulesError(stderr, "explain", *rulesDir, err)
		return 1
	}
	for _, w := range rules.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	src := rules.Source(*source)
	if src == nil {
		fmt.Fprintf(stderr, "router explain: %s in %s\n", unknownSource(rules, *source), *rulesDir)
		return 1
	}
	if *fetch {
		token, err := src.ResolveAPIToken()
		if err != nil {
			fmt.Fprintf(stderr, "router explain: --fetch-changes: %v\n", err)
			return 1
		}
		cp := *src
		cp.APIToken = token
		src = &cp
	}
	req, err := readRequest(headers, *body, stdin)
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
		x := explanation{Event: *ev, Changes: in.Changes, Unmatched: d.Unmatched, Targets: []explainedTarget{}}
		if err := policy.Judge(rules, policy.Request{Source: src.Name, Caller: policy.SourceCaller(src.Name), Event: ev, Targets: d.Targets}); err != nil {
			x.Refused = err.Error()
		}
		if x.Unmatched == nil {
			x.Unmatched = []routing.Miss{}
		}
		for _, t := range d.Targets {
			et := explainedTarget{Target: t}
			pr, err := dispatch.Render(ctx, queue.Work{Source: src.Name, Event: *ev, Target: t})
			if err != nil {
				et.RenderError = err.Error()
			} else if et.PipelineRun, err = json.Marshal(pr); err != nil {
				et.RenderError = err.Error()
			} else if et.yaml, err = dispatch.MarshalYAML(pr); err != nil {
				et.RenderError = err.Error()
			}
			x.Targets = append(x.Targets, et)
		}
		all = append(all, x)
	}
	if *output == "json" {
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
		fmt.Fprintf(w, "  %s/%s -> PipelineRun %s/%s (%s)\n", t.App, t.Trigger, t.Namespace, t.Name, ref)
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
