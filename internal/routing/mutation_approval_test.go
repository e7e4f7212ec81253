package routing

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const approvalRoot = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci]
    sources: [github]
    approval: {triggers: [deploy], approvers: ["endpoint:people"], timeout: 2h}
  - name: api
    manifest: apps/api.yaml
    namespaces: [ci]
    sources: [github]
endpoints:
  - name: agent
    auth: {tokens: {env: T}}
    scope: {eventTypes: [com.acme.none]}
    approval:
      environments: [production]
      triggers: [api/build]
      approvers: ["endpoint:people/alice", "endpoint:ops", "source:github/Octocat"]
  - name: people
    auth: {tokens: {env: T}}
    scope: {eventTypes: [com.acme.none]}
  - name: ops
    auth: {tokens: {env: T}}
    scope: {eventTypes: [com.acme.none]}
    approval: {approvers: ["endpoint:people"], timeout: 168h}
`

func loadApproval(root string) (*Rules, error) {
	app := func(name string) []byte {
		return []byte("apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: " + name +
			"\ntriggers:\n  - name: build\n    run: {pipelineRef: build}\n  - name: deploy\n    run: {pipelineRef: deploy}\n")
	}
	return Load(fstest.MapFS{"root.yaml": {Data: []byte(root)}, "apps/web.yaml": {Data: app("web")}, "apps/api.yaml": {Data: app("api")}}, "rules", Options{})
}

// TestApprovalCompiled: the gates of the root, compiled and found by rule
// name and by app.
func TestApprovalCompiled(t *testing.T) {
	rules, err := loadApproval(approvalRoot)
	if err != nil {
		t.Fatal(err)
	}
	agent := &Approval{Rule: "endpoints[agent].approval", Environments: []string{"production"}, Triggers: []string{"api/build"},
		Approvers: []Approver{{Endpoint: "people", Principal: "alice"}, {Endpoint: "ops"}, {Source: "github", Principal: "Octocat"}},
		Timeout:   24 * time.Hour}
	ops := &Approval{Rule: "endpoints[ops].approval", Approvers: []Approver{{Endpoint: "people"}}, Timeout: 7 * 24 * time.Hour}
	web := &Approval{Rule: "apps[web].approval", Triggers: []string{"web/deploy"}, Approvers: []Approver{{Endpoint: "people"}}, Timeout: 2 * time.Hour}
	for rule, want := range map[string]*Approval{
		"endpoints[agent].approval": agent, "endpoints[ops].approval": ops, "apps[web].approval": web,
		"endpoints[people].approval": nil, "apps[api].approval": nil, "apps[gone].approval": nil,
	} {
		if got := rules.Gate(rule); !reflect.DeepEqual(got, want) {
			t.Errorf("Gate(%s) = %+v, want %+v", rule, got, want)
		}
	}
	for app, want := range map[string]*Approval{"web": web, "api": nil, "gone": nil} {
		if got := rules.AppApproval(app); !reflect.DeepEqual(got, want) {
			t.Errorf("AppApproval(%s) = %+v, want %+v", app, got, want)
		}
	}
}

// TestApprovalSelects: a gate holds the targets its triggers or its
// environments name, every target when it names neither.
func TestApprovalSelects(t *testing.T) {
	both := &Approval{Environments: []string{"production"}, Triggers: []string{"web/deploy"}}
	envs := &Approval{Environments: []string{"production"}}
	triggers := &Approval{Triggers: []string{"web/deploy"}}
	for _, tc := range []struct {
		gate         *Approval
		app, trigger string
		envs         []string
		want         bool
	}{
		{&Approval{}, "web", "build", nil, true},
		{both, "web", "deploy", nil, true},
		{both, "web", "build", []string{"staging", "production"}, true},
		{both, "web", "build", []string{"staging"}, false},
		{both, "api", "deploy", nil, false},
		{envs, "web", "deploy", nil, false},
		{envs, "web", "deploy", []string{"production"}, true},
		{triggers, "web", "build", nil, false},
		{triggers, "web", "build", []string{"production"}, false},
		{triggers, "web", "deploy", nil, true},
		{triggers, "web/deplo", "y", nil, false},
	} {
		if got := tc.gate.Selects(tc.app, tc.trigger, tc.envs); got != tc.want {
			t.Errorf("%+v selects %s/%s %v: %v, want %v", tc.gate, tc.app, tc.trigger, tc.envs, got, tc.want)
		}
	}
}

// TestApprovalIsApprover: an endpoint's principals, one principal of it,
// or a source's user by login, case-insensitively; never no principal.
func TestApprovalIsApprover(t *testing.T) {
	gate := &Approval{Approvers: []Approver{{Endpoint: "people", Principal: "alice"}, {Endpoint: "ops"}, {Source: "github", Principal: "Octocat"}}}
	for _, tc := range []struct {
		identity, principal string
		want                bool
	}{
		{"endpoint:people", "alice", true},
		{"endpoint:people", "bob", false},
		{"endpoint:people", "", false},
		{"endpoint:ops", "anyone", true},
		{"endpoint:ops", "", false},
		{"endpoint:opsx", "anyone", false},
		{"ops", "anyone", false},
		{"source:github", "octocat", true},
		{"source:github", "alice", false},
		{"source:gitlab", "octocat", false},
		{"endpoint:github", "Octocat", false},
		{"source:people", "alice", false},
	} {
		if got := gate.IsApprover(tc.identity, tc.principal); got != tc.want {
			t.Errorf("IsApprover(%s, %q) = %v, want %v", tc.identity, tc.principal, got, tc.want)
		}
	}
}

// TestApprovalSpecErrors: each malformed gate is refused at its line.
func TestApprovalSpecErrors(t *testing.T) {
	const web = `approval: {triggers: [deploy], approvers: ["endpoint:people"], timeout: 2h}`
	const ops = `approval: {approvers: ["endpoint:people"], timeout: 168h}`
	for _, tc := range []struct {
		name, from, to string
		want           []string // each a problem's beginning
	}{
		{"grant trigger with its app", web, `approval: {triggers: [web/deploy], approvers: ["endpoint:people"]}`,
			[]string{`rules/root.yaml:10: app "web": approval trigger "web/deploy": write the trigger's name (the app is "web")`,
				`rules/root.yaml:10: apps[web].approval: no trigger "web/web/deploy"`}},
		{"endpoint trigger without its app", `triggers: [api/build]`, `triggers: [build]`,
			[]string{`rules/root.yaml:21: endpoint "agent": approval trigger "build" must be written app/trigger`,
				`rules/root.yaml:21: endpoints[agent].approval: no trigger "build"`}},
		{"no approvers", ops, `approval: {timeout: 1h}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approval needs approvers`}},
		{"source approver without a login", ops, `approval: {approvers: ["source:github"]}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approver "source:github" must be source:<name>/<login>`}},
		{"source approver without a source", ops, `approval: {approvers: ["source:/alice"]}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approver "source:/alice" must be source:<name>/<login>`}},
		{"source approver, empty login", ops, `approval: {approvers: ["source:github/"]}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approver "source:github/" must be source:<name>/<login>`}},
		{"not an identity", ops, `approval: {approvers: ["people"]}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approver "people" must be endpoint:<name>, endpoint:<name>/<principal> or source:<name>/<login>`}},
		{"endpoint approver without a name", ops, `approval: {approvers: ["endpoint:"]}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approver "endpoint:" must be endpoint:<name>`}},
		{"endpoint approver, empty principal", ops, `approval: {approvers: ["endpoint:people/"]}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approver "endpoint:people/" must be endpoint:<name>`}},
		{"bad timeout", ops, `approval: {approvers: ["endpoint:people"], timeout: soon}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approval timeout "soon": time: invalid duration "soon"`}},
		{"zero timeout", ops, `approval: {approvers: ["endpoint:people"], timeout: 0s}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approval timeout 0s must be positive and at most 168h0m0s`}},
		{"negative timeout", ops, `approval: {approvers: ["endpoint:people"], timeout: -1h}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approval timeout -1h0m0s must be positive`}},
		{"timeout above the most", ops, `approval: {approvers: ["endpoint:people"], timeout: 168h1ns}`,
			[]string{`rules/root.yaml:29: endpoint "ops": approval timeout 168h0m0.000000001s must be positive and at most 168h0m0s`}},
		{"source approver of no source", ops, `approval: {approvers: ["source:gitlab/alice"]}`,
			[]string{`rules/root.yaml:29: endpoints[ops].approval: approver names no source "gitlab"`}},
		{"endpoint approver of no endpoint", ops, `approval: {approvers: ["endpoint:nobody/alice"]}`,
			[]string{`rules/root.yaml:29: endpoints[ops].approval: approver names no endpoint "nobody"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := strings.Replace(approvalRoot, tc.from, tc.to, 1)
			if root == approvalRoot {
				t.Fatal("the replacement changed nothing")
			}
			_, err := loadApproval(root)
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != len(tc.want) {
				t.Fatalf("Load = %v, want the problems %q", err, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(ps[i].String(), w) {
					t.Errorf("problem %d: %s, want %q", i, ps[i], w)
				}
			}
		})
	}
}
