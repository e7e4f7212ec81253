package routing

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func loadCommands(kind, commands string) (*Rules, error) {
	root := `apiVersion: switchyard.dev/v1alpha1
kind: Root
sources:
  - name: git
    kind: ` + kind + `
    secret: {env: GH}
    commands: ` + commands + `
  - {name: plain, kind: github, secret: {env: GH}}
`
	return Load(fstest.MapFS{"root.yaml": {Data: []byte(root)}}, "rules", Options{})
}

// TestCommandsGrants: who may comment which command, by login
// (case-insensitively) or by GitHub team; a source without commands
// grants none and holds no pull request.
func TestCommandsGrants(t *testing.T) {
	rules, err := loadCommands("github", `{retest: [alice, "team:acme/ci"], okToTest: [Bob], approve: ["team:acme/leads", carol]}`)
	if err != nil {
		t.Fatal(err)
	}
	c := rules.Source("git").Commands
	for _, tc := range []struct {
		command, login string
		teams          []string
		want           bool
	}{
		{CommandRetest, "alice", nil, true},
		{CommandRetest, "ALICE", nil, true},
		{CommandRetest, "bob", nil, false},
		{CommandRetest, "dave", []string{"acme/other", "ACME/CI"}, true},
		{CommandRetest, "dave", []string{"acme/other"}, false},
		{CommandRetest, "", []string{"acme/ci"}, false},
		{CommandRetest, "team:acme/ci", nil, false},
		{CommandOkToTest, "bob", nil, true},
		{CommandCancel, "alice", nil, false},
		{CommandApprove, "carol", nil, true},
		{CommandApprove, "dave", []string{"acme/leads"}, true},
	} {
		if got := c.Allows(tc.command, tc.login, tc.teams); got != tc.want {
			t.Errorf("Allows(%s, %q, %v) = %v, want %v", tc.command, tc.login, tc.teams, got, tc.want)
		}
	}
	for command, want := range map[string][]string{CommandRetest: {"acme/ci"}, CommandApprove: {"acme/leads"}, CommandOkToTest: nil, CommandCancel: nil} {
		if got := c.Teams(command); !reflect.DeepEqual(got, want) {
			t.Errorf("Teams(%s) = %v, want %v", command, got, want)
		}
	}
	if !c.HoldsUntrusted() {
		t.Error("commands without trustAllPullRequests hold untrusted pull requests")
	}
	none := rules.Source("plain").Commands
	if none.Allows(CommandRetest, "alice", nil) || none.Teams(CommandRetest) != nil || none.HoldsUntrusted() {
		t.Error("a source without commands grants something or holds pull requests")
	}
	trusting, err := loadCommands("gitea", `{retest: [alice], trustAllPullRequests: true}`)
	if err != nil {
		t.Fatal(err)
	}
	if trusting.Source("git").Commands.HoldsUntrusted() {
		t.Error("trustAllPullRequests: true holds untrusted pull requests")
	}
}

// TestCommandsErrors: teams only on GitHub and only as team:<org>/<slug>;
// logins without spaces, globs, slashes, or colons (but Bitbucket Cloud's
// account ids have one).
func TestCommandsErrors(t *testing.T) {
	const teams = `: teams are team:<org>/<slug>, on github sources`
	for _, tc := range []struct {
		kind, commands string
		want           []string // each a problem's beginning
	}{
		{"github", `{retest: ["team:acme/ci", alice, "557058:c0b7"]}`, []string{`rules/root.yaml:7: source "git": commands.retest: "557058:c0b7" is not a login`}},
		{"bitbucket", `{retest: ["557058:c0b7"]}`, nil},
		{"bitbucket", `{retest: ["a b"]}`, []string{`rules/root.yaml:7: source "git": commands.retest: "a b" is not a login`}},
		{"gitea", `{retest: ["team:acme/ci"]}`, []string{`rules/root.yaml:7: source "git": commands.retest: "team:acme/ci"` + teams}},
		{"github", `{cancel: ["team:/ci"]}`, []string{`rules/root.yaml:7: source "git": commands.cancel: "team:/ci"` + teams}},
		{"github", `{okToTest: ["team:acme/"]}`, []string{`rules/root.yaml:7: source "git": commands.okToTest: "team:acme/"` + teams}},
		{"github", `{approve: ["team:acme/c*"]}`, []string{`rules/root.yaml:7: source "git": commands.approve: "team:acme/c*"` + teams}},
		{"github", `{approve: [""]}`, []string{`rules/root.yaml:7: source "git": commands.approve: "" is not a login`}},
		{"gitlab", `{approve: ["a/b"]}`, []string{`rules/root.yaml:7: source "git": commands.approve: "a/b" is not a login`}},
	} {
		_, err := loadCommands(tc.kind, tc.commands)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s %s: %v", tc.kind, tc.commands, err)
			}
			continue
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != len(tc.want) {
			t.Errorf("%s %s: Load = %v, want the problems %q", tc.kind, tc.commands, err, tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(ps[i].String(), w) {
				t.Errorf("%s %s: problem %s, want %q", tc.kind, tc.commands, ps[i], w)
			}
		}
	}
}
