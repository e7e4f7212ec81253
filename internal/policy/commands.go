package policy

import (
	"fmt"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// DecisionIgnored names a comment command nobody granted (or that does not
// apply), recorded and otherwise ignored.
const DecisionIgnored = "ignored"

// MayCommand allows (nil) or denies (a *Denial naming commands.<command>)
// login, a member of teams ("org/slug", as the host said), commenting
// command on a pull request of source src. Only the root's source
// declaration grants commands.
func MayCommand(src *routing.Source, command, login string, teams []string) error {
	if src.Commands.Allows(command, login, teams) {
		return nil
	}
	return &Denial{Rule: "commands." + command, Message: fmt.Sprintf("%s may not comment /%s on source %s's pull requests", login, command, src.Name)}
}
