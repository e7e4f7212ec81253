package main

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/policy"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// TestGrantFollowsReloads: the grant dispatch asks is the one in force, so
// work queued before a reload that revoked it is refused (dead-lettered by
// the dispatcher), and forged work naming another namespace never was
// allowed.
func TestGrantFollowsReloads(t *testing.T) {
	rootWith := func(namespaces string) *routing.Rules {
		t.Helper()
		rules, err := routing.Load(fstest.MapFS{
			"root.yaml": {Data: []byte(`apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - {name: github, kind: github, secret: {env: GH}}
apps:
  - {name: web, manifest: web.yaml, namespaces: [` + namespaces + `], sources: [github]}
`)},
			"web.yaml": {Data: []byte(`apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - {name: build, match: {types: [dev.switchyard.git.push]}, run: {namespace: ` + namespaces + `, pipelineRef: build}}
`)},
		}, "rules", routing.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return rules
	}
	ev := event.New()
	ev.SetID("d-1")
	ev.SetType("dev.switchyard.git.push")
	ev.SetSource("https://github.com/acme/web")
	ev.SetExtension("identity", policy.SourceIdentity("github"))
	w := queue.Work{Source: "github", Event: ev, Target: routing.Target{App: "web", Trigger: "build", Namespace: "prod", Name: "web-build-1"}}

	holder := routing.NewHolder(rootWith("prod"))
	g := grant{holder}
	if err := g.Admit(w); err != nil {
		t.Fatalf("granted work refused: %v", err)
	}
	forged := w
	forged.Target.Namespace = "kube-system"
	if err := g.Admit(forged); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("work for an ungranted namespace: %v, want a denial", err)
	}
	holder.Swap(rootWith("staging"))
	if err := g.Admit(w); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("work whose grant a reload revoked: %v, want a denial", err)
	}
}
