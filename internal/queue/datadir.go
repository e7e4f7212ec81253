package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DataDirLockFile is the advisory lock file in a router's data directory.
// Whoever holds it is the only process allowed to open the embedded store.
const DataDirLockFile = "router.lock"

// ErrDataDirLocked is wrapped by the error of LockDataDir when another
// process holds the data directory; errors.As gives the *LockedError.
var ErrDataDirLocked = errors.New("data directory in use")

// LockHolder describes the process that holds a data directory, as written
// in its lock file.
type LockHolder struct {
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Listen  string    `json:"listen,omitempty"`
	Since   time.Time `json:"since"`
}

// LockedError says which process holds a data directory.
type LockedError struct {
	Dir    string
	Holder LockHolder
}

func (e *LockedError) Error() string {
	h := e.Holder
	var who []string
	if h.PID > 0 {
		who = append(who, fmt.Sprintf("pid %d", h.PID))
	}
	if h.Listen != "" {
		who = append(who, "listening on "+h.Listen)
	}
	if !h.Since.IsZero() {
		who = append(who, "since "+h.Since.UTC().Format(time.RFC3339))
	}
	cmd := h.Command
	if cmd == "" {
		cmd = "another process"
	}
	msg := fmt.Sprintf("data directory %s is in use by %s", e.Dir, cmd)
	if len(who) > 0 {
		msg += " (" + strings.Join(who, ", ") + ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrDataDirLocked) true.
func (e *LockedError) Unwrap() error { return ErrDataDirLocked }

// DataDirLock is a held lock on a data directory. The lock is the kernel's
// (flock), so it is released when the process dies, however it dies.
type DataDirLock struct {
	f      *os.File
	holder LockHolder
}

// LockDataDir takes the lock of dir (creating dir if needed) for holder,
// without waiting: when another process holds it the error is a
// *LockedError naming that process.
func LockDataDir(dir string, holder LockHolder) (*DataDirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	path := filepath.Join(dir, DataDirLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := tryLock(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, &LockedError{Dir: dir, Holder: readHolder(path)}
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if holder.PID == 0 {
		holder.PID = os.Getpid()
	}
	if holder.Since.IsZero() {
		holder.Since = time.Now()
	}
	l := &DataDirLock{f: f, holder: holder}
	if err := l.write(); err != nil {
		l.Unlock()
		return nil, err
	}
	return l, nil
}

// SetListen records the address the holder serves on, for the message a
// second process gets.
func (l *DataDirLock) SetListen(addr string) error {
	l.holder.Listen = addr
	return l.write()
}

// write rewrites the holder in place: the lock belongs to this file, so it
// must never be replaced by a rename.
func (l *DataDirLock) write() error {
	data, err := json.Marshal(l.holder)
	if err != nil {
		return err
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	if _, err := l.f.WriteAt(append(data, '\n'), 0); err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	return nil
}

// Unlock releases the lock. The file stays (removing it would let two
// processes lock two different files of the same name); its content is
// cleared so a stale holder is never reported.
func (l *DataDirLock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = unlock(l.f)
	_ = l.f.Close()
	l.f = nil
}

func readHolder(path string) LockHolder {
	var h LockHolder
	data, err := os.ReadFile(path)
	if err == nil {
		_ = json.Unmarshal(data, &h)
	}
	return h
}
