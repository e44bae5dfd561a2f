package recovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// pollInterval is how often /proc is read while waiting for a group to
// empty: the processes are not our children, so nothing can be waited on.
const pollInterval = 20 * time.Millisecond

// leader is what /proc says about a record's leader now.
type leader int

const (
	leaderGone    leader = iota // no process has the pid
	leaderOther                 // the pid belongs to another process
	leaderMatches               // the very process the record names
)

// checkLeader compares the process that has rec's pid with the record. An
// exited but unreaped leader still matches: its pid, and so the group id,
// cannot be reused until it is reaped.
func checkLeader(rec Record) (leader, error) {
	st, err := readStat(rec.PGID)
	if errors.Is(err, os.ErrNotExist) {
		return leaderGone, nil
	}
	if err != nil {
		return leaderGone, err
	}
	if st.start != rec.StartTime || st.pgid != rec.PGID {
		return leaderOther, nil
	}
	return leaderMatches, nil
}

// members returns the live processes of group pgid; zombies are left
// out, since they can no longer do anything.
func members(pgid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProc, err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if st.pgid == pgid && st.state != 'Z' && st.state != 'X' {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// stopGroup ends the process group rec names: SIGTERM, up to grace for it
// to empty, then SIGKILL and up to grace again. It signals only while the
// leader still matches the record; once the leader is reaped it only
// waits. It reports whether the group had live members.
func stopGroup(ctx context.Context, rec Record, grace time.Duration) (found bool, err error) {
	id, err := checkLeader(rec)
	if err != nil || id != leaderMatches {
		return false, err
	}
	left, err := members(rec.PGID)
	if err != nil || len(left) == 0 {
		return false, err
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := signalGroup(rec, sig); err != nil {
			return true, err
		}
		if left, err = waitEmpty(ctx, rec.PGID, grace); err != nil || len(left) == 0 {
			return true, err
		}
	}
	return true, fmt.Errorf("%w: group %d, processes %v", ErrStillRunning, rec.PGID, left)
}

// signalGroup sends sig to rec's group if its leader still matches. A
// group whose every member belongs to another user (the virt server run
// through sudo, when the agent is not root) cannot be signalled; such a
// member ends when it sees autopkgtest gone, so that is not an error.
func signalGroup(rec Record, sig syscall.Signal) error {
	id, err := checkLeader(rec)
	if err != nil || id != leaderMatches {
		return err
	}
	err = syscall.Kill(-rec.PGID, sig)
	if err == nil || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.EPERM) {
		return nil
	}
	return fmt.Errorf("recovery: signal group %d: %w", rec.PGID, err)
}

// waitEmpty polls /proc until group pgid has no live members or d has
// passed, and returns the members it saw last.
func waitEmpty(ctx context.Context, pgid int, d time.Duration) ([]int, error) {
	deadline := time.Now().Add(d)
	for {
		left, err := members(pgid)
		if err != nil || len(left) == 0 || !time.Now().Before(deadline) {
			return left, err
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return left, fmt.Errorf("recovery: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}
