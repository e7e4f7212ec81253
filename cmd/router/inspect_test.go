package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidate(t *testing.T) {
	if code, out, _ := runCmd(t, "", "validate", "../../rules"); code != 0 || !strings.HasPrefix(out, "../../rules: ok\n") {
		t.Fatalf("validate rules: exit %d, output %q", code, out)
	}
	// Every problem at once, file:line: message, exit 1: the same lines as
	// the routing package's golden file.
	dir := "../../internal/routing/testdata/bad/templates"
	code, out, _ := runCmd(t, "", "validate", dir)
	golden, err := os.ReadFile(dir + ".golden")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(string(golden), "testdata/bad/templates", filepath.Clean(dir))
	if code != 1 || out != want {
		t.Fatalf("validate %s: exit %d, output:\n%s\nwant:\n%s", dir, code, out, want)
	}
}

func TestExplainJSON(t *testing.T) {
	code, out, errOut := runCmd(t, "", "explain", "--rules", "../../rules", "--source", "github", "-o", "json",
		"-H", "X-GitHub-Event: push", "-H", "X-GitHub-Delivery: d-1", "--body", "../../test/testdata/github/push.json")
	if code != 0 {
		t.Fatalf("explain: exit %d: %s", code, errOut)
	}
	var x struct {
		Changes struct {
			Files    []string `json:"files"`
			Complete bool     `json:"complete"`
		} `json:"changes"`
		Targets []struct {
			App, Trigger, Namespace, PipelineRef string
			PipelineRun                          map[string]any `json:"pipelineRun"`
			RenderError                          string         `json:"renderError"`
		} `json:"targets"`
		Unmatched     []struct{ App, Trigger, Reason string } `json:"unmatched"`
		RulesRevision string                                  `json:"rulesRevision"`
	}
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatalf("explain -o json is not JSON: %v\n%s", err, out)
	}
	if want := rulesRevision(t, "../../rules"); x.RulesRevision != want {
		t.Errorf("rulesRevision = %q, want %q", x.RulesRevision, want)
	}
	if len(x.Targets) != 1 || x.Targets[0].App != "web" || x.Targets[0].Trigger != "build" || x.Targets[0].Namespace != "ci" ||
		x.Targets[0].PipelineRef != "build-and-test" || x.Targets[0].PipelineRun == nil || x.Targets[0].RenderError != "" {
		t.Fatalf("targets = %+v", x.Targets)
	}
	if !x.Changes.Complete || len(x.Changes.Files) != 5 {
		t.Errorf("changes = %+v, want the 5 files of the sample's commits", x.Changes)
	}
	if len(x.Unmatched) != 11 { // web 3, payments 2, infra 6
		t.Errorf("unmatched = %+v, want every other trigger with its reason", x.Unmatched)
	}
	for _, m := range x.Unmatched {
		if m.Reason == "" {
			t.Errorf("%s/%s: no reason", m.App, m.Trigger)
		}
	}
}

// TestExplainTemplateText explains a push to a payments repository: the
// TriggerTemplate's PipelineRun is shown rendered.
func TestExplainTemplateText(t *testing.T) {
	body, err := os.ReadFile("../../test/testdata/github/push.json")
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.ReplaceAll(string(body), "acme/web", "acme/payments-api")
	code, out, errOut := runCmd(t, payload, "explain", "--rules", "../../rules", "--source", "github",
		"-H", "X-GitHub-Event: push", "-H", "X-GitHub-Delivery: d-2", "--body", "-")
	if code != 0 {
		t.Fatalf("explain: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"changes  5 files, complete: from the 2 commits of the push payload",
		"payments/build -> PipelineRun payments-ci/payments-build-",
		"(from a TriggerTemplate, pipelineRef payments-build)",
		"|     payments.acme.dev/build-kind: push",
		"|     serviceAccountName: payments-builder",
		`web/build: repository "acme/payments-api" does not match acme/web`,
		"\nrules revision " + rulesRevision(t, "../../rules") + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

// rulesRevision is the revision of the rules in dir.
func rulesRevision(t *testing.T, dir string) string {
	t.Helper()
	rules, err := routing.LoadDir(dir, loadOptions())
	if err != nil {
		t.Fatal(err)
	}
	return rules.Revision()
}
