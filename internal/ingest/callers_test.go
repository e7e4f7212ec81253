package ingest

import (
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

const callersApps = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: deploy
    match: {types: [com.acme.deploy.requested]}
    run: {pipelineRef: deploy}
  - name: build
    match: {types: [com.acme.build.requested]}
    run: {pipelineRef: build}
`

const callersAPI = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: api
triggers:
  - name: deploy
    match: {types: [com.acme.api.deploy]}
    run: {pipelineRef: deploy}
`

// loadCallersRules loads a root whose endpoints section is endpoints, with
// the apps web (deploy, build) and api (deploy) granting endpoint:bots.
func loadCallersRules(t *testing.T, endpoints string, env map[string]string) (*routing.Rules, error) {
	t.Helper()
	root := `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - {name: web, manifest: web.yaml, namespaces: [web-ci], identities: ["endpoint:bots"]}
  - {name: api, manifest: api.yaml, namespaces: [api-ci], identities: ["endpoint:bots"]}
endpoints:
` + endpoints
	dir := t.TempDir()
	for name, data := range map[string]string{"root.yaml": root, "web.yaml": callersApps, "api.yaml": callersAPI} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := LoadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) {
		if name == "GH" {
			return "x", true
		}
		v, ok := env[name]
		return v, ok
	}
	return routing.LoadDir(dir, opts)
}

// One endpoint shared by several bots, each held to its own narrower scope
// by callers[]; a bot that matches no entry may do nothing.
func TestEndpointCallerScopes(t *testing.T) {
	webBot, apiBot, stranger := hex.EncodeToString(newSecret(t)), hex.EncodeToString(newSecret(t)), hex.EncodeToString(newSecret(t))
	rules, err := loadCallersRules(t, `  - name: bots
    auth: {tokens: {env: BOT_TOKENS}}
    scope:
      apps: [web, api]
      eventTypes: ["com.acme.*"]
      params: [environment, revision]
    callers:
      - principal: web-bot
        scope: {apps: [web], params: [revision], eventTypes: [com.acme.build.requested, com.acme.api.deploy]}
      - principal: "api-*"
        scope: {triggers: [api/deploy]}
`, map[string]string{"BOT_TOKENS": strings.Join([]string{hashLine(webBot, "web-bot"), hashLine(apiBot, "api-bot-1"), hashLine(stranger, "stranger")}, "\n")})
	if err != nil {
		t.Fatal(err)
	}
	q := newMemStore()
	hs := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: q, Status: q, Audit: q.Audit, MaxBody: 1 << 20}))
	t.Cleanup(hs.Close)
	es := &endpointServer{url: hs.URL}

	tests := []struct {
		name, token string
		body        []byte
		status      int
		rule        string
	}{
		{"web-bot builds web", webBot, agentEvent("c-1", "com.acme.build.requested", nil, map[string]string{"revision": "abc"}), 202, ""},
		{"web-bot reaches another app", webBot, agentEvent("c-2", "com.acme.api.deploy", nil, nil), 403, "callers[0].scope.apps"},
		{"web-bot sends a type only the endpoint allows", webBot, agentEvent("c-3", "com.acme.deploy.requested", nil, nil), 403, "callers[0].scope.eventTypes"},
		{"web-bot sets a param only the endpoint allows", webBot, agentEvent("c-4", "com.acme.build.requested", nil, map[string]string{"environment": "prod"}), 403, "callers[0].scope.params"},
		{"api-bot deploys api", apiBot, agentEvent("c-5", "com.acme.api.deploy", nil, nil), 202, ""},
		{"api-bot builds web", apiBot, agentEvent("c-6", "com.acme.build.requested", nil, nil), 403, "callers[1].scope.triggers"},
		{"a token no caller entry names", stranger, agentEvent("c-7", "com.acme.build.requested", nil, nil), 403, "callers"},
		{"the endpoint's own scope still binds", apiBot, agentEvent("c-8", "org.other.event", nil, nil), 403, "scope.eventTypes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := es.post(t, "bots", tt.token, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if tt.rule != "" {
				var e ErrorResponse
				if err := json.Unmarshal(body, &e); err != nil || e.Rule != tt.rule {
					t.Fatalf("body %s: rule %q, want %q", body, e.Rule, tt.rule)
				}
			}
		})
	}
	if n, err := q.Pending(t.Context()); err != nil || n != 2 {
		t.Fatalf("%d work items queued (%v), want the 2 accepted", n, err)
	}
}

