package main

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// samples holds one webhook per source kind that send can sign:
// samples/<kind>.json and the headers its sender sets, samples/<kind>.headers
// (copied from test/testdata). The GitHub one is a push to acme/web main,
// which the example rules route to the web app's build trigger.
//
//go:embed samples
var samples embed.FS

// sampleFor returns the built-in sample of kind: its body and headers.
func sampleFor(kind string) ([]byte, http.Header, error) {
	body, err := samples.ReadFile("samples/" + kind + ".json")
	if err != nil {
		return nil, nil, fmt.Errorf("no built-in sample for source kind %q: give one with --body", kind)
	}
	h := http.Header{}
	data, err := samples.ReadFile("samples/" + kind + ".headers")
	if err != nil {
		return body, h, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok {
			h.Set(strings.TrimSpace(name), strings.TrimSpace(value))
		}
	}
	return body, h, nil
}

// sendOptions are the flags of `router send`.
type sendOptions struct {
	rulesDir  string
	source    string
	target    string
	eventName string
	bodyPath  string
	delivery  string
}

func newSendCmd(s ioStreams) *cobra.Command {
	o := sendOptions{}
	cmd := &cobra.Command{
		Use:   "send --source NAME [--url URL]",
		Short: "Post a signed sample webhook to a running router",
		Long: `Signs a webhook as the source's sender would (with the secret the rules name)
and posts it to a running router: a built-in sample of the source's kind, or
a payload file. Prints the router's answer.`,
		Example: `  # A signed GitHub push to the router on localhost:8080
  GITHUB_WEBHOOK_SECRET=dev-secret router send --source github

  # Send the same delivery twice to watch deduplication
  router send --source github --delivery d-1 && router send --source github --delivery d-1

  # Your own payload, to a router elsewhere
  router send --source github --event pull_request --body pr.json --url https://hooks.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runSend(cmd.Context(), o, s.Out, s.Err))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.rulesDir, "rules", "rules", "rules directory (for the source's kind and secret reference)")
	f.StringVar(&o.source, "source", "", "source (hook name) to send to")
	f.StringVar(&o.target, "url", "http://localhost:8080", "router base URL")
	f.StringVar(&o.eventName, "event", "", "provider event name (GitHub: X-GitHub-Event; default: the sample's, a push)")
	f.StringVar(&o.bodyPath, "body", "", "payload file, sent as is: for kinds that sign only the body, the router treats the same body under a new delivery id as the same delivery (default: a built-in sample of the source's kind, made unique per delivery id)")
	f.StringVar(&o.delivery, "delivery", "", "delivery id (default: a fresh one; reuse one to watch deduplication)")
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.MarkFlagDirname("rules")
	return cmd
}

func runSend(ctx context.Context, o sendOptions, stdout, stderr io.Writer) int {
	rules, err := routing.LoadDir(o.rulesDir, loadOptions())
	if err != nil {
		printRulesError(stderr, "send", o.rulesDir, err)
		return 1
	}
	src := rules.Source(o.source)
	if src == nil {
		fmt.Fprintf(stderr, "router send: %s in %s\n", unknownSource(rules, o.source), o.rulesDir)
		return 1
	}
	id := o.delivery
	if id == "" {
		id = uuid.NewString()
	}
	req, err := signedSample(src, o.bodyPath, o.eventName, id)
	if err != nil {
		fmt.Fprintf(stderr, "router send: %v\n", err)
		return 1
	}
	return post(ctx, stdout, stderr, o.target, src.Name, id, req)
}

// unknownSource is the message for a source name not in rules.
func unknownSource(rules *routing.Rules, name string) string {
	var names []string
	for _, s := range rules.Sources() {
		names = append(names, s.Name)
	}
	msg := routing.UnknownName("source", name, names)
	if rules.Endpoint(name) != nil {
		msg += fmt.Sprintf(" (%q is an endpoint: its callers POST CloudEvents to /v1/events/%s, see docs/agents.md)", name, name)
	}
	return msg
}

// signedSample builds the request src's sender would make: the body (the
// kind's sample, or bodyPath), its headers, and its signature or token.
func signedSample(src *routing.Source, bodyPath, eventName, delivery string) (*ingest.Request, error) {
	provider, _ := ingest.Lookup(src.Kind)
	signer, ok := provider.(ingest.Signer)
	if !ok {
		return nil, fmt.Errorf("cannot sign requests for source kind %q", src.Kind)
	}
	secret, err := src.ResolveSecret()
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", src.Name, err)
	}
	var body []byte
	header := http.Header{}
	if bodyPath != "" {
		if body, err = os.ReadFile(bodyPath); err != nil {
			return nil, err
		}
	} else if body, header, err = sampleFor(src.Kind); err != nil {
		return nil, err
	} else if _, ok := provider.(ingest.BodySigned); ok {
		body = stampDelivery(body, delivery)
	}
	if eventName == "" {
		eventName = sampleEvent(header)
	}
	req := &ingest.Request{Header: header, Body: body}
	signer.Sign(req, eventName, delivery, secret)
	req.Header.Set("User-Agent", "switchyard-send")
	return req, nil
}

// stampDelivery makes the built-in sample's body unique to the delivery:
// the router deduplicates body-signed kinds on the body as well (a captured
// body replayed with a new delivery id is the same delivery), so two sends
// of one sample would otherwise make one run. The same --delivery gives the
// same body, so a resend still shows deduplication.
func stampDelivery(body []byte, delivery string) []byte {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return body
	}
	id, _ := json.Marshal(delivery)
	out := make([]byte, 0, len(trimmed)+len(id)+32)
	out = append(out, `{"switchyard_send_delivery":`...)
	out = append(out, id...)
	if rest := bytes.TrimLeft(trimmed[1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, trimmed[1:]...)
}

// sampleEvent is the event name in a sample's headers, so that Sign, which
// sets that header, keeps it.
func sampleEvent(h http.Header) string {
	for _, name := range []string{"X-GitHub-Event", "X-Gitlab-Event", "X-Gitea-Event", "X-Forgejo-Event", "X-Event-Key", "X-Nexus-Webhook-Id", "X-Event-Type"} {
		if v := h.Get(name); v != "" {
			return v
		}
	}
	return ""
}

// post sends req to the source's hook and prints the answer. A token in the
// path (Docker Hub, Quay) is never printed.
func post(ctx context.Context, stdout, stderr io.Writer, base, source, delivery string, req *ingest.Request) int {
	hook := strings.TrimRight(base, "/") + "/v1/hooks/" + url.PathEscape(source)
	shown := hook
	if req.PathToken != "" {
		shown = hook + "/<token>"
		hook += "/" + url.PathEscape(req.PathToken)
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(req.Body))
	if err != nil {
		fmt.Fprintf(stderr, "router send: %v\n", strings.ReplaceAll(err.Error(), hook, shown))
		return 1
	}
	httpReq.Header = req.Header
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(httpReq)
	if err != nil {
		fmt.Fprintf(stderr, "router send: %v\n", strings.ReplaceAll(err.Error(), hook, shown))
		return 1
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(stdout, "POST %s (delivery %s)\n%s\n%s", shown, delivery, resp.Status, respBody)
	if resp.StatusCode >= 300 {
		return 1
	}
	return 0
}
