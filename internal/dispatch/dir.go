package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// DirCreator writes each PipelineRun as YAML to Dir/<namespace>/<name>.yaml
// instead of creating it in a cluster, so the whole flow runs on a laptop and
// the output can be applied later with kubectl. Like a cluster, it refuses to
// replace an existing PipelineRun: the file is written once. Files are mode
// 0600 and the directories it creates 0700: parameters may be sensitive.
type DirCreator struct {
	Dir string
}

var _ Creator = DirCreator{}

// Create writes pr atomically (a temporary file in the target directory,
// then a link or rename into place), so readers never see a partial file.
// See Creator for the error contract.
func (c DirCreator) Create(ctx context.Context, pr *pipelinev1.PipelineRun) error {
	b, err := MarshalYAML(pr)
	if err != nil {
		return queue.Permanent(err)
	}
	if err := c.write(ctx, pr.Namespace, pr.Name, b); err != nil {
		return fmt.Errorf("write pipelinerun %s/%s: %w", pr.Namespace, pr.Name, err)
	}
	return nil
}

// write writes one run's YAML b to Dir/namespace/name.yaml, once.
func (c DirCreator) write(ctx context.Context, namespace, name string, b []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Render already validated both as DNS names; checked again because
	// they become path elements.
	for _, elem := range []string{namespace, name} {
		if !safePathElem(elem) {
			return queue.Permanent(fmt.Errorf("unsafe path element %q", elem))
		}
	}
	dir := filepath.Join(c.Dir, namespace)
	path := filepath.Join(dir, name+".yaml")
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%w: %s", ErrAlreadyExists, path)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, "."+name+".yaml.*", b)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) //nolint:errcheck // gone after a rename; best effort otherwise

	// A hard link, unlike a rename, fails when the file exists, so two
	// concurrent deliveries of the same work cannot both write it.
	err = os.Link(tmp, path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w: %s", ErrAlreadyExists, path)
	}
	// Hard links are not supported everywhere; a rename is still atomic.
	return os.Rename(tmp, path)
}

// Modes of what DirCreator writes: its owner's only, as PipelineRun params
// may carry sensitive values.
const (
	fileMode fs.FileMode = 0o600
	dirMode  fs.FileMode = 0o700
)

// writeTemp writes b to a new file (mode fileMode) in dir, synced to disk,
// and returns its name.
func writeTemp(dir, pattern string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(fileMode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name) //nolint:errcheck // already failing
		return "", err
	}
	return name, nil
}

// safePathElem reports whether s can be used as one path element below Dir.
func safePathElem(s string) bool {
	return s != "" && s != "." &&
		!strings.Contains(s, "..") &&
		!strings.ContainsAny(s, `/\`+"\x00") &&
		!strings.ContainsRune(s, filepath.Separator)
}
