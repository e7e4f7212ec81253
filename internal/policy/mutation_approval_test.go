package policy_test

// Tests added for mutants that lived (docs/testing.md, "Mutation testing").

import (
	"errors"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/policy"
)

// The sender is recognised by its identity when neither side has a
// principal (a webhook source deciding on its own event).
func TestMayDecideSelfWithoutPrincipal(t *testing.T) {
	rules, err := loadGated(t, gatedRoot)
	if err != nil {
		t.Fatal(err)
	}
	held := policy.Approval{Identity: "source:github", Gates: []string{"apps[web].approval"}}
	var d *policy.Denial
	if err := policy.MayDecide(rules, policy.SourceCaller("github"), held); !errors.As(err, &d) || d.Rule != "approval.self" {
		t.Fatalf("MayDecide = %v, want the denial approval.self", err)
	}
}

func TestDecider(t *testing.T) {
	rules, err := loadGated(t, gatedRoot)
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range map[policy.Caller]string{
		policy.SourceCaller("github"):                            "source:github",
		policy.EndpointCaller(rules.Endpoint("people"), "alice"): "endpoint:people alice",
	} {
		if got := policy.Decider(c); got != want {
			t.Errorf("Decider = %q, want %q", got, want)
		}
	}
}

func TestHoldHolds(t *testing.T) {
	var none *policy.Hold
	if none.Holds("web", "deploy") {
		t.Error("a nil hold holds web/deploy")
	}
	h := &policy.Hold{Targets: []string{"web/deploy"}}
	if !h.Holds("web", "deploy") || h.Holds("web", "build") || h.Holds("api", "deploy") {
		t.Errorf("hold of web/deploy: deploy %v, build %v, api/deploy %v", h.Holds("web", "deploy"), h.Holds("web", "build"), h.Holds("api", "deploy"))
	}
}
