package policy_test

import (
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// BenchmarkJudge is policy's share of the request path: one agent event and
// the target routing rendered for it.
func BenchmarkJudge(b *testing.B) {
	rules := load(b)
	ep := rules.Endpoint("agent")
	ev := agentEvent(b, "com.acme.deploy", `{"params":{"environment":"staging","revision":"abc"}}`, nil)
	c := policy.EndpointCaller(ep, "bot")
	ev.SetExtension("identity", c.Identity)
	targets := rules.Route(routing.Input{Source: "agent", Event: ev})
	if len(targets) != 1 {
		b.Fatalf("%d targets", len(targets))
	}
	req := policy.Request{Source: "agent", Caller: c, Event: ev, Targets: targets}
	b.ReportAllocs()
	for b.Loop() {
		if err := policy.Judge(rules, req); err != nil {
			b.Fatal(err)
		}
	}
}
