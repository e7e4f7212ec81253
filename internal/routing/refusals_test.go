package routing

import (
	"strings"
	"testing"
)

const okWebApp = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: build
    run: {pipelineRef: build}
`

// TestLoadRefusesOpenOIDC: issuer and audience alone admit any repository
// of the issuer; a source's OIDC without email any service account.
func TestLoadRefusesOpenOIDC(t *testing.T) {
	root := `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: github
    kind: github
    secret: {env: GH_SECRET}
  - name: gar
    kind: gar
    oidc:
      issuer: https://accounts.google.com
      audience: https://switchyard.example/v1/hooks/gar
  - name: gar-ok
    kind: gar
    oidc:
      issuer: https://accounts.google.com
      audience: https://switchyard.example/v1/hooks/gar-ok
      email: pusher@acme.iam.gserviceaccount.com
apps:
  - name: web
    manifest: apps/web.yaml
    namespaces: [ci]
    sources: [github, gar, gar-ok]
    identities: ["endpoint:agent", "endpoint:bots", "endpoint:guarded"]
endpoints:
  - name: agent
    auth:
      oidc: {issuer: https://token.actions.githubusercontent.com, audience: switchyard}
    scope: {eventTypes: [com.acme.deploy]}
  - name: bots
    auth:
      oidc: {issuer: https://token.actions.githubusercontent.com, audience: switchyard}
    scope: {eventTypes: [com.acme.deploy]}
    callers:
      - principal: "repo:acme/release-bot:ref:refs/heads/main"
  - name: guarded
    auth:
      oidc: {issuer: https://token.actions.githubusercontent.com, audience: switchyard, when: "claims.repository == 'acme/release-bot'"}
    scope: {eventTypes: [com.acme.deploy]}
`
	wantProblems(t, map[string]string{"root.yaml": root, "apps/web.yaml": okWebApp}, []string{
		`rules/root.yaml:9: source "gar": oidc needs email, the service account the push is signed for: without it a token of any Google service account`,
		`rules/root.yaml:27: endpoint "agent": oidc needs when (such as claims.repository == 'acme/release-bot') or callers: issuer and audience alone admit every token the issuer signs, and a GitHub Actions workflow chooses its own audience`,
	})
}

// TestLoadRefusesWideScopes: a scope of only negations allows everything
// else; a principal "!x" matches every other caller; agents may not send
// the router's own types; an auditor must be an endpoint that exists.
func TestLoadRefusesWideScopes(t *testing.T) {
	root := testRoot + `    identities: ["endpoint:agent"]
endpoints:
  - name: agent
    auth: {tokens: {env: AGENT_TOKENS}}
    scope:
      eventTypes: ["!com.acme.secret"]
      branches: ["!main"]
      refs: ["!refs/tags/**"]
    callers:
      - principal: "!intruder"
        scope:
          eventTypes: [dev.switchyard.git.push, "dev.switchyard.*", "!dev.switchyard.git.tag", "*"]
          branches: ["**", "!main"]
      - principal: "**"
        scope: {eventTypes: ["com.acme.*"]}
auditors: ["endpoint:agent", "endpoint:ghost", "source:github", "admin"]
`
	wantProblems(t, map[string]string{"root.yaml": root, "apps/web.yaml": okWebApp}, []string{
		`rules/root.yaml:21: endpoint "agent": eventTypes !com.acme.secret has only negations, which allow every other value: list the allowed values, or write ["*", !com.acme.secret] to allow all others`,
		`rules/root.yaml:22: endpoint "agent": branches !main has only negations, which allow every other value: list the allowed values, or write ["**", !main] to allow all others`,
		`rules/root.yaml:23: endpoint "agent": refs !refs/tags/** has only negations`,
		`rules/root.yaml:25: endpoint "agent" callers[0]: principal "!intruder" is only a negation, which matches every other caller: an entry applies to the principals it matches, so to treat intruder apart list a caller with principal "intruder" before one with principal "**"`,
		`rules/root.yaml:27: endpoint "agent" callers[0]: event type "dev.switchyard.git.push" is reserved: dev.switchyard.* types are the router's own`,
		`rules/root.yaml:27: endpoint "agent" callers[0]: event type "dev.switchyard.*" is reserved`,
		`rules/root.yaml:31: auditors: "endpoint:ghost" names no endpoint "ghost"`,
		`rules/root.yaml:31: auditors: "source:github" is not an endpoint identity: only endpoint callers read event status, write endpoint:<endpoint name>`,
		`rules/root.yaml:31: auditors: "admin" is not an endpoint identity`,
	})
}

// TestLoadRefusesReservedTemplateKeys: a template may not set the labels and
// annotations dispatch and the run watcher trust, nor template a key.
func TestLoadRefusesReservedTemplateKeys(t *testing.T) {
	app := `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
resources: [tt.yaml]
triggers:
  - name: inline
    run:
      template:
        spec:
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata:
                generateName: x-
                labels:
                  app.kubernetes.io/managed-by: switchyard
                  acme.dev/team: web
              spec: {pipelineRef: {name: build}}
  - name: from-file
    run:
      template: {ref: impostor}
`
	tt := `apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata:
  name: impostor
spec:
  params: [{name: key, default: x}]
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata:
        generateName: x-
        labels:
          switchyard.dev/app: payments
          $(tt.params.key): v
        annotations:
          Switchyard.dev/event-id: forged
      spec: {pipelineRef: {name: build}}
`
	wantProblems(t, map[string]string{"root.yaml": testRoot, "apps/web.yaml": app, "apps/tt.yaml": tt}, []string{
		`rules/apps/web.yaml:16: trigger "inline": template.spec: metadata.labels: key "app.kubernetes.io/managed-by" is Switchyard's: dispatch sets it, and a template that set it could pass for another app's run`,
		`rules/apps/tt.yaml:13: TriggerTemplate "impostor": metadata.labels: key "switchyard.dev/app" is Switchyard's`,
		`rules/apps/tt.yaml:14: TriggerTemplate "impostor": metadata.labels: key "$(tt.params.key)" is templated: keys are fixed at load`,
		`rules/apps/tt.yaml:16: TriggerTemplate "impostor": metadata.annotations: key "Switchyard.dev/event-id" is Switchyard's`,
	})
}

func TestSourceMaxBodyBytes(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        int64
		problem     string
	}{
		{name: "default", value: "", want: 0},
		{name: "set", value: "    maxBodyBytes: 5242880\n", want: 5 << 20},
		{name: "25 MiB", value: "    maxBodyBytes: 26214400\n", want: 25 << 20},
		{name: "above 25 MiB", value: "    maxBodyBytes: 26214401\n", problem: `rules/root.yaml:7: source "github": maxBodyBytes 26214401 must be between 1 and 26214400 (25 MiB)`},
		{name: "negative", value: "    maxBodyBytes: -1\n", problem: `rules/root.yaml:7: source "github": maxBodyBytes -1 must be between 1 and 26214400`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{
				"root.yaml":     strings.Replace(testRoot, "    secret: {env: GH_SECRET}\n", "    secret: {env: GH_SECRET}\n"+tc.value, 1),
				"apps/web.yaml": okWebApp,
			}
			if tc.problem != "" {
				wantProblems(t, files, []string{tc.problem})
				return
			}
			if got := mustLoad(t, files).Source("github").MaxBodyBytes; got != tc.want {
				t.Errorf("MaxBodyBytes = %d, want %d", got, tc.want)
			}
		})
	}
}
