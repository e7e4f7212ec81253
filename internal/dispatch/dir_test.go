package dispatch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

func TestDirCreator(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pipelineruns") // made by Create
	c := DirCreator{Dir: dir}
	pr := mustRender(t, testWork())

	if err := c.Create(ctx, pr); err != nil {
		t.Fatalf("Create: %v", err)
	}
	path := filepath.Join(dir, pr.Namespace, pr.Name+".yaml")
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back pipelinev1.PipelineRun
	if err := yaml.UnmarshalStrict(content, &back); err != nil {
		t.Fatalf("file does not parse back: %v\n%s", err, content)
	}
	if diff := cmp.Diff(pr, &back); diff != "" {
		t.Errorf("parsed file differs from the rendered PipelineRun (-rendered +file):\n%s", diff)
	}
	if !bytes.HasPrefix(content, []byte("apiVersion: tekton.dev/v1\nkind: PipelineRun\n")) {
		t.Errorf("file lacks apiVersion/kind first:\n%s", content)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Params may be sensitive: the owner's only (issue 11).
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	for _, d := range []string{dir, filepath.Dir(path)} {
		di, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("directory %s: mode %v, want 0700", d, di.Mode().Perm())
		}
	}

	// A redelivery, even with different content, leaves the file alone.
	time.Sleep(10 * time.Millisecond) // let a rewrite show in the mtime
	changed := pr.DeepCopy()
	changed.Annotations[AnnotationIdentity] = "someone-else"
	if err := c.Create(ctx, changed); !errors.Is(err, ErrAlreadyExists) || queue.IsPermanent(err) {
		t.Fatalf("second Create = %v, want ErrAlreadyExists", err)
	}
	again, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, content) {
		t.Errorf("second Create rewrote the file")
	}
	if fi2, err := os.Stat(path); err != nil || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("second Create touched the file: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (temporary files left?)", len(entries))
	}
}

// TestDirCreatorConcurrent: deliveries racing on the same work write the
// file once, and exactly one of them reports it created.
func TestDirCreatorConcurrent(t *testing.T) {
	c := DirCreator{Dir: t.TempDir()}
	pr := mustRender(t, testWork())
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = c.Create(context.Background(), pr.DeepCopy()) })
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, ErrAlreadyExists):
			t.Errorf("Create: %v", err)
		}
	}
	if created != 1 {
		t.Errorf("%d creates succeeded, want 1", created)
	}
}

func TestDirCreatorRejectsUnsafePaths(t *testing.T) {
	tests := []struct {
		name, namespace, prName string
	}{
		{"parent namespace", "..", "run"},
		{"traversing namespace", "../../etc", "run"},
		{"slash in name", "shop-ci", "a/b"},
		{"backslash in name", "shop-ci", `a\b`},
		{"dotdot in name", "shop-ci", "..passwd"},
		{"dot name", "shop-ci", "."},
		{"empty namespace", "", "run"},
		{"empty name", "shop-ci", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "out")
			pr := mustRender(t, testWork())
			pr.Namespace, pr.Name = tt.namespace, tt.prName
			err := DirCreator{Dir: dir}.Create(context.Background(), pr)
			if !queue.IsPermanent(err) {
				t.Errorf("Create(%q, %q) = %v, want a permanent error", tt.namespace, tt.prName, err)
			}
			entries, _ := os.ReadDir(root)
			if len(entries) != 0 {
				t.Errorf("Create wrote %v", entries)
			}
		})
	}
}

func TestDirCreatorCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := DirCreator{Dir: t.TempDir()}.Create(ctx, mustRender(t, testWork()))
	if !errors.Is(err, context.Canceled) || queue.IsPermanent(err) {
		t.Errorf("Create with a cancelled context = %v, want transient context.Canceled", err)
	}
}
