package policy_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// gatedRoot gates the agent endpoint's production runs (approvers: the
// people endpoint's alice and lead) and web/deploy whoever starts it
// (approvers: any principal of people).
const gatedRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: web
    manifest: web.yaml
    namespaces: [web-ci]
    sources: [github]
    identities: ["endpoint:agent"]
    approval: {triggers: [deploy], approvers: ["endpoint:people"], timeout: 2h}
endpoints:
  - name: agent
    auth: {tokens: {env: T}}
    scope: {apps: [web], eventTypes: ["*"], params: [environment]}
    approval:
      environments: [production]
      approvers: ["endpoint:people/alice", "endpoint:people/lead", "source:github/octocat"]
      timeout: 30m
  - name: people
    auth: {tokens: {env: T}}
    scope: {eventTypes: [com.acme.none]}
    callers:
      - {principal: alice, scope: {eventTypes: [com.acme.none]}}
      - {principal: bob, scope: {eventTypes: [com.acme.none]}}
      - {principal: lead, scope: {eventTypes: [com.acme.none]}}
`

const gatedWeb = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: deploy
    match: {types: [com.acme.deploy]}
    run:
      pipelineRef: deploy
      params: [{name: environment, value: $(body.params.environment)}]
  - name: build
    match: {types: [com.acme.build]}
    run:
      pipelineRef: build
      params: [{name: environment, value: $(body.params.environment)}]
`

func loadGated(t *testing.T, root string) (*routing.Rules, error) {
	t.Helper()
	return routing.Load(fstest.MapFS{"root.yaml": {Data: []byte(root)}, "web.yaml": {Data: []byte(gatedWeb)}}, "rules", routing.Options{})
}

func TestGate(t *testing.T) {
	rules, err := loadGated(t, gatedRoot)
	if err != nil {
		t.Fatal(err)
	}
	agent := policy.EndpointCaller(rules.Endpoint("agent"), "bot")
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	target := func(trigger, env string) routing.Target {
		return routing.Target{App: "web", Trigger: trigger, Params: []routing.Param{{Name: "environment", Value: env}}}
	}
	for _, tc := range []struct {
		name     string
		caller   policy.Caller
		targets  []routing.Target
		envExt   string
		want     []string // held targets
		gates    []string
		deadline time.Duration
	}{
		{"staging build", agent, []routing.Target{target("build", "staging")}, "", nil, nil, 0},
		{"production build", agent, []routing.Target{target("build", "production")}, "", []string{"web/build"}, []string{"endpoints[agent].approval"}, 30 * time.Minute},
		{"environment extension", agent, []routing.Target{target("build", "")}, "production", []string{"web/build"}, []string{"endpoints[agent].approval"}, 30 * time.Minute},
		{"deploy by a webhook", policy.SourceCaller("github"), []routing.Target{target("deploy", "staging"), target("build", "production")}, "", []string{"web/deploy"}, []string{"apps[web].approval"}, 2 * time.Hour},
		{"both gates: the shorter timeout", agent, []routing.Target{target("deploy", "production")}, "", []string{"web/deploy"}, []string{"endpoints[agent].approval", "apps[web].approval"}, 30 * time.Minute},
		{"a template's rendered environment", agent, []routing.Target{{App: "web", Trigger: "build", Resource: []byte(`{"spec":{"params":[{"name":"environment","value":"production"}]}}`)}}, "", []string{"web/build"}, []string{"endpoints[agent].approval"}, 30 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := event.New()
			ev.SetID("e")
			ev.SetType("com.acme.build")
			if tc.envExt != "" {
				ev.SetExtension("environment", tc.envExt)
			}
			h := policy.Gate(rules, policy.Request{Caller: tc.caller, Event: &ev, Targets: tc.targets}, now)
			if tc.want == nil {
				if h != nil {
					t.Fatalf("held %+v", h)
				}
				return
			}
			if h == nil || strings.Join(h.Targets, ",") != strings.Join(tc.want, ",") || strings.Join(h.Gates, ",") != strings.Join(tc.gates, ",") || !h.Deadline.Equal(now.Add(tc.deadline)) {
				t.Fatalf("hold %+v, want targets %v gates %v deadline +%s", h, tc.want, tc.gates, tc.deadline)
			}
		})
	}
}

