package routing

// Tests for NOT COVERED mutants of the 859f522 run (accessors no routing
// test called), run by hand (docs/mutation-routing-bcd.md).

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// SecretLine maps only 1..len(secrets); other indexes stay as they are.
func TestMutSecretLineEdges(t *testing.T) {
	s := &Source{secretLines: []int{2, 5}}
	for i, want := range []int{0, 2, 5, 3} {
		if got := s.SecretLine(i); got != want {
			t.Errorf("SecretLine(%d) = %d, want %d", i, got, want)
		}
	}
}

// AcceptedSecrets is Secrets, else Secret alone, else nothing.
func TestMutAcceptedSecrets(t *testing.T) {
	list := (&Source{Secret: []byte("a"), Secrets: [][]byte{[]byte("a"), []byte("b")}}).AcceptedSecrets()
	if len(list) != 2 || string(list[1]) != "b" {
		t.Errorf("with Secrets: %q, want a, b", list)
	}
	if one := (&Source{Secret: []byte("s")}).AcceptedSecrets(); len(one) != 1 || string(one[0]) != "s" {
		t.Errorf("with Secret only: %q, want s", one)
	}
	if none := (&Source{}).AcceptedSecrets(); none != nil {
		t.Errorf("without secrets: %q, want nil", none)
	}
}

// A template's first run is its trigger's unit; the others add .<index>.
func TestMutTargetUnit(t *testing.T) {
	if u := (Target{Trigger: "build"}).Unit(); u != "build" {
		t.Errorf("index 0: %q", u)
	}
	if u := (Target{Trigger: "build", Index: 2}).Unit(); u != "build.2" {
		t.Errorf("index 2: %q", u)
	}
}

// LimitedNamespaces lists the namespaces of triggers with a limit only.
func TestMutLimitedNamespaces(t *testing.T) {
	rules := mustLoad(t, map[string]string{"root.yaml": testRoot, "apps/web.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: App
name: web
triggers:
  - name: plain
    run: {pipelineRef: p, namespace: ci}
  - name: cancel
    concurrency: {cancelInProgress: true}
    run: {pipelineRef: p, namespace: ci}
  - name: limited
    concurrency: {limit: 1}
    run: {pipelineRef: p, namespace: ci-2}
  - name: limited-too
    concurrency: {limit: 3}
    run: {pipelineRef: p, namespace: ci-2}
`})
	if got := rules.LimitedNamespaces(); !slices.Equal(got, []string{"ci-2"}) {
		t.Errorf("LimitedNamespaces = %q, want [ci-2]", got)
	}
}

// ResolveAPIToken refuses a source without apiToken and reads one that has.
func TestMutResolveAPIToken(t *testing.T) {
	t.Setenv("MUT_API_TOKEN", "tok")
	if _, err := (&Source{Name: "s"}).ResolveAPIToken(); err == nil || !strings.Contains(err.Error(), "has no apiToken") {
		t.Errorf("without apiToken: err = %v", err)
	}
	got, err := (&Source{Name: "s", APITokenRef: secretRef{Env: "MUT_API_TOKEN"}}).ResolveAPIToken()
	if err != nil || string(got) != "tok" {
		t.Errorf("with apiToken: %q, %v", got, err)
	}
}

// ResolveKey returns the key read at load, else reads it now.
func TestMutResolveKey(t *testing.T) {
	t.Setenv("MUT_APP_KEY", "pem-now")
	if k, err := (&GitHubApp{PrivateKey: []byte("pem-loaded"), PrivateKeyRef: secretRef{Env: "MUT_APP_KEY"}}).ResolveKey(); err != nil || string(k) != "pem-loaded" {
		t.Errorf("loaded key: %q, %v", k, err)
	}
	if k, err := (&GitHubApp{PrivateKeyRef: secretRef{Env: "MUT_APP_KEY"}}).ResolveKey(); err != nil || string(k) != "pem-now" {
		t.Errorf("key read now: %q, %v", k, err)
	}
}

// With ResolveSecrets, a missing apiToken or App key is a load problem.
func TestMutResolveSecretsOfTokenAndAppKey(t *testing.T) {
	source := "    kind: github\n    apiToken: {env: MISSING_TOKEN}\n    githubApp: {appID: 7, privateKey: {env: MISSING_KEY}}\n"
	fsys := fstest.MapFS{"root.yaml": {Data: []byte(reportRoot(source, ""))}, "apps/web.yaml": {Data: []byte(reportApp)}}
	env := map[string]string{"GH_SECRET": "s"}
	_, err := Load(fsys, "rules", Options{ResolveSecrets: true, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 2 {
		t.Fatalf("Load = %v, want 2 problems", err)
	}
	for _, want := range []string{`source "github": apiToken: secret environment variable MISSING_TOKEN`, `source "github": githubApp.privateKey: secret environment variable MISSING_KEY`} {
		if !strings.Contains(ps.Error(), want) {
			t.Errorf("problems %v; want %q", ps, want)
		}
	}
}
