package routing

import (
	"slices"
	"strings"
)

// Git comment commands (/retest, /cancel, /ok-to-test, /approve on a pull
// request): who may comment which is granted on the source, in the root
// only.

// commandsSpec is `commands:` on a source: the provider logins allowed to
// comment each command.
type commandsSpec struct {
	Retest   []string `yaml:"retest"`
	Cancel   []string `yaml:"cancel"`
	OkToTest []string `yaml:"okToTest"`
	Approve  []string `yaml:"approve"`
	// TrustAllPullRequests lets pull requests from forks and first-time
	// contributors fire without an /ok-to-test.
	TrustAllPullRequests bool `yaml:"trustAllPullRequests"`
}

// Comment commands, as a pull request comment writes them.
const (
	CommandRetest   = "retest"
	CommandCancel   = "cancel"
	CommandOkToTest = "ok-to-test"
	CommandApprove  = "approve"
)

// Commands is a source's compiled commands grant.
type Commands struct {
	grants map[string][]string
	// TrustAll lets every pull request fire without an /ok-to-test.
	TrustAll bool
}

// Allows reports whether login, a member of teams ("org/slug"), may
// comment command.
func (c *Commands) Allows(command, login string, teams []string) bool {
	return c != nil && login != "" && slices.ContainsFunc(c.grants[command], func(g string) bool {
		if team, ok := strings.CutPrefix(g, teamPrefix); ok {
			return slices.ContainsFunc(teams, func(t string) bool { return strings.EqualFold(t, team) })
		}
		return strings.EqualFold(g, login)
	})
}

// Teams returns the teams ("org/slug") command is granted to, whose
// membership the caller must look up for a login not granted by name.
func (c *Commands) Teams(command string) []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, g := range c.grants[command] {
		if team, ok := strings.CutPrefix(g, teamPrefix); ok {
			out = append(out, team)
		}
	}
	return out
}

// teamPrefix starts a commands entry naming a GitHub team.
const teamPrefix = "team:"

// HoldsUntrusted reports whether pull requests from authors the provider
// does not vouch for wait for an /ok-to-test (the default once a source
// declares commands).
func (c *Commands) HoldsUntrusted() bool { return c != nil && !c.TrustAll }

// compileCommands compiles a source's commands block.
func (l *loader) compileCommands(file string, at func(path ...any) int, owner, kind string, s *commandsSpec) *Commands {
	if s == nil {
		return nil
	}
	c := &Commands{TrustAll: s.TrustAllPullRequests, grants: map[string][]string{
		CommandRetest: s.Retest, CommandCancel: s.Cancel, CommandOkToTest: s.OkToTest, CommandApprove: s.Approve}}
	for field, logins := range map[string][]string{"retest": s.Retest, "cancel": s.Cancel, "okToTest": s.OkToTest, "approve": s.Approve} {
		for j, login := range logins {
			if team, ok := strings.CutPrefix(login, teamPrefix); ok {
				org, slug, _ := strings.Cut(team, "/")
				if kind != "github" || org == "" || slug == "" || strings.ContainsAny(slug, " */") {
					l.addf(file, at(field, j), "%s: commands.%s: %q: teams are team:<org>/<slug>, on github sources (with an apiToken that may read the org's teams)", owner, field, login)
				}
				continue
			}
			notLogin := " */:"
			if kind == "bitbucket" {
				notLogin = " */" // Cloud users are granted by account_id, "557058:c0b7..."
			}
			if login == "" || strings.ContainsAny(login, notLogin) {
				l.addf(file, at(field, j), "%s: commands.%s: %q is not a login (list users by their login, or GitHub teams as team:<org>/<slug>; no globs)", owner, field, login)
			}
		}
	}
	return c
}
