package virt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

const (
	tarCreate  = "--warning=none -c . -f -"
	tarExtract = "--warning=none --preserve-permissions --extract --no-same-owner -f -"
)

// copy copies between hostPath and tbPath, towards the host if up. Both
// paths end in "/" (a directory, copied with tar) or neither does (a
// file). The testbed end runs through the exec prefix.
func (ss *session) copy(parent context.Context, name string, up bool, hostPath, tbPath string) error {
	if hostPath == "" || tbPath == "" {
		return fmt.Errorf("%w: %s paths must be nonempty", ErrPaths, name)
	}
	dir := strings.HasSuffix(hostPath, "/")
	if dir != strings.HasSuffix(tbPath, "/") {
		return fmt.Errorf("%w: %s paths must agree about directoryness (presence or absence of trailing /)", ErrPaths, name)
	}
	ctx, cancel := context.WithTimeout(parent, ss.copyTimeout())
	defer cancel()

	var err error
	if dir {
		err = ss.copyDir(ctx, up, hostPath, tbPath)
	} else {
		err = ss.copyFile(ctx, up, hostPath, tbPath)
	}
	if err == nil && up && ss.owner != nil {
		err = chownTree(hostPath, ss.owner.uid, ss.owner.gid)
	}
	switch {
	case err == nil:
		return nil
	case parent.Err() != nil:
		return fmt.Errorf("virt: %s: %w", name, context.Cause(parent))
	case ctx.Err() != nil:
		return &failedError{"timeout", fmt.Errorf("%w: %s %s %s", ErrCopyTimeout, name, hostPath, tbPath)}
	}
	return &failedError{"copy-failed", fmt.Errorf("%w: %s: %w", ErrCopyFailed, name, err)}
}

func (ss *session) copyFile(ctx context.Context, up bool, hostPath, tbPath string) error {
	q := shellQuote(tbPath)
	if up {
		f, err := os.Create(hostPath)
		if err != nil {
			return err
		}
		defer f.Close()
		remote := ss.command(ctx, ss.inTestbed("cat <"+q))
		remote.Stdout = f
		if err := remote.Run(); err != nil {
			return fmt.Errorf("source: %w", err)
		}
		return f.Close()
	}
	f, err := os.Open(hostPath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %w", hostPath, fs.ErrInvalid)
	}
	script := "cat >" + q
	if st.Mode()&0o111 != 0 {
		script += "; chmod +x -- " + q
	}
	remote := ss.command(ctx, ss.inTestbed(script))
	remote.Stdin = f
	if err := remote.Run(); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	return nil
}

func (ss *session) copyDir(ctx context.Context, up bool, hostPath, tbPath string) error {
	q := shellQuote(tbPath)
	var src, dst *exec.Cmd
	if up {
		if err := os.Mkdir(hostPath, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		src = ss.command(ctx, ss.inTestbed("cd "+q+"; tar "+tarCreate))
		dst = ss.command(ctx, append([]string{"tar", "--directory", hostPath}, strings.Fields(tarExtract)...))
	} else {
		src = ss.command(ctx, append([]string{"tar", "--directory", hostPath}, strings.Fields(tarCreate)...))
		dst = ss.command(ctx, ss.inTestbed(
			"if ! test -d "+q+"; then mkdir -- "+q+"; fi; cd "+q+"; tar "+tarExtract))
	}
	return pipe(src, dst)
}

// owner is a user and group that copied-up files are given to.
type owner struct{ uid, gid int }

// sudoOwner returns the user who started the server through sudo: when
// the server runs as root (euid 0) and SUDO_UID and SUDO_GID hold valid
// ids. Files a server run by "sudo -n" copies up to the host then belong
// to the unprivileged agent that asked for them, which must be able to
// remove them.
func sudoOwner(euid int, getenv func(string) string) *owner {
	if euid != 0 {
		return nil
	}
	uid, err := strconv.ParseUint(getenv("SUDO_UID"), 10, 32)
	if err != nil || uid == math.MaxUint32 {
		return nil
	}
	gid, err := strconv.ParseUint(getenv("SUDO_GID"), 10, 32)
	if err != nil || gid == math.MaxUint32 {
		return nil
	}
	return &owner{uid: int(uid), gid: int(gid)}
}

// chownTree gives root and, when it is a directory, everything below it
// to uid and gid, without following symbolic links.
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func (ss *session) inTestbed(script string) []string {
	return append(slices.Clone(ss.exec), "sh", "-ec", script)
}

// pipe runs src | dst. dst must succeed; src may also die of SIGPIPE.
func pipe(src, dst *exec.Cmd) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	src.Stdout = w
	dst.Stdin = r
	if err := src.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("source: %w", err)
	}
	w.Close()
	err = dst.Start()
	r.Close()
	if err != nil {
		_ = src.Process.Kill()
		_ = src.Wait()
		return fmt.Errorf("destination: %w", err)
	}
	dstErr := dst.Wait()
	srcErr := src.Wait()
	if dstErr != nil {
		return fmt.Errorf("destination: %w", dstErr)
	}
	if srcErr != nil && !diedOfSIGPIPE(src) {
		return fmt.Errorf("source: %w", srcErr)
	}
	return nil
}

func diedOfSIGPIPE(c *exec.Cmd) bool {
	ws, ok := c.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGPIPE
}
