package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/routing"
	"github.com/switchyard-dev/switchyard/internal/tektonimport"
)

// importOptions are the flags of `router import`.
type importOptions struct {
	out   string
	files []string
}

func newImportCmd(s ioStreams) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import -o DIR FILE...",
		Short: "Write a rules directory from Tekton Triggers files",
		Long: `Reads Tekton Triggers YAML (EventListener, Trigger, TriggerGroup,
TriggerBinding, ClusterTriggerBinding, TriggerTemplate; v1alpha1 or v1beta1)
and writes a rules directory: root.yaml with one source per interceptor kind
and the grants the EventListeners imply, one app per EventListener, and the
Tekton Triggers files copied unchanged as the apps' resources. What it cannot
translate (webhook interceptors, compareSecret, githubOwners) is listed with
the manual step. The result is checked as router validate does.`,
		Example: `  # Import an EventListener with its bindings and templates
  router import -o rules/ eventlistener.yaml bindings.yaml templates.yaml

  # Every Tekton Triggers file of a directory
  router import -o rules/ triggers/*.yaml && router validate rules/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.files = args
			if err := runImport(cmd.Context(), o, s.Out); err != nil {
				fmt.Fprintf(s.Err, "router import: %v\n", err)
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.out, "output", "o", "", "the rules directory to write (must not hold a root.yaml)")
	_ = cmd.MarkFlagRequired("output")
	_ = cmd.MarkFlagDirname("output")
	return cmd
}

// runImport translates Tekton Triggers files into a rules directory, says
// what it did not translate, and validates what it wrote with the rules
// loader `router validate` uses.
func runImport(_ context.Context, o importOptions, stdout io.Writer) error {
	cfg, err := tektonimport.ReadFiles(o.files)
	if err != nil {
		return err
	}
	res, err := tektonimport.Translate(cfg)
	if err != nil {
		return err
	}
	for _, ig := range res.Ignored {
		fmt.Fprintf(stdout, "ignored %s (not a Tekton Triggers object Switchyard reads)\n", ig)
	}
	if len(res.Notes) > 0 {
		fmt.Fprintf(stdout, "not translated (%d), with the manual step:\n", len(res.Notes))
		for _, n := range res.Notes {
			fmt.Fprintf(stdout, "- %s\n", n)
		}
	}
	if res.Apps() == 0 {
		return fmt.Errorf("nothing to write: no trigger could be translated (see above)")
	}
	if err := res.Write(o.out, o.files); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d apps, %d triggers\n", o.out, res.Apps(), res.Triggers)
	rules, err := routing.LoadDir(o.out, ingest.LoadOptions())
	if err != nil {
		var ps routing.Problems
		if errors.As(err, &ps) {
			fmt.Fprintf(stdout, "\nrouter validate %s finds problems to fix by hand:\n", o.out)
			printProblems(stdout, err)
			return fmt.Errorf("the written rules do not validate yet")
		}
		return err
	}
	for _, w := range rules.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "\nrouter validate %s: ok (rules revision %s)\n", o.out, rules.Revision())
	return nil
}
