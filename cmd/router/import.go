package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/internal/ingest"
	"github.com/switchyard-dev/switchyard/internal/routing"
	"github.com/switchyard-dev/switchyard/internal/tektonimport"
)

// importOptions are the flags of `router import`.
type importOptions struct {
	out   string
	files []string
}

func (o *importOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.out, "o", "", "the rules directory to write (must not hold a root.yaml)")
}

func cmdImport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o importOptions
	o.flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.files = fs.Args()
	if o.out == "" || len(o.files) == 0 {
		fmt.Fprintln(stderr, "usage: router import -o DIR FILE...")
		return 2
	}
	if err := runImport(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "router import: %v\n", err)
		return 1
	}
	return 0
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
