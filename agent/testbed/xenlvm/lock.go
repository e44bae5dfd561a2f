package xenlvm

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// fileLock is an exclusive flock(2) on a file. The kernel drops it when
// the process dies, which is what lets Cleanup tell a crashed server's
// leftovers from a live server's testbed.
type fileLock struct {
	path string
	f    *os.File
}

// tryLock takes an exclusive lock on path without waiting. held reports
// that another open file description holds it.
func tryLock(path string) (l *fileLock, held bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("xenlvm: open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("xenlvm: lock %s: %w", path, err)
	}
	return &fileLock{path: path, f: f}, false, nil
}

// release drops the lock, removing the file first when remove is set.
func (l *fileLock) release(remove bool) error {
	if l == nil {
		return nil
	}
	var err error
	if remove {
		if e := os.Remove(l.path); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = e
		}
	}
	return errors.Join(err, l.f.Close())
}
