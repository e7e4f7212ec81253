package main

import (
	"bytes"
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// samplePush is a GitHub push to acme/web main; the example rules route it
// to the web app's build trigger.
//
//go:embed sample-push.json
var samplePush []byte

func cmdSend(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rulesDir := fs.String("rules", "rules", "rules directory (for the source's kind and secret reference)")
	source := fs.String("source", "", "source (hook name) to send to")
	target := fs.String("url", "http://localhost:8080", "router base URL")
	eventName := fs.String("event", "push", "provider event name (GitHub: X-GitHub-Event)")
	bodyPath := fs.String("body", "", "payload file (default: a built-in sample push to acme/web main)")
	delivery := fs.String("delivery", "", "delivery id (default: a fresh one; reuse one to watch deduplication)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *source == "" {
		fmt.Fprintln(stderr, "router send: --source is required")
		return 2
	}
	rules, err := routing.LoadDir(*rulesDir, ingest.LoadOptions())
	if err != nil {
		fmt.Fprintln(stderr, "router send: invalid rules:")
		printProblems(stderr, err)
		return 1
	}
	src := rules.Source(*source)
	if src == nil {
		fmt.Fprintf(stderr, "router send: no source %q in %s\n", *source, *rulesDir)
		return 1
	}
	provider, _ := ingest.Lookup(src.Kind)
	signer, ok := provider.(ingest.Signer)
	if !ok {
		fmt.Fprintf(stderr, "router send: cannot sign requests for source kind %q\n", src.Kind)
		return 1
	}
	secret, err := src.ResolveSecret()
	if err != nil {
		fmt.Fprintf(stderr, "router send: source %q: %v\n", src.Name, err)
		return 1
	}
	body := samplePush
	if *bodyPath != "" {
		if body, err = os.ReadFile(*bodyPath); err != nil {
			fmt.Fprintf(stderr, "router send: %v\n", err)
			return 1
		}
	}
	id := *delivery
	if id == "" {
		id = uuid.NewString()
	}
	req := &ingest.Request{Header: http.Header{}, Body: body}
	signer.Sign(req, *eventName, id, secret)

	url := strings.TrimRight(*target, "/") + "/v1/hooks/" + src.Name
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stderr, "router send: %v\n", err)
		return 1
	}
	httpReq.Header = req.Header
	httpReq.Header.Set("User-Agent", "switchyard-send")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(httpReq)
	if err != nil {
		fmt.Fprintf(stderr, "router send: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(stdout, "POST %s (delivery %s)\n%s\n%s", url, id, resp.Status, respBody)
	if resp.StatusCode >= 300 {
		return 1
	}
	return 0
}
