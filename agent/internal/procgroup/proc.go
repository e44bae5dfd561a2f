package procgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrProc means /proc could not be read or parsed.
var ErrProc = errors.New("procgroup: cannot read process information")

// pollInterval is how often /proc is read while waiting for a group to
// empty: its members need not be our children, so nothing can be waited on.
const pollInterval = 20 * time.Millisecond

// Stat is what this package and agent/recovery need of /proc/PID/stat.
type Stat struct {
	// State is field 3: 'R', 'S', 'Z' and so on.
	State byte
	// PGID is field 5, the process group.
	PGID int
	// Start is field 22, the start time in clock ticks since boot.
	Start uint64
}

// ReadStat reads /proc/PID/stat. A process that does not exist gives an
// error wrapping os.ErrNotExist.
func ReadStat(pid int) (Stat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return Stat{}, fmt.Errorf("%w: process %d: %w", ErrProc, pid, os.ErrNotExist)
		}
		return Stat{}, fmt.Errorf("%w: %w", ErrProc, err)
	}
	return ParseStat(string(data))
}

// ParseStat reads fields 3 (state), 5 (process group) and 22 (start
// time) of a /proc/PID/stat line.
func ParseStat(line string) (Stat, error) {
	// The command name (field 2) is in parentheses and may contain spaces
	// and parentheses; the fields after the last ')' are plain.
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("%w: stat line without a command name", ErrProc)
	}
	fields := strings.Fields(line[i+1:])
	const (
		stateField = 3 - 3
		pgrpField  = 5 - 3
		startField = 22 - 3
	)
	if len(fields) <= startField || len(fields[stateField]) != 1 {
		return Stat{}, fmt.Errorf("%w: short stat line", ErrProc)
	}
	pgid, err := strconv.Atoi(fields[pgrpField])
	if err != nil {
		return Stat{}, fmt.Errorf("%w: stat process group: %w", ErrProc, err)
	}
	start, err := strconv.ParseUint(fields[startField], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("%w: stat start time: %w", ErrProc, err)
	}
	return Stat{State: fields[stateField][0], PGID: pgid, Start: start}, nil
}

// Members returns the live processes of group pgid; zombies are left
// out, since they can no longer do anything.
func Members(pgid int) ([]int, error) {
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
		st, err := ReadStat(pid)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if st.PGID == pgid && st.State != 'Z' && st.State != 'X' {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// WaitEmpty polls /proc until group pgid has no live members or d has
// passed, and returns the members it saw last.
func WaitEmpty(ctx context.Context, pgid int, d time.Duration) ([]int, error) {
	deadline := time.Now().Add(d)
	for {
		left, err := Members(pgid)
		if err != nil || len(left) == 0 || !time.Now().Before(deadline) {
			return left, err
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return left, fmt.Errorf("procgroup: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}
