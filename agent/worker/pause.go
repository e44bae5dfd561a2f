package worker

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// Defaults for the self-pause settings.
const (
	DefaultMaxInfraFailures = 3
	DefaultPauseFor         = 30 * time.Minute
	DefaultMinFreeDisk      = 1 << 30
	DefaultPauseCheck       = time.Minute
)

// noteOutcome counts infrastructure failures in a row: an attempt that
// ended in tmpfail (the agent, its testbed or the archive failed, not the
// package). Enough of them in a row pause the agent for PauseFor.
func (w *Worker) noteOutcome(j *jobRun, ex execution) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ex.outcome.Verdict != dep8.VerdictTmpfail {
		w.infraFailures = 0
		return
	}
	w.infraFailures++
	w.lastInfra = fmt.Sprintf("job %d: exit code %d", j.job.ID, ex.outcome.ExitCode)
	if len(ex.infraNotes) > 0 {
		w.lastInfra = fmt.Sprintf("job %d: %s", j.job.ID, ex.infraNotes[0])
	}
	if w.MaxInfraFailures > 0 && w.infraFailures >= w.MaxInfraFailures {
		w.pausedUntil = w.Now().Add(w.PauseFor)
		w.Log.Warn("pausing after repeated infrastructure failures", "failures", w.infraFailures,
			"until", w.pausedUntil.Format(time.RFC3339), "last", w.lastInfra)
	}
}

// pauseReason says why the agent must not take work now, or "".
func (w *Worker) pauseReason() string {
	now := w.Now()
	w.mu.Lock()
	until, n, last := w.pausedUntil, w.infraFailures, w.lastInfra
	w.mu.Unlock()
	if now.Before(until) {
		return fmt.Sprintf("%d infrastructure failures in a row (last: %s); paused until %s or a restart",
			n, last, until.UTC().Format(time.RFC3339))
	}
	if w.MinFreeDisk > 0 {
		free, err := w.FreeDisk(w.StateDir)
		if err != nil {
			return fmt.Sprintf("cannot tell the free disk space of %s: %v", w.StateDir, err)
		}
		if free < w.MinFreeDisk {
			return fmt.Sprintf("only %s free in %s, needs %s", mib(free), w.StateDir, mib(w.MinFreeDisk))
		}
	}
	return ""
}

// resumeAfterPause lets the agent try again once a pause ran out; one more
// failure pauses it again.
func (w *Worker) resumeAfterPause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.pausedUntil.IsZero() && !w.Now().Before(w.pausedUntil) {
		w.pausedUntil = time.Time{}
		w.infraFailures = max(w.MaxInfraFailures-1, 0)
	}
}

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

// statfsFree returns the bytes available to unprivileged users in the
// file system holding path.
func statfsFree(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// paused tells the coordinator why the agent is not taking work, then
// waits PauseCheck (or until draining or ctx ends).
func (w *Worker) paused(ctx context.Context, reason string) {
	w.mu.Lock()
	changed := reason != w.pauseShown
	w.pauseShown = reason
	w.mu.Unlock()
	if changed {
		w.Log.Warn("paused: taking no work", "reason", reason)
	}
	lctx, cancel := context.WithTimeout(ctx, leaseSlack)
	err := w.call(lctx, 1, func(ctx context.Context, c Conn, token string) error {
		_, err := c.Lease(ctx, token, protocol.LeaseRequest{Capabilities: w.Capabilities, Paused: reason})
		return err
	})
	cancel()
	if err != nil && ctx.Err() == nil {
		w.Log.Warn("cannot tell the coordinator about the pause", "err", err)
	}
	t := time.NewTimer(w.PauseCheck)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-w.draining.Done():
	case <-t.C:
	}
}
