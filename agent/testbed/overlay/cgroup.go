package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// errNoCgroup2 says that the host has no unified (v2) cgroup hierarchy, so
// limits cannot be enforced.
var errNoCgroup2 = errors.New("overlay: no cgroup v2 hierarchy")

// createCgroup makes the cgroup root/name with the given limits (zero
// means none) and returns its directory. The memory and pids controllers
// are enabled for root's children first.
func createCgroup(root, name string, memory, pids int64) (string, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		return "", fmt.Errorf("%w: %w", errNoCgroup2, err)
	}
	// Enabling may fail when the controllers are already on or not
	// delegated to us; writing the limits below reports what matters.
	os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+memory +pids"), 0)
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("overlay: cgroup: %w", err)
	}
	set := func(file string, v int64) error {
		if v <= 0 {
			return nil
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatInt(v, 10)), 0o644); err != nil {
			return fmt.Errorf("overlay: cgroup: %w", err)
		}
		return nil
	}
	if err := errors.Join(set("memory.max", memory), set("pids.max", pids)); err != nil {
		os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// removeCgroup kills what is left in the cgroup dir and removes it.
func removeCgroup(dir string) error {
	os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	// The killed processes leave the cgroup asynchronously; rmdir fails
	// with EBUSY until they have.
	var err error
	for range 1000 {
		err = os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("overlay: cgroup: %w", err)
}
