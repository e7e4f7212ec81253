//go:build !unix

package queue

import (
	"errors"
	"os"
)

// Without flock the lock is advisory only in name: the holder is recorded,
// nothing is enforced.
var errWouldBlock = errors.New("would block")

func tryLock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }
