package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Loading the rules as serve does, at start and at each reload.

// loadOptions are ingest's load options: the kinds it verifies and the
// event types its providers produce, so a trigger on a misspelt type gets a
// warning.
func loadOptions() routing.Options { return ingest.LoadOptions() }

// logWarnings logs what loaded but is probably a mistake.
func logWarnings(logger *slog.Logger, rules *routing.Rules) {
	for _, w := range rules.Warnings() {
		logger.Warn("rules warning", "problem", w.String())
	}
}

// reloadRules is loadRules for a running router. A secret's environment
// variable missing now was missing at start, and a process's environment
// cannot change from outside: the problems say that only a restart helps.
func reloadRules(dir string) (*routing.Rules, error) {
	var unset []string
	opts := loadOptions()
	opts.ResolveSecrets = true
	opts.LookupEnv = func(name string) (string, bool) {
		v, ok := os.LookupEnv(name)
		if v == "" && !slices.Contains(unset, name) {
			unset = append(unset, name)
		}
		return v, ok
	}
	rules, err := routing.LoadDir(dir, opts)
	var ps routing.Problems
	if errors.As(err, &ps) && len(unset) > 0 {
		ps = append(ps, routing.Problem{File: dir, Msg: fmt.Sprintf("%s: a running router reads its environment only at start, "+
			"so a reload cannot see a variable set since: set it where the router is started and restart it", strings.Join(unset, ", "))})
		return nil, ps
	}
	return rules, err
}
