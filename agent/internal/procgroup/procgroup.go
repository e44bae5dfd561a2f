// Package procgroup owns running one external command as the leader of its
// own process group and making sure nothing of that group outlives the
// call: on cancellation the group gets SIGTERM, then SIGKILL after a grace
// period, and once the leader has exited any stragglers get SIGTERM and,
// after the same grace period, SIGKILL.
//
// It must not interpret what the command did (exit codes, output) or decide
// retries; callers do. It must never signal a group whose leader it has
// already reaped, since the id could then belong to an unrelated process.
package procgroup

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
	"unsafe"
)

// waitDelay bounds how long Wait keeps copying output after the process
// group is gone, in case something outside the group holds the pipe.
const waitDelay = 5 * time.Second

// ErrOnStart wraps the error of a RunOptions.OnStart hook.
var ErrOnStart = errors.New("procgroup: start hook failed")

// RunOptions configures RunWith.
type RunOptions struct {
	// Grace is how long the group has between SIGTERM and SIGKILL when
	// ctx is done.
	Grace time.Duration
	// OnStart, when set, is called with the leader's pid (which is also
	// the group id) right after the command started, while the leader
	// cannot yet have been reaped. When it returns an error the group is
	// killed at once and RunWith returns that error wrapped in
	// ErrOnStart.
	OnStart func(pid int) error
}

// Run is RunWith with only a grace period.
func Run(ctx context.Context, cmd *exec.Cmd, grace time.Duration) (cancelled bool, err error) {
	return RunWith(ctx, cmd, RunOptions{Grace: grace})
}

// RunWith starts cmd as the leader of a new process group and waits for
// it. When ctx is done first it sends the group SIGTERM, then SIGKILL
// after opts.Grace, and reports cancelled. err is what cmd.Wait returned;
// it may wrap exec.ErrWaitDelay when something outside the group held
// cmd's output open.
//
// Once the leader has exited, and before it is reaped, the rest of the
// group gets SIGTERM (once: not again after a cancellation sent it) and,
// if it has not gone after opts.Grace, SIGKILL.
// While the leader is an unreaped zombie its process group id cannot be
// reused, so this never signals an unrelated process.
func RunWith(ctx context.Context, cmd *exec.Cmd, opts RunOptions) (cancelled bool, err error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return false, err
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- waitExited(pgid) }()

	if opts.OnStart != nil {
		if herr := opts.OnStart(pgid); herr != nil {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			_ = cmd.Wait()
			return false, fmt.Errorf("%w: %w", ErrOnStart, herr)
		}
	}

	var waitErr error
	select {
	case waitErr = <-exited:
	case <-ctx.Done():
		cancelled = true
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		timer := time.NewTimer(opts.Grace)
		select {
		case waitErr = <-exited:
		case <-timer.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			waitErr = <-exited
		}
		timer.Stop()
	}
	if waitErr == nil {
		endStragglers(pgid, opts.Grace, cancelled)
	}
	err = cmd.Wait()
	return cancelled, err
}

// endStragglers ends what is left of group pgid once its leader has
// exited and before it is reaped: SIGTERM, unless the group had it already
// (a second one can mean "now, without cleaning up", as it does to our
// virt server), so that a straggler such as a virt server can tear its
// testbed down; then SIGKILL after grace.
func endStragglers(pgid int, grace time.Duration, termed bool) {
	if left, err := Members(pgid); err == nil && len(left) == 0 {
		return
	}
	if !termed {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
	}
	if left, err := WaitEmpty(context.Background(), pgid, grace); err == nil && len(left) == 0 {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// waitExited blocks until the process pid has exited, leaving it
// unreaped (waitid with WNOWAIT).
func waitExited(pid int) error {
	const (
		pPID    = 1
		wNOWAIT = 0x1000000
	)
	var info [128]byte
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|wNOWAIT, 0, 0)
		switch {
		case e == 0:
			return nil
		case errors.Is(e, syscall.EINTR):
			continue
		default:
			return e
		}
	}
}
