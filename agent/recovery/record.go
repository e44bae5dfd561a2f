// Package recovery owns finding and removing what a crashed agent left
// behind: autopkgtest process groups still running from a job's run
// record, the jobs' work directories, and testbeds whose virt server died,
// which it has the virt server's cleanup mode remove. It also owns the run
// record's format, which agent/runner writes.
//
// It must not talk to the coordinator or judge results: a job found here
// is lost, and its lease running out on the coordinator decides what
// happens to it. It must never signal a process group unless the record
// names the group's leader exactly: same pid, same start time, same boot.
package recovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sparegrid/sparegrid/agent/internal/procgroup"
)

// RecordFile is the run record's name in a job's work directory.
const RecordFile = "run.json"

// Errors returned by this package.
var (
	ErrBadRecord    = errors.New("recovery: bad run record")
	ErrProc         = procgroup.ErrProc
	ErrStillRunning = errors.New("recovery: process group still running")
	ErrRemove       = errors.New("recovery: cannot remove work directory")
	ErrCleanup      = errors.New("recovery: testbed cleanup failed")
)

// Record identifies the process group of one autopkgtest run across a
// crash of the agent that started it. pid numbers are reused, so the
// leader's start time and the boot id pin the one process that led it.
type Record struct {
	// PGID is the process group id, which is the leader's pid.
	PGID int `json:"pgid"`
	// StartTime is the leader's start time in clock ticks since boot
	// (field 22 of /proc/PID/stat).
	StartTime uint64 `json:"start_time"`
	// BootID is /proc/sys/kernel/random/boot_id when the run started.
	BootID string `json:"boot_id"`
}

// maxRecordSize bounds a run record on disk.
const maxRecordSize = 4 << 10

// maxPID is the largest pid Linux hands out (PID_MAX_LIMIT on 64-bit).
const maxPID = 1 << 22

// NewRecord returns the record of the process group that pid leads.
func NewRecord(pid int) (Record, error) {
	st, err := procgroup.ReadStat(pid)
	if err != nil {
		return Record{}, err
	}
	boot, err := BootID()
	if err != nil {
		return Record{}, err
	}
	return Record{PGID: pid, StartTime: st.Start, BootID: boot}, nil
}

// WriteRecord writes the record of the group that pid leads to path,
// atomically and readable by its owner only. It does not sync: a record
// matters only until the machine reboots, and a reboot changes the boot
// id anyway.
func WriteRecord(path string, pid int) error {
	rec, err := NewRecord(pid)
	if err != nil {
		return err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("recovery: run record: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("recovery: run record: %w", err)
	}
	return nil
}

// ReadRecord reads and checks the run record at path.
func ReadRecord(path string) (Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return Record{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return Record{}, fmt.Errorf("recovery: %w", err)
	}
	return ParseRecord(data)
}

// ParseRecord decodes and checks a run record. The record comes from a
// file another process could have written, so it accepts exactly one JSON
// object with known fields and plausible values.
func ParseRecord(data []byte) (Record, error) {
	if len(data) > maxRecordSize {
		return Record{}, fmt.Errorf("%w: larger than %d bytes", ErrBadRecord, maxRecordSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var rec Record
	if err := dec.Decode(&rec); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Record{}, fmt.Errorf("%w: data after the record", ErrBadRecord)
	}
	switch {
	case rec.PGID <= 1 || rec.PGID > maxPID:
		return Record{}, fmt.Errorf("%w: process group %d", ErrBadRecord, rec.PGID)
	case !validBootID(rec.BootID):
		return Record{}, fmt.Errorf("%w: boot id %q", ErrBadRecord, rec.BootID)
	}
	return rec, nil
}

// validBootID reports whether s looks like the kernel's boot id: a UUID
// in lower-case hex.
func validBootID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// BootID returns the kernel's id of the current boot.
func BootID() (string, error) {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrProc, err)
	}
	id := strings.TrimSpace(string(data))
	if !validBootID(id) {
		return "", fmt.Errorf("%w: boot id %q", ErrProc, id)
	}
	return id, nil
}
