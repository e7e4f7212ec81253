package policy_test

import (
	"encoding/json"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// FuzzJudge: whatever data an agent sends, an event policy allows never
// runs outside the scope: every rendered environment is staging, and the
// params it sets (read as the renderer reads them) are all allowed.
func FuzzJudge(f *testing.F) {
	f.Add("com.acme.deploy", []byte(`{"params":{"environment":"staging"}}`))
	f.Add("com.acme.promote", []byte(`{"params":{"environment":"staging"},"target":{"env":"production"}}`))
	f.Add("com.acme.deploy", []byte(`{"params":{"environment":"production"},"PARAMS":{"environment":"staging"}}`))
	f.Add("com.acme.deploy", []byte(`{"params":{"environment":"staging"},"params":{"environment":"production"}}`))
	f.Add("dev.switchyard.git.push", []byte(`[]`))
	rules := load(f)
	ep := rules.Endpoint("agent")
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		ev := event.New()
		ev.SetID("f-1")
		ev.SetSource("/v1/events/agent")
		ev.SetType(typ)
		if ev.Validate() != nil {
			return
		}
		if err := ev.SetData(event.ApplicationJSON, data); err != nil {
			return
		}
		c := policy.EndpointCaller(ep, "")
		ev.SetExtension("identity", c.Identity)
		targets := rules.Route(routing.Input{Source: "agent", Event: &ev})
		if policy.Judge(rules, policy.Request{Source: "agent", Caller: c, Event: &ev, Targets: targets}) != nil {
			return
		}
		for _, tg := range targets {
			for _, p := range tg.Params {
				if p.Name == "environment" && p.Value != "staging" && p.Value != "" {
					t.Fatalf("allowed a run with environment %q from %s", p.Value, data)
				}
			}
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(data, &top) == nil {
			var ps map[string]json.RawMessage
			if json.Unmarshal(top["params"], &ps) == nil {
				for name := range ps {
					if name != "environment" && name != "revision" {
						t.Fatalf("allowed param %q from %s", name, data)
					}
				}
			}
		}
	})
}
