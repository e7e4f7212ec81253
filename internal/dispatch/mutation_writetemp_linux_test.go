//go:build linux

package dispatch

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestWriteTempReportsAFailedWrite: a write that fails (here: past the
// process's file size limit, EFBIG) fails writeTemp and leaves no file;
// the Sync and Close after it must not replace the error with their nil.
// No test in this package runs in parallel, so the lowered limit touches
// only this write.
func TestWriteTempReportsAFailedWrite(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	low := syscall.Rlimit{Cur: 1024, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &low); err != nil {
		t.Fatal(err)
	}
	name, err := writeTemp(dir, "run-*.yaml", []byte(strings.Repeat("x", 4096)))
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		t.Fatalf("writeTemp past the file size limit wrote %s, want an error", name)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("a failed write left %d files", len(left))
	}
}
