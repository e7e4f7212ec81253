package routing

import (
	"testing"
	"time"
)

const recoverApp = "apiVersion: switchyard.dev/v1alpha1\nkind: App\nname: web\n"

func recoverRoot(sources string) string {
	return "apiVersion: switchyard.dev/v1alpha1\nkind: Root\nsources:\n" + sources +
		"apps:\n  - name: web\n    manifest: apps/web.yaml\n    namespaces: [ci]\n    sources: [github]\n"
}

// TestRecoverBlock: a recover block compiles with its defaults, and every
// hook kind keeps what names it.
func TestRecoverBlock(t *testing.T) {
	r := mustLoad(t, map[string]string{"root.yaml": recoverRoot(`  - name: github
    kind: github
    secret: {env: GH_SECRET}
    apiToken: {env: GH_TOKEN}
    githubApp: {appID: 42, privateKey: {file: /keys/app.pem}}
    recover:
      hooks:
        - {repository: acme/web, hookID: 123}
        - {organization: acme, hookID: 7}
        - {app: true}
  - name: gitlab
    kind: gitlab
    secret: {env: GL_SECRET}
    apiToken: {env: GL_TOKEN}
    recover: {hooks: [{repository: group/sub/web, hookID: 9}], every: 5m, since: 48h}
`), "apps/web.yaml": recoverApp})
	gh := r.Source("github").Recover
	if gh == nil || gh.Every != DefaultRecoverEvery || gh.Since != DefaultRecoverSince {
		t.Fatalf("github recover = %+v", gh)
	}
	// The App's hook is listed with the source's one githubApp, as check runs are posted.
	if app := r.Source("github").GitHubApp; app == nil || app.AppID != 42 || app.PrivateKeyRef.File != "/keys/app.pem" {
		t.Fatalf("github app = %+v", app)
	}
	want := []RecoverHook{{Repository: "acme/web", HookID: 123}, {Organization: "acme", HookID: 7}, {App: true}}
	if len(gh.Hooks) != 3 || gh.Hooks[0] != want[0] || gh.Hooks[1] != want[1] || gh.Hooks[2] != want[2] {
		t.Fatalf("hooks = %+v, want %+v", gh.Hooks, want)
	}
	if got := gh.Hooks[0].String() + "; " + gh.Hooks[1].String() + "; " + gh.Hooks[2].String(); got != "acme/web hook 123; org acme hook 7; app" {
		t.Errorf("hook names %q", got)
	}
	gl := r.Source("gitlab").Recover
	if gl == nil || gl.Every != 5*time.Minute || gl.Since != 48*time.Hour || gl.Hooks[0].Repository != "group/sub/web" {
		t.Fatalf("gitlab recover = %+v", gl)
	}
	if r.Source("github").Recover == nil || mustLoad(t, map[string]string{"root.yaml": credRoot, "apps/web.yaml": recoverApp}).Source("github").Recover != nil {
		t.Fatal("a source without a recover block has one")
	}
}

// TestRecoverBlockProblems: every mistake is reported at its line.
func TestRecoverBlockProblems(t *testing.T) {
	wantProblems(t, map[string]string{"root.yaml": recoverRoot(`  - name: github
    kind: github
    secret: {env: GH_SECRET}
    recover:
      every: 10s
      since: 30d
      hooks:
        - {repository: acme, hookID: 1}
        - {repository: acme/web}
        - {app: true}
        - {repository: acme/web, organization: acme, hookID: 2}
  - name: gitlab
    kind: gitlab
    secret: {env: GL_SECRET}
    apiToken: {env: GL_TOKEN}
    recover:
      hooks: [{organization: acme, hookID: 3}]
      app: {appID: 1, privateKey: {env: K}}
  - name: harbor
    kind: harbor
    secret: {env: H}
    recover: {hooks: []}
`), "apps/web.yaml": recoverApp}, []string{
		`rules/root.yaml:7: source "github": recover: every 10s is below the minimum 1m0s`,
		`rules/root.yaml:7: source "github": recover: since "30d" is not a duration such as 15m`,
		`rules/root.yaml:7: source "github": recover: hooks[0]: repository "acme" must be owner/name`,
		`rules/root.yaml:7: source "github": recover: hooks[1]: hookID is required`,
		`rules/root.yaml:7: source "github": recover: hooks[2]: the App's hook needs the source's githubApp`,
		`rules/root.yaml:7: source "github": recover: hooks[3]: give exactly one of repository, organization or app`,
		`rules/root.yaml:19: source "gitlab": recover: app was removed: put the App's appID and privateKey in the source's githubApp`,
		`rules/root.yaml:19: source "gitlab": recover: hooks[0]: organization and app hooks are GitHub's`,
		`rules/root.yaml:25: source "harbor": recover: only github and gitlab sources can recover deliveries, not "harbor"`,
		`rules/root.yaml:25: source "harbor": recover: hooks lists no hook`,
	})
}