// A caller's scope may only narrow the endpoint's: load refuses anything
// else, with the line.
func TestEndpointCallerScopesOnlyNarrow(t *testing.T) {
	for _, tc := range []struct{ callers, want string }{
		{"      - principal: a\n        scope: {apps: [api]}\n", `callers[0]: app "api" is not in the endpoint's scope`},
		{"      - principal: a\n        scope: {triggers: [api/deploy]}\n", `callers[0]: trigger "api/deploy" is not in the endpoint's scope`},
		{"      - principal: a\n        scope: {triggers: [web/nope]}\n", `callers[0]: no trigger "web/nope"`},
		{"      - principal: a\n        scope: {params: [image]}\n", `param "image" is not in the endpoint's scope.params`},
		{"      - principal: a\n        scope: {eventsPerMinute: 100}\n", `eventsPerMinute 100 exceeds the endpoint's 60`},
		{"      - principal: a\n        scope: {maxBodyBytes: 10}\n", `maxBodyBytes is set per endpoint`},
		{"      - scope: {apps: [web]}\n", `principal is required`},
	} {
		_, err := loadCallersRules(t, `  - name: bots
    auth: {tokens: {env: T}}
    scope: {apps: [web], eventTypes: ["com.acme.*"], params: [revision]}
    callers:
`+tc.callers, map[string]string{"T": hashLine("x", "a")})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "root.yaml:") {
			t.Errorf("callers %q: got %v, want an error with %q and its line", tc.callers, err, tc.want)
		}
	}
}

// With OIDC the principal is the token's subject: GitHub Actions subjects
// contain "/", so "**" is what matches any branch.
func TestEndpointCallerScopesOIDCSubject(t *testing.T) {
	iss := newAgentIssuer(t)
	rules, err := loadCallersRules(t, `  - name: bots
    auth:
      oidc: {issuer: `+iss.url+`, audience: switchyard, jwksURL: `+iss.jwksURL+`}
    scope: {apps: [web, api], eventTypes: ["com.acme.*"]}
    callers:
      - principal: "repo:acme/release-bot:ref:refs/heads/**"
        scope: {apps: [web]}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := newMemStore()
	hs := httptest.NewServer(NewServer(Config{Rules: routing.NewHolder(rules), Publisher: q, Status: q, MaxBody: 1 << 20}))
	t.Cleanup(hs.Close)
	es := &endpointServer{url: hs.URL}
	sub := func(s string) func(map[string]any) { return func(c map[string]any) { c["sub"] = s } }
	for _, tc := range []struct {
		name, sub string
		typ       string
		status    int
		rule      string
	}{
		{"a release-bot branch, its app", "repo:acme/release-bot:ref:refs/heads/feature/x", "com.acme.build.requested", 202, ""},
		{"a release-bot branch, another app", "repo:acme/release-bot:ref:refs/heads/main", "com.acme.api.deploy", 403, "callers[0].scope.apps"},
		{"a tag of the same repository", "repo:acme/release-bot:ref:refs/tags/v1", "com.acme.build.requested", 403, "callers"},
		{"another repository", "repo:acme/other:ref:refs/heads/main", "com.acme.build.requested", 403, "callers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := es.post(t, "bots", iss.token(t, sub(tc.sub)), agentEvent("o-"+tc.name, tc.typ, nil, nil))
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			var e ErrorResponse
			if tc.rule != "" && (json.Unmarshal(body, &e) != nil || e.Rule != tc.rule) {
				t.Fatalf("body %s, want rule %q", body, tc.rule)
			}
		})
	}
}