func TestMayDecide(t *testing.T) {
	rules, err := loadGated(t, gatedRoot)
	if err != nil {
		t.Fatal(err)
	}
	people, agent := rules.Endpoint("people"), rules.Endpoint("agent")
	held := policy.Approval{Identity: "endpoint:agent", Principal: "bot", Gates: []string{"endpoints[agent].approval"}}
	both := held
	both.Gates = []string{"endpoints[agent].approval", "apps[web].approval"}
	gone := held
	gone.Gates = []string{"endpoints[old].approval"}
	byAlice := held
	byAlice.Principal = "alice"
	for _, tc := range []struct {
		name   string
		caller policy.Caller
		held   policy.Approval
		rule   string // "" allowed
	}{
		{"approver", policy.EndpointCaller(people, "alice"), held, ""},
		{"approver of both gates", policy.EndpointCaller(people, "lead"), both, ""},
		{"the sender", policy.EndpointCaller(agent, "bot"), held, "approval.self"},
		{"the sender through another endpoint", policy.EndpointCaller(people, "alice"), byAlice, "approval.self"},
		{"not an approver", policy.EndpointCaller(people, "bob"), held, "endpoints[agent].approval.approvers"},
		{"a principal no caller entry matches", policy.EndpointCaller(people, "mallory"), held, "callers"},
		{"an endpoint not named", policy.EndpointCaller(agent, "alice"), held, "endpoints[agent].approval.approvers"},
		{"a webhook source", policy.SourceCaller("github"), held, "approval"},
		{"a source's user not named", policy.Caller{Identity: "source:github", Principal: "hubot"}, held, "endpoints[agent].approval.approvers"},
		{"a source's user named", policy.Caller{Identity: "source:github", Principal: "Octocat"}, held, ""},
		{"a gate no longer in force", policy.EndpointCaller(people, "alice"), gone, "endpoints[old].approval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := policy.MayDecide(rules, tc.caller, tc.held)
			var d *policy.Denial
			switch {
			case tc.rule == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.rule != "" && (!errors.As(err, &d) || d.Rule != tc.rule):
				t.Fatalf("got %v, want a denial by %s", err, tc.rule)
			}
		})
	}
}

func TestApprovalManifestErrors(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"approver of no endpoint", `"endpoint:people/alice", "endpoint:people/lead"`, `"endpoint:nobody/alice"`, `approver names no endpoint "nobody"`},
		{"approver not an identity", `"endpoint:people/alice", "endpoint:people/lead"`, `"alice"`, `must be endpoint:<name>`},
		{"a source approver without a login", `"endpoint:people/alice", "endpoint:people/lead"`, `"source:github"`, `must be source:<name>/<login>`},
		{"approver of no source", `"endpoint:people/alice", "endpoint:people/lead"`, `"source:gitlab/alice"`, `approver names no source "gitlab"`},
		{"no approvers", `approvers: ["endpoint:people"], `, ``, `approval needs approvers`},
		{"timeout too long", `timeout: 30m`, `timeout: 200h`, `at most 168h`},
		{"unknown trigger", `triggers: [deploy]`, `triggers: [deploi]`, `no trigger "web/deploi"`},
		{"trigger with app on a grant", `triggers: [deploy]`, `triggers: [web/deploy]`, `write the trigger's name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := strings.Replace(gatedRoot, tc.from, tc.to, 1)
			if root == gatedRoot {
				t.Fatal("the replacement changed nothing")
			}
			_, err := loadGated(t, root)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCommandsManifest(t *testing.T) {
	withCommands := func(commands string) string {
		return strings.Replace(gatedRoot, "secret: {env: GH}}", "secret: {env: GH}, commands: "+commands+"}", 1)
	}
	rules, err := loadGated(t, withCommands(`{retest: [alice, "team:acme/ci"], approve: [Bob]}`))
	if err != nil {
		t.Fatal(err)
	}
	src := rules.Source("github")
	for _, tc := range []struct {
		command, login string
		teams          []string
		rule           string
	}{
		{"retest", "alice", nil, ""},
		{"retest", "ALICE", nil, ""}, // logins are case-insensitive
		{"retest", "carol", []string{"acme/ci"}, ""},
		{"retest", "carol", []string{"acme/other"}, "commands.retest"},
		{"approve", "bob", nil, ""},
		{"approve", "alice", nil, "commands.approve"},
		{"cancel", "alice", nil, "commands.cancel"},
	} {
		err := policy.MayCommand(src, tc.command, tc.login, tc.teams)
		var d *policy.Denial
		if tc.rule == "" && err != nil || tc.rule != "" && (!errors.As(err, &d) || d.Rule != tc.rule) {
			t.Errorf("%s by %s %v: %v, want rule %q", tc.command, tc.login, tc.teams, err, tc.rule)
		}
	}
	for _, bad := range []string{`{retest: ["*"]}`, `{retest: ["team:acme"]}`, `{okToTest: ["a b"]}`} {
		if _, err := loadGated(t, withCommands(bad)); err == nil || !strings.Contains(err.Error(), "commands.") {
			t.Errorf("commands %s: %v", bad, err)
		}
	}
}

// BenchmarkGate is the approval gates' share of the request path: one
// production target held by the endpoint's gate.
func BenchmarkGate(b *testing.B) {
	rules, err := routing.Load(fstest.MapFS{"root.yaml": {Data: []byte(gatedRoot)}, "web.yaml": {Data: []byte(gatedWeb)}}, "rules", routing.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ev := event.New()
	ev.SetID("e")
	ev.SetType("com.acme.build")
	req := policy.Request{Caller: policy.EndpointCaller(rules.Endpoint("agent"), "bot"), Event: &ev,
		Targets: []routing.Target{{App: "web", Trigger: "build", Params: []routing.Param{{Name: "environment", Value: "production"}}}}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if policy.Gate(rules, req, now) == nil {
			b.Fatal("not held")
		}
	}
}
