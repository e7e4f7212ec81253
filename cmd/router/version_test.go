package main

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadBuildInfo(t *testing.T) {
	toolchain := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/switchyard-dev/switchyard", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-11-29T22:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	installed := &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}}
	tests := []struct {
		name    string
		stamped buildInfo
		bi      *debug.BuildInfo
		want    buildInfo
		line    string
	}{
		{name: "stamped by the Dockerfile wins over the toolchain's",
			stamped: buildInfo{Version: "v1.2.0", Commit: "feedface", BuildDate: "2026-11-30T01:00:00Z"}, bi: toolchain,
			want: buildInfo{Version: "v1.2.0", Commit: "feedface", BuildDate: "2026-11-30T01:00:00Z"},
			line: "router v1.2.0 (commit feedface, built 2026-11-30T01:00:00Z) "},
		{name: "go build in a modified checkout", bi: toolchain,
			want: buildInfo{Version: "devel", Commit: "0123456789abcdef0123456789abcdef01234567", Modified: true, CommitTime: "2026-11-29T22:00:00Z"},
			line: "router devel (commit 0123456789ab-dirty) "},
		{name: "go install at a version", bi: installed, want: buildInfo{Version: "v1.3.0"}, line: "router v1.3.0 go"},
		{name: "nothing known", want: buildInfo{Version: "devel"}, line: "router devel go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readBuildInfo(tt.stamped, tt.bi, tt.bi != nil)
			tt.want.GoVersion, tt.want.Platform = runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if !strings.HasPrefix(got.String(), tt.line) || !strings.HasSuffix(got.String(), runtime.Version()+" "+tt.want.Platform) {
				t.Fatalf("String() = %q, want prefix %q", got.String(), tt.line)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	old := [3]string{version, commit, buildDate}
	version, commit, buildDate = "v9.9.9", "abc123", "2026-11-29T23:59:00Z"
	defer func() { version, commit, buildDate = old[0], old[1], old[2] }()

	code, out, _ := runCmd(t, "", "--version")
	if code != 0 || out != "router v9.9.9 (commit abc123, built 2026-11-29T23:59:00Z) "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n" {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
	code, out, _ = runCmd(t, "", "version")
	if code != 0 || !strings.Contains(out, "Version:    v9.9.9\nCommit:     abc123\nBuilt:      2026-11-29T23:59:00Z\nGo version: "+runtime.Version()) {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	code, out, _ = runCmd(t, "", "version", "-o", "json")
	var got buildInfo
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("version -o json: exit %d, %v: %q", code, err, out)
	}
	if got.Version != "v9.9.9" || got.Commit != "abc123" || got.BuildDate != "2026-11-29T23:59:00Z" || got.GoVersion != runtime.Version() {
		t.Fatalf("version -o json = %+v", got)
	}
	if code, _, errOut := runCmd(t, "", "version", "extra"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("version extra: exit %d, %q", code, errOut)
	}
}
