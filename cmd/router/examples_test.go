package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestPulumiExamplesValidate decodes the Pipeline and Task the infra app
// runs with Tekton's own types (unknown fields are errors) and runs
// Tekton's defaulting and validation on them; the Pipeline's params are
// the ones the app's triggers set.
func TestPulumiExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../deploy/examples/pulumi/*.yaml")
	if err != nil || len(files) != 2 {
		t.Fatalf("examples: %v, %v; want pipeline.yaml and task.yaml", files, err)
	}
	ctx := context.Background()
	var pipeline *pipelinev1.Pipeline
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(data, &meta); err != nil || meta.APIVersion != "tekton.dev/v1" {
			t.Fatalf("%s: apiVersion %q, %v; want tekton.dev/v1", f, meta.APIVersion, err)
		}
		switch meta.Kind {
		case "Task":
			var task pipelinev1.Task
			if err := yaml.UnmarshalStrict(data, &task); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			task.SetDefaults(ctx)
			if err := task.Validate(ctx); err != nil {
				t.Fatalf("%s: Tekton's validation: %v", f, err)
			}
			if !hasProjectedToken(task.Spec.Volumes, "sts.amazonaws.com") {
				t.Errorf("%s: no projected service-account token for AWS STS", f)
			}
		case "Pipeline":
			pipeline = &pipelinev1.Pipeline{}
			if err := yaml.UnmarshalStrict(data, pipeline); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			pipeline.SetDefaults(ctx)
			if err := pipeline.Validate(ctx); err != nil {
				t.Fatalf("%s: Tekton's validation: %v", f, err)
			}
		default:
			t.Fatalf("%s: kind %q", f, meta.Kind)
		}
		if strings.Contains(strings.ToLower(string(data)), "aws_secret_access_key") {
			t.Errorf("%s: a static AWS key", f)
		}
	}
	if pipeline == nil {
		t.Fatal("no Pipeline")
	}
	var names []string
	for _, p := range pipeline.Spec.Params {
		names = append(names, p.Name)
	}
	for _, want := range []string{"command", "environment", "repo-url", "revision", "aws-role-arn"} {
		if !slices.Contains(names, want) {
			t.Errorf("Pipeline has no param %q, which the infra app's triggers set", want)
		}
	}
}

func hasProjectedToken(vols []corev1.Volume, audience string) bool {
	for _, v := range vols {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil && s.ServiceAccountToken.Audience == audience {
				return true
			}
		}
	}
	return false
}

// githubSample is a test/testdata/github sample moved to acme/infra, with
// edit applied, normalized.
func githubSample(t *testing.T, name, kind string, edit func(m map[string]any)) *event.Event {
	t.Helper()
	data, err := os.ReadFile("../../test/testdata/github/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	repo := m["repository"].(map[string]any)
	repo["full_name"], repo["name"] = "acme/infra", "infra"
	repo["html_url"], repo["clone_url"] = "https://github.com/acme/infra", "https://github.com/acme/infra.git"
	if edit != nil {
		edit(m)
	}
	body, _ := json.Marshal(m)
	h := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {kind}, "X-Github-Delivery": {"d-" + name}}
	res, err := ingest.Normalize("github", &ingest.Request{Header: h, Body: body})
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("normalize %s: %v", name, err)
	}
	return &res.Events[0]
}

// TestPulumiAppRoutes: the infra app previews pull requests and updates on
// merges, on the stack of the branch's environment; the infra agent may
// update staging or production and nothing else.
func TestPulumiAppRoutes(t *testing.T) {
	rules, err := routing.LoadDir("../../rules", loadOptions())
	if err != nil {
		t.Fatal(err)
	}
	src := rules.Source("github")
	base := func(ref string) func(map[string]any) {
		return func(m map[string]any) { m["pull_request"].(map[string]any)["base"].(map[string]any)["ref"] = ref }
	}
	pushTo := func(branch string) func(map[string]any) {
		return func(m map[string]any) { m["ref"] = "refs/heads/" + branch }
	}
	for _, tc := range []struct {
		name, sample, kind string
		edit               func(map[string]any)
		want               string // app/trigger command environment serviceAccount
	}{
		{name: "pull request to main", sample: "pull-request-reopened.json", kind: "pull_request", edit: base("main"), want: "infra/preview-staging preview staging pulumi-preview"},
		{name: "pull request to production", sample: "pull-request-synchronize.json", kind: "pull_request", edit: base("production"), want: "infra/preview-production preview production pulumi-preview"},
		{name: "pull request to another branch", sample: "pull-request-reopened.json", kind: "pull_request", edit: base("feature")},
		{name: "closed pull request", sample: "pull-request-closed.json", kind: "pull_request", edit: base("main")},
		{name: "push to main", sample: "push.json", kind: "push", edit: pushTo("main"), want: "infra/up-staging up staging pulumi-staging"},
		{name: "push to production", sample: "push.json", kind: "push", edit: pushTo("production"), want: "infra/up-production up production pulumi-production"},
		{name: "push to a feature branch", sample: "push.json", kind: "push", edit: pushTo("feature/x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := githubSample(t, tc.sample, tc.kind, tc.edit)
			targets := rules.Route(ingest.RouteInput(rules, src, ev, http.Header{}))
			var got []string
			for _, tg := range targets {
				got = append(got, strings.Join([]string{tg.App + "/" + tg.Trigger, paramOf(tg, "command"), paramOf(tg, "environment"), tg.ServiceAccount}, " "))
				if tg.Namespace != "infra-ci" {
					t.Errorf("%s/%s runs in %s", tg.App, tg.Trigger, tg.Namespace)
				}
			}
			if strings.Join(got, ",") != tc.want {
				t.Fatalf("targets %q, want %q", got, tc.want)
			}
		})
	}

	ep := rules.Endpoint("infra-agent")
	for _, tc := range []struct {
		env     string
		refused string
	}{
		{env: "staging"},
		{env: "production"},
		{env: "qa", refused: "scope.environments"},
	} {
		ev := event.New()
		ev.SetID("up-" + tc.env)
		ev.SetSource("/v1/events/infra-agent")
		ev.SetType("com.acme.infra.up.requested")
		ev.SetExtension("identity", ep.Identity())
		if err := ev.SetData("application/json", map[string]any{"params": map[string]string{"environment": tc.env, "revision": "7c1d2e3"}}); err != nil {
			t.Fatal(err)
		}
		targets := rules.Route(routing.Input{Source: ep.Name, Event: &ev})
		err := policy.Judge(rules, policy.Request{Source: ep.Name, Caller: policy.EndpointCaller(ep, "repo:acme/infra-bot:ref:refs/heads/main"), Event: &ev, Targets: targets})
		if tc.refused != "" {
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Errorf("environment %s: %v, want refused by %s", tc.env, err, tc.refused)
			}
			continue
		}
		if err != nil || len(targets) != 1 || targets[0].Trigger != "up-requested-"+tc.env || paramOf(targets[0], "environment") != tc.env ||
			targets[0].ServiceAccount != "pulumi-"+tc.env || paramOf(targets[0], "aws-role-arn") != "arn:aws:iam::111111111111:role/pulumi-"+tc.env {
			t.Errorf("environment %s: %v, targets %+v", tc.env, err, targets)
		}
	}
}

// paramOf is the value of a target's param name.
func paramOf(t routing.Target, name string) string {
	for _, p := range t.Params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}
