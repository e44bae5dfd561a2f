package recovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/sparegrid/sparegrid/agent/internal/procgroup"
)

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
	st, err := procgroup.ReadStat(rec.PGID)
	if errors.Is(err, os.ErrNotExist) {
		return leaderGone, nil
	}
	if err != nil {
		return leaderGone, err
	}
	if st.Start != rec.StartTime || st.PGID != rec.PGID {
		return leaderOther, nil
	}
	return leaderMatches, nil
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
	left, err := procgroup.Members(rec.PGID)
	if err != nil || len(left) == 0 {
		return false, err
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := signalGroup(rec, sig); err != nil {
			return true, err
		}
		if left, err = procgroup.WaitEmpty(ctx, rec.PGID, grace); err != nil || len(left) == 0 {
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
