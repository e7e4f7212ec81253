package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// revisionHexLen is how many hex characters of a hash or commit a revision
// shows: 48 bits, enough to tell rules versions apart in an audit.
const revisionHexLen = 12

// Revision names the rules in force: "sha256:<12 hex>", a hash of every
// file the manifest loaded (root, app manifests, bindings and templates) by
// path and content, followed by ",git:<12 hex>" when the rules directory is
// in a git checkout or a git-sync worktree. Same files, same revision.
func (r *Rules) Revision() string { return r.revision }

// fileDigests maps each file the manifest loaded to its SHA-256.
type fileDigests map[string][sha256.Size]byte

// recordFile notes a file the manifest loaded, for the revision.
func (l *loader) recordFile(name string, data []byte) {
	if l.files == nil {
		l.files = fileDigests{}
	}
	l.files[name] = sha256.Sum256(data)
}

// contentRevision hashes each file's path and content digest, sorted by
// path, so the revision does not depend on the order files were read in.
func contentRevision(files fileDigests) string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, name := range names {
		sum := files[name]
		h.Write([]byte(name + "\x00" + hex.EncodeToString(sum[:]) + "\n"))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:revisionHexLen]
}

// withCommit appends the git commit of dir, when there is one, to rev.
func withCommit(rev, dir string) string {
	if c := gitCommit(dir); c != "" {
		return rev + ",git:" + c[:revisionHexLen]
	}
	return rev
}

// gitCommit returns the commit checked out at dir, best effort and without
// running git: a git-sync worktree is named by its commit
// (<root>/.worktrees/<sha>); otherwise the nearest .git up from dir is read
// (HEAD, then the ref it names, loose or packed). "" when there is none.
func gitCommit(dir string) string {
	d, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(d); err == nil {
		d = resolved
	}
	for {
		if filepath.Base(filepath.Dir(d)) == ".worktrees" && isCommit(filepath.Base(d)) {
			return filepath.Base(d)
		}
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return headCommit(filepath.Join(d, ".git"))
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

// headCommit reads the commit HEAD points at in the repository whose .git
// (a directory, or a file saying "gitdir: <path>" in a worktree) is dotGit.
func headCommit(dotGit string) string {
	gitDir := dotGit
	if data, err := os.ReadFile(dotGit); err == nil {
		p, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir: ")
		if !ok {
			return ""
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(dotGit), p)
		}
		gitDir = p
	}
	head, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return ""
	}
	h := strings.TrimSpace(string(head))
	ref, ok := strings.CutPrefix(h, "ref: ")
	if !ok {
		return commitOrEmpty(h)
	}
	if !strings.HasPrefix(ref, "refs/") || slices.Contains(strings.Split(ref, "/"), "..") {
		return ""
	}
	// A linked worktree keeps its HEAD apart and its refs in the common dir.
	dirs := []string{gitDir}
	if data, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		common := strings.TrimSpace(string(data))
		if !filepath.IsAbs(common) {
			common = filepath.Join(gitDir, common)
		}
		dirs = append(dirs, common)
	}
	for _, d := range dirs {
		if data, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(ref))); err == nil {
			return commitOrEmpty(strings.TrimSpace(string(data)))
		}
		if c := packedRef(filepath.Join(d, "packed-refs"), ref); c != "" {
			return c
		}
	}
	return ""
}

// packedRef finds ref in a packed-refs file ("<sha> <ref>" lines).
func packedRef(path, ref string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		sha, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && name == ref {
			return commitOrEmpty(sha)
		}
	}
	return ""
}

func commitOrEmpty(s string) string {
	if isCommit(s) {
		return s
	}
	return ""
}

// isCommit reports whether s is a full SHA-1 or SHA-256 object name.
func isCommit(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
