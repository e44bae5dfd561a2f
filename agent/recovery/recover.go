package recovery

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/agent/state"
)

// Defaults for Options.
const (
	DefaultGrace          = 10 * time.Second
	DefaultCleanupTimeout = 5 * time.Minute
)

// Options says where a crashed agent may have left things and how to
// remove them.
type Options struct {
	// StateDir is the agent's state directory; jobs' work directories
	// are below its state.WorkDir, named job-ID-ATTEMPT.
	StateDir string
	// Grace is how long a leftover process group gets after SIGTERM
	// before SIGKILL, and after SIGKILL before Recover gives up on it;
	// DefaultGrace when zero.
	Grace time.Duration
	// Backends are the testbed backends the agent uses. Those with a
	// cleanup mode (overlay, xenlvm) are cleaned when the agent has an
	// image for them.
	Backends []string
	// VirtServer is autopkgtest-virt-sparegrid: an absolute path, or
	// empty to find it on PATH.
	VirtServer string
	// Sudo, when set, is the command line that runs the overlay virt
	// server as root, as in runner.Spec.Sudo; VirtServer must then be an
	// absolute path. xenlvm images carry their own --sudo.
	Sudo []string
	// CleanupTimeout bounds each cleanup command;
	// DefaultCleanupTimeout when zero.
	CleanupTimeout time.Duration
}

// Status is what Recover found of a job's process group.
type Status string

// Statuses of a job.
const (
	// StatusNoRecord: the directory has no run record; autopkgtest had
	// not started, or its run ended and removed the record.
	StatusNoRecord Status = "no-record"
	// StatusMalformed: the run record could not be read; nothing was
	// signalled.
	StatusMalformed Status = "malformed-record"
	// StatusOtherBoot: the record is from an earlier boot, so nothing of
	// it runs.
	StatusOtherBoot Status = "other-boot"
	// StatusExited: the group's leader, or every process of the group,
	// is gone.
	StatusExited Status = "exited"
	// StatusMismatch: the recorded pid now belongs to another process,
	// which was left alone.
	StatusMismatch Status = "pid-reused"
	// StatusKilled: the group was still running and has been ended.
	StatusKilled Status = "killed"
)

// Job is one work directory Recover found.
type Job struct {
	// Name is the directory's name, such as job-12-1.
	Name string
	// ID and Attempt are read from Name; zero when it does not carry
	// them.
	ID      int64
	Attempt int
	Status  Status
	// Detail says why a record was malformed.
	Detail string
	// Removed is whether the directory is gone.
	Removed bool
}

// Cleanup is one virt server cleanup Recover ran.
type Cleanup struct {
	Backend string
	// Argv is the command line that was run.
	Argv []string
}

// Report is what Recover found and did.
type Report struct {
	Jobs     []Job
	Cleanups []Cleanup
}

// Killed counts the jobs whose process group Recover ended.
func (r Report) Killed() int {
	n := 0
	for _, j := range r.Jobs {
		if j.Status == StatusKilled {
			n++
		}
	}
	return n
}

// Removed counts the work directories Recover removed.
func (r Report) Removed() int {
	n := 0
	for _, j := range r.Jobs {
		if j.Removed {
			n++
		}
	}
	return n
}

// JobIDs returns the ids of the jobs found, in the order of Jobs.
func (r Report) JobIDs() []int64 {
	ids := make([]int64, 0, len(r.Jobs))
	for _, j := range r.Jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

// Recover removes what an earlier agent on opts.StateDir left behind:
// for each job work directory it ends the autopkgtest process group its
// run record names, if that group still runs in this boot, and removes
// the directory; then it runs the cleanup mode of the virt server for
// each backend the agent uses. It must run before the agent takes work.
//
// A missing work directory is not an error, nor is a malformed record (the
// report says so and the directory is removed). A group that cannot be
// ended keeps its directory and gives ErrStillRunning. Recover goes on
// after errors and returns them all, with the report of what it did.
func Recover(ctx context.Context, opts Options) (Report, error) {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.CleanupTimeout <= 0 {
		opts.CleanupTimeout = DefaultCleanupTimeout
	}
	var rep Report
	var errs []error
	boot, err := BootID()
	if err != nil {
		return rep, err
	}
	work := filepath.Join(opts.StateDir, state.WorkDir)
	entries, err := os.ReadDir(work)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("recovery: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "job-") {
			continue
		}
		job, err := recoverJob(ctx, filepath.Join(work, e.Name()), boot, opts.Grace)
		rep.Jobs = append(rep.Jobs, job)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
		}
	}
	cmds, err := cleanupCommands(opts)
	if err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	for _, c := range cmds {
		if err := runCleanup(ctx, c.Argv, opts.CleanupTimeout); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Cleanups = append(rep.Cleanups, c)
	}
	return rep, errors.Join(errs...)
}

// recoverJob ends what the run record in dir names and removes dir.
func recoverJob(ctx context.Context, dir, boot string, grace time.Duration) (Job, error) {
	job := Job{Name: filepath.Base(dir)}
	job.ID, job.Attempt = parseJobName(job.Name)
	rec, err := ReadRecord(filepath.Join(dir, RecordFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		job.Status = StatusNoRecord
	case err != nil:
		job.Status = StatusMalformed
		job.Detail = err.Error()
	case rec.BootID != boot:
		job.Status = StatusOtherBoot
	default:
		id, err := checkLeader(rec)
		if err != nil {
			return job, err
		}
		switch id {
		case leaderGone:
			job.Status = StatusExited
		case leaderOther:
			job.Status = StatusMismatch
		default:
			found, err := stopGroup(ctx, rec, grace)
			if err != nil {
				return job, err
			}
			job.Status = StatusExited
			if found {
				job.Status = StatusKilled
			}
		}
	}
	if err := RemoveAll(dir); err != nil {
		return job, fmt.Errorf("%w: %w", ErrRemove, err)
	}
	job.Removed = true
	return job, nil
}

// parseJobName reads ID and ATTEMPT from job-ID-ATTEMPT.
func parseJobName(name string) (int64, int) {
	idPart, attemptPart, ok := strings.Cut(strings.TrimPrefix(name, "job-"), "-")
	if !ok {
		return 0, 0
	}
	id, err1 := strconv.ParseInt(idPart, 10, 64)
	attempt, err2 := strconv.Atoi(attemptPart)
	if err1 != nil || err2 != nil || id < 0 || attempt < 0 {
		return 0, 0
	}
	return id, attempt
}

// RemoveAll removes a work directory, restoring owner access to
// directories a test left unwritable first.
func RemoveAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
