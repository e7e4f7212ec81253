package main

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The README's table of serve flags lists every flag serve takes: an
// operator reads the README, not the source.
func TestREADMEListsEveryServeFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmd := newServeCmd(ioStreams{})
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		// A row may list several flags: "| `--retry-base D`, `--retry-max D` |".
		if !strings.Contains(string(readme), "| `--"+f.Name) && !strings.Contains(string(readme), ", `--"+f.Name) {
			t.Errorf("README.md has no row for serve --%s", f.Name)
		}
	})
}
