package policy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

const root = `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - name: web
    manifest: web.yaml
    namespaces: [web-ci]
    identities: ["endpoint:agent", "endpoint:bots"]
endpoints:
  - name: agent
    auth: {tokens: {env: T}}
    scope:
      apps: [web]
      eventTypes: ["*"]
      params: [environment, revision]
      environments: [staging]
  - name: pinned
    auth: {tokens: {env: T}}
    scope:
      eventTypes: ["com.acme.*"]
      branches: [main]
      refs: ["refs/heads/main"]
  - name: bots
    auth: {tokens: {env: T}}
    scope:
      apps: [web]
      eventTypes: ["com.acme.*"]
      params: [environment]
    callers:
      - principal: deployer
        scope: {triggers: [web/deploy], params: [environment], eventsPerMinute: 2}
`

const web = `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: deploy
    match: {types: [com.acme.deploy]}
    run:
      pipelineRef: deploy
      params:
        - {name: environment, value: $(body.params.environment)}
  - name: promote
    match: {types: [com.acme.promote]}
    run:
      pipelineRef: deploy
      params:
        - {name: environment, value: $(body.target.env)}
  - name: build
    match: {types: [com.acme.build]}
    run: {pipelineRef: build}
`

func load(t testing.TB) *routing.Rules {
	t.Helper()
	rules, err := routing.Load(fstest.MapFS{
		"root.yaml": {Data: []byte(root)},
		"web.yaml":  {Data: []byte(web)},
	}, "rules", routing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func agentEvent(t testing.TB, typ, data string, ext map[string]string) *event.Event {
	t.Helper()
	ev := event.New()
	ev.SetID("e-1")
	ev.SetSource("/v1/events/agent")
	ev.SetType(typ)
	for k, v := range ext {
		ev.SetExtension(k, v)
	}
	if data != "" {
		if err := ev.SetData(event.ApplicationJSON, json.RawMessage(data)); err != nil {
			t.Fatal(err)
		}
	}
	return &ev
}

// judge routes ev as endpoint name's principal and has policy judge it
// with the targets routing rendered.
func judge(t *testing.T, rules *routing.Rules, name, principal string, ev *event.Event) error {
	t.Helper()
	ep := rules.Endpoint(name)
	c := policy.EndpointCaller(ep, principal)
	ev.SetExtension("identity", c.Identity)
	targets := rules.Route(routing.Input{Source: name, Event: ev})
	return policy.Judge(rules, policy.Request{Source: name, Caller: c, Event: ev, Targets: targets})
}

func ruleOf(err error) string {
	var d *policy.Denial
	if errors.As(err, &d) {
		return d.Rule
	}
	return ""
}

// TestJudgeOnWhatRuns covers the boundary attacks of the agent scope: the
// scope is judged on the exact keys the renderer reads and on the params
// the run gets, so no decoding difference lets production through.
func TestJudgeOnWhatRuns(t *testing.T) {
	rules := load(t)
	tests := []struct {
		name, endpoint, principal, typ, data string
		ext                                  map[string]string
		rule                                 string // "" allowed
	}{
		{name: "staging deploy", endpoint: "agent", typ: "com.acme.deploy", data: `{"params":{"environment":"staging"}}`},
		{name: "two params", endpoint: "agent", typ: "com.acme.deploy", data: `{"params":{"environment":"staging","revision":"abc"}}`},
		// A struct decoder folds case and read "PARAMS" (staging), while
		// $(body.params.environment) rendered production.
		{name: "case variant of params", endpoint: "agent", typ: "com.acme.deploy",
			data: `{"params":{"environment":"production"},"PARAMS":{"environment":"staging"}}`, rule: "scope.params"},
		{name: "case variant of a param", endpoint: "agent", typ: "com.acme.deploy",
			data: `{"params":{"environment":"staging","Environment":"production"}}`, rule: "scope.params"},
		{name: "production in params", endpoint: "agent", typ: "com.acme.deploy",
			data: `{"params":{"environment":"production"}}`, rule: "scope.environments"},
		// The binding reads another field: the data's params say staging,
		// the rendered run says production.
		{name: "production rendered from elsewhere", endpoint: "agent", typ: "com.acme.promote",
			data: `{"params":{"environment":"staging"},"target":{"env":"production"}}`, rule: "scope.environments"},
		{name: "a reserved type", endpoint: "agent", typ: "dev.switchyard.git.push", data: `{}`, rule: "scope.eventTypes"},
		{name: "branch listed", endpoint: "pinned", typ: "com.acme.build", ext: map[string]string{"branch": "main"}},
		{name: "no branch", endpoint: "pinned", typ: "com.acme.build", rule: "scope.branches"},
		{name: "a tag is a ref", endpoint: "pinned", typ: "com.acme.build", ext: map[string]string{"branch": "main", "tag": "v1"}, rule: "scope.refs"},
		{name: "another ref", endpoint: "pinned", typ: "com.acme.build", ext: map[string]string{"branch": "main", "ref": "refs/heads/dev"}, rule: "scope.refs"},
		{name: "caller's trigger", endpoint: "bots", principal: "deployer", typ: "com.acme.deploy", data: `{"params":{"environment":"x"}}`},
		{name: "caller's other trigger", endpoint: "bots", principal: "deployer", typ: "com.acme.build", rule: "callers[0].scope.triggers"},
		{name: "no caller entry", endpoint: "bots", principal: "stranger", typ: "com.acme.build", rule: "callers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := judge(t, rules, tt.endpoint, tt.principal, agentEvent(t, tt.typ, tt.data, tt.ext))
			if got := ruleOf(err); got != tt.rule || (tt.rule == "") != (err == nil) {
				t.Fatalf("Judge = %v (rule %q), want rule %q", err, got, tt.rule)
			}
			if err != nil && !errors.Is(err, policy.ErrDenied) {
				t.Fatalf("Judge = %v, not an ErrDenied", err)
			}
		})
	}
}

// TestJudgeTemplateParams: a template's rendered PipelineRun or TaskRun is
// judged on its spec.params, whatever shape the value has.
func TestJudgeTemplateParams(t *testing.T) {
	rules := load(t)
	ep := rules.Endpoint("agent")
	ev := agentEvent(t, "com.acme.deploy", `{}`, nil)
	for _, tc := range []struct {
		kind, value string
		ok          bool
	}{{"PipelineRun", `"staging"`, true}, {"PipelineRun", `"production"`, false}, {"PipelineRun", `["staging"]`, false},
		{"TaskRun", `"staging"`, true}, {"TaskRun", `"production"`, false}} {
		res := fmt.Sprintf(`{"apiVersion":"tekton.dev/v1","kind":%q,"spec":{"params":[{"name":"environment","value":%s}]}}`, tc.kind, tc.value)
		target := routing.Target{App: "web", Trigger: "deploy", Namespace: "web-ci", Resource: json.RawMessage(res)}
		if tc.kind == routing.KindTaskRun {
			target.Kind = routing.KindTaskRun
		}
		err := policy.Judge(rules, policy.Request{Source: "agent", Caller: policy.EndpointCaller(ep, ""), Event: ev, Targets: []routing.Target{target}})
		if (err == nil) != tc.ok {
			t.Errorf("environment %s: Judge = %v, want ok=%v", tc.value, err, tc.ok)
		}
	}
}

// TestRecheck: dispatch's second opinion rebuilds the caller from the
// event; an endpoint removed since is refused.
func TestRecheck(t *testing.T) {
	rules := load(t)
	ev := agentEvent(t, "com.acme.deploy", "", map[string]string{"identity": "endpoint:gone", "principal": "x"})
	err := policy.Recheck(rules, "gone", ev, routing.Target{App: "web", Trigger: "deploy", Namespace: "web-ci"})
	if ruleOf(err) != "endpoint" {
		t.Fatalf("Recheck of a removed endpoint's work = %v, want rule endpoint", err)
	}
	ev = agentEvent(t, "com.acme.deploy", "", map[string]string{"identity": "endpoint:agent", "principal": "x"})
	prod := routing.Target{App: "web", Trigger: "deploy", Namespace: "web-ci", Params: []routing.Param{{Name: "environment", Value: "production"}}}
	if err := policy.Recheck(rules, "agent", ev, prod); ruleOf(err) != "scope.environments" {
		t.Fatalf("Recheck of a production run = %v, want scope.environments", err)
	}
	prod.Params[0].Value = "staging"
	if err := policy.Recheck(rules, "agent", ev, prod); err != nil {
		t.Fatalf("Recheck of a staging run = %v", err)
	}
}

func TestMeter(t *testing.T) {
	rules := load(t)
	var m policy.Meter
	c := policy.EndpointCaller(rules.Endpoint("bots"), "deployer") // 2 a minute
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := m.Take(c, 2, t0); err != nil {
		t.Fatal(err)
	}
	err := m.Take(c, 1, t0)
	var rl *policy.RateLimit
	if !errors.As(err, &rl) || !errors.Is(err, policy.ErrRateLimited) || rl.RetryAfter != 30*time.Second {
		t.Fatalf("third event in the minute: %v, want a 30 s RateLimit", err)
	}
	if err := m.Take(c, 1, t0.Add(30*time.Second)); err != nil {
		t.Fatalf("after 30 s: %v", err)
	}
	if err := m.Take(policy.SourceCaller("github"), 1000, t0); err != nil {
		t.Fatalf("sources are not metered: %v", err)
	}
}

// TestMeterEvictsIdleBuckets: buckets of callers that went quiet are
// dropped once there are many, so the map cannot grow without bound.
func TestMeterEvictsIdleBuckets(t *testing.T) {
	rules := load(t)
	var m policy.Meter
	ep := rules.Endpoint("agent")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10000 {
		// One event each; an hour later every earlier bucket is full again.
		at := t0.Add(time.Duration(i/4000) * time.Hour)
		if err := m.Take(policy.EndpointCaller(ep, fmt.Sprintf("p-%d", i)), 1, at); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Len(); n > 4096 {
		t.Fatalf("%d buckets kept, want at most 4096", n)
	}
}

func TestSampler(t *testing.T) {
	s := policy.NewSampler(1, 2)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	kept := 0
	for range 10 {
		if s.Keep(&policy.Record{Decision: policy.DecisionUnauthenticated}, t0) {
			kept++
		}
	}
	if kept != 2 {
		t.Fatalf("kept %d of a burst of 10, want 2", kept)
	}
	rec := policy.Record{Decision: policy.DecisionUnauthenticated}
	if !s.Keep(&rec, t0.Add(time.Second)) || rec.Suppressed != 8 {
		t.Fatalf("next kept record: %+v, want suppressed 8", rec)
	}
	authed := policy.Record{Decision: policy.DecisionDenied, Identity: "endpoint:agent"}
	for range 10 {
		if !s.Keep(&authed, t0) {
			t.Fatal("a decision about an authenticated caller was dropped")
		}
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", 100) // 2 bytes each
	got := policy.Truncate(long, 64)
	if len(got) > 64 || !strings.HasSuffix(got, "…") || !json.Valid([]byte(`"`+got+`"`)) {
		t.Fatalf("Truncate = %q (%d bytes)", got, len(got))
	}
	if policy.Truncate("github", 64) != "github" {
		t.Fatal("a short name changed")
	}
}

func TestDecisionFor(t *testing.T) {
	for status, want := range map[int]string{401: policy.DecisionUnauthenticated, 403: policy.DecisionDenied, 429: policy.DecisionRateLimited,
		503: policy.DecisionUnavailable, 500: policy.DecisionUnavailable, 400: policy.DecisionInvalid, 404: policy.DecisionInvalid, 413: policy.DecisionInvalid} {
		if got := policy.DecisionFor(status); got != want {
			t.Errorf("DecisionFor(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestTruncateEdges: a name of exactly the limit is kept whole; a cut never
// splits a UTF-8 sequence.
func TestTruncateEdges(t *testing.T) {
	exact := strings.Repeat("a", 64)
	if got := policy.Truncate(exact, 64); got != exact {
		t.Fatalf("a 64-byte name was cut: %q", got)
	}
	// Not UTF-8 at all (a path is bytes): cut to the marker, never past the start.
	if got := policy.Truncate(strings.Repeat("\x80", 100), 64); got != "…" {
		t.Errorf("Truncate of continuation bytes = %q", got)
	}
	for _, s := range []string{strings.Repeat("é", 40), "a" + strings.Repeat("é", 40), strings.Repeat("€", 30)} {
		got := policy.Truncate(s, 64)
		if !utf8.ValidString(got) || len(got) > 64 || len(got) < 60 {
			t.Errorf("Truncate(%q) = %q (%d bytes)", s, got, len(got))
		}
	}
}

// TestMeterEvictsOnlyFullBuckets: past the bound, only buckets that are
// full again are dropped; a busy caller keeps its state.
func TestMeterEvictsOnlyFullBuckets(t *testing.T) {
	rules := load(t)
	ep := rules.Endpoint("agent")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var busy policy.Meter
	for i := range 4097 {
		if err := busy.Take(policy.EndpointCaller(ep, fmt.Sprintf("p-%d", i)), 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	if n := busy.Len(); n != 4097 {
		t.Fatalf("%d buckets after 4097 busy callers, want all 4097 kept (none is idle)", n)
	}
	var idle policy.Meter
	for i := range 4096 {
		if err := idle.Take(policy.EndpointCaller(ep, fmt.Sprintf("p-%d", i)), 1, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := idle.Take(policy.EndpointCaller(ep, "late"), 1, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := idle.Len(); n != 1 {
		t.Fatalf("%d buckets after the bound was reached with every other caller idle, want 1", n)
	}
}

func TestMayRead(t *testing.T) {
	rules := load(t)
	c := policy.EndpointCaller(rules.Endpoint("agent"), "bot-1")
	st := policy.EventStatus{Identity: "endpoint:agent", Principal: "bot-1"}
	if !policy.MayRead(rules, c, st) {
		t.Error("the sender may not read its own event")
	}
	for _, other := range []policy.EventStatus{{Identity: "endpoint:agent", Principal: "bot-2"}, {Identity: "endpoint:bots", Principal: "bot-1"}} {
		if policy.MayRead(rules, c, other) {
			t.Errorf("%+v readable by another caller", other)
		}
	}
}

func TestDenialText(t *testing.T) {
	err := error(&policy.Denial{Rule: "scope.params", Message: "param \"x\" may not be set"})
	if err.Error() != `scope.params: param "x" may not be set` || !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("Denial = %q", err)
	}
	rl := error(&policy.RateLimit{PerMinute: 10, RetryAfter: 1500 * time.Millisecond})
	if rl.Error() != "rate limited: at most 10 events a minute; retry in 2s" {
		t.Fatalf("RateLimit = %q", rl)
	}
}
