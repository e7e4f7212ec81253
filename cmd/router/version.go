package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Stamped at build: go build -ldflags "-X main.version=v1.2.0 -X
// main.commit=$(git rev-parse HEAD) -X main.buildDate=$(date -u +%FT%TZ)".
// Unstamped builds fall back to what the Go toolchain recorded.
var (
	version   = ""
	commit    = ""
	buildDate = ""
)

// buildInfo is what `router version` reports.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	BuildDate string `json:"buildDate,omitempty"`
	// CommitTime is the commit's date, from the toolchain's VCS data.
	CommitTime string `json:"commitTime,omitempty"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
}

// readBuildInfo combines the stamped values with the module and VCS data
// the toolchain embeds (go build in a checkout, go install pkg@version).
func readBuildInfo(stamped buildInfo, bi *debug.BuildInfo, ok bool) buildInfo {
	info := stamped
	info.GoVersion = runtime.Version()
	info.Platform = runtime.GOOS + "/" + runtime.GOARCH
	if ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if stamped.Commit == "" { // the time of vcs.revision
					info.CommitTime = s.Value
				}
			case "vcs.modified":
				info.Modified = stamped.Commit == "" && s.Value == "true"
			}
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	return info
}

func currentBuildInfo() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	return readBuildInfo(buildInfo{Version: version, Commit: commit, BuildDate: buildDate}, bi, ok)
}

// String is the one-line form: `router --version`.
func (b buildInfo) String() string {
	s := "router " + b.Version
	if b.Commit != "" {
		c := b.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if b.Modified {
			c += "-dirty"
		}
		s += " (commit " + c
		if b.BuildDate != "" {
			s += ", built " + b.BuildDate
		}
		s += ")"
	}
	return s + " " + b.GoVersion + " " + b.Platform
}

func versionString() string { return currentBuildInfo().String() }

func newVersionCmd(s ioStreams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o json]",
		Short: "Print the version, commit, build date and Go version",
		Long: `Prints the router's version, the git commit it was built from (with -dirty
when the checkout had changes), the build date and the Go version. Release
builds are stamped with -ldflags -X main.version=... -X main.commit=...
-X main.buildDate=...; other builds report what the Go toolchain recorded.`,
		Example: `  router version
  router --version

  # For scripts and bug reports
  router version -o json`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return writeVersion(s.Out, currentBuildInfo(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion("text", "json"))
	return cmd
}

func writeVersion(w io.Writer, info buildInfo, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(info); err != nil {
			return exitCode(1)
		}
		return nil
	}
	fmt.Fprintf(w, "Version:    %s\n", info.Version)
	if info.Commit != "" {
		dirty := ""
		if info.Modified {
			dirty = " (modified)"
		}
		fmt.Fprintf(w, "Commit:     %s%s\n", info.Commit, dirty)
	}
	if info.CommitTime != "" {
		fmt.Fprintf(w, "Committed:  %s\n", info.CommitTime)
	}
	if info.BuildDate != "" {
		fmt.Fprintf(w, "Built:      %s\n", info.BuildDate)
	}
	fmt.Fprintf(w, "Go version: %s\n", info.GoVersion)
	fmt.Fprintf(w, "Platform:   %s\n", info.Platform)
	return nil
}
