package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparegrid/sparegrid/agent/recovery"
	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/version"
)

// Stages a heartbeat reports.
const (
	StageFetching  = "fetching"
	StageTesting   = "testing"
	StageUploading = "uploading"
)

// Names inside a job's work directory.
const (
	sourceTar = "source.tar"
	sourceDir = "src"
	outputDir = "out"
	logName   = runner.LogFile
	// runRecord names the running autopkgtest's process group, so that an
	// agent restarted after a crash can stop it (see package recovery).
	runRecord = "run.json"
)

// tmpfailExit is autopkgtest's "unexpected failure" exit code, recorded when
// the runner could not produce one.
const tmpfailExit = 20

// jobRun is the state of one leased attempt.
type jobRun struct {
	job   *protocol.Job
	dir   string
	log   *slog.Logger
	stage atomic.Value // string

	// cancel is the job context's cancel: the one source of cancellation
	// for fetching and testing.
	cancel context.CancelCauseFunc

	mu sync.Mutex
	// dropped is why the attempt was abandoned: the lease went stale or
	// the coordinator cancelled it. Nothing is reported then.
	dropped      error
	reportCancel context.CancelCauseFunc
}

func (j *jobRun) setStage(s string) { j.stage.Store(s) }

func (j *jobRun) currentStage() string {
	s, _ := j.stage.Load().(string)
	return s
}

// drop abandons the attempt: it cancels the job's context and any report
// in flight with cause.
func (j *jobRun) drop(cause error) {
	j.mu.Lock()
	if j.dropped == nil {
		j.dropped = cause
	}
	rc := j.reportCancel
	j.mu.Unlock()
	j.cancel(cause)
	if rc != nil {
		rc(cause)
	}
}

func (j *jobRun) droppedCause() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.dropped
}

// reportContext returns the context for uploads and the result: it survives
// the cancellation of parent, is bounded by timeout, and ends when the
// attempt is dropped.
func (j *jobRun) reportContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancelCause := context.WithCancelCause(context.WithoutCancel(parent))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	j.mu.Lock()
	j.reportCancel = cancelCause
	dropped := j.dropped
	j.mu.Unlock()
	if dropped != nil {
		cancelCause(dropped)
	}
	return ctx, func() { cancel(); cancelCause(nil) }
}

// execution is what running a job produced.
type execution struct {
	outcome    runner.Outcome
	harness    dep8.Harness
	started    time.Time
	finished   time.Time
	infraNotes []string
}

// runJob handles one leased attempt from start to report, and removes its
// work directory afterwards.
func (w *Worker) runJob(ctx context.Context, job *protocol.Job) {
	log := w.Log.With("job", job.ID, "attempt", job.Attempt, "package", job.Package, "release", job.Release, "arch", job.Arch)
	log.Info("job leased")
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	j := &jobRun{
		job:    job,
		dir:    filepath.Join(w.StateDir, state.WorkDir, fmt.Sprintf("job-%d-%d", job.ID, job.Attempt)),
		log:    log,
		cancel: cancel,
	}
	j.setStage(StageTesting)
	if job.Source != nil {
		j.setStage(StageFetching)
	}

	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		w.heartbeat(hbCtx, j)
	}()
	defer func() {
		stopHeartbeat()
		<-hbDone
	}()

	ex := w.execute(jobCtx, j)
	defer func() {
		if err := recovery.RemoveAll(j.dir); err != nil {
			log.Warn("cannot remove work directory", "dir", j.dir, "err", err)
		}
	}()
	if cause := j.droppedCause(); cause != nil {
		log.Warn("job abandoned, nothing reported", "cause", cause)
		return
	}
	w.noteOutcome(j, ex)
	j.setStage(StageUploading)
	if notes := jobNotes(job); len(notes) > 0 {
		if err := appendNotes(filepath.Join(j.dir, outputDir), notes); err != nil {
			log.Warn("cannot record the tests left out in the log", "err", err)
		}
	}
	entry, err := w.prepareResult(j, ex, filepath.Join(j.dir, outputDir))
	if err != nil {
		log.Error("job not reported: cannot make its result", "err", err)
		return
	}
	rctx, rcancel := j.reportContext(ctx, w.ReportTimeout)
	defer rcancel()
	reply, err := w.send(rctx, entry)
	if errors.Is(err, protocol.ErrStaleLease) {
		j.drop(err)
	}
	if !w.settle(entry, err, log) || err != nil {
		log.Error("job not reported", "err", err, "kept", entry.dir != "" && !protocol.Permanent(err))
		return
	}
	log.Info("job reported", "verdict", reply.Verdict, "exit_code", ex.outcome.ExitCode, "duplicate", reply.Duplicate)
}

// execute fetches the source, if any, and runs the test. Failures of the
// agent or the testbed become a tmpfail outcome with notes, never an error.
func (w *Worker) execute(ctx context.Context, j *jobRun) execution {
	job := j.job
	ex := execution{
		started: w.Now(),
		harness: dep8.Harness{
			AgentVersion:       version.Version,
			AutopkgtestVersion: w.Capabilities.AutopkgtestVersion,
			Backend:            w.Capabilities.Backend,
		},
	}
	fail := func(note string, err error) execution {
		ex.finished = w.Now()
		ex.infraNotes = append(ex.infraNotes, fmt.Sprintf("%s: %v", note, err))
		ex.outcome = runner.Outcome{ExitCode: tmpfailExit, Verdict: dep8.VerdictTmpfail}
		j.log.Warn(note, "err", err)
		if errors.Is(err, protocol.ErrStaleLease) {
			j.drop(err)
		}
		return ex
	}
	if err := os.RemoveAll(j.dir); err != nil {
		return fail("cannot clear work directory", err)
	}
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return fail("cannot create work directory", err)
	}
	img, err := w.LookupImage(w.StateDir, job.Release, job.Arch)
	if err != nil {
		return fail("no testbed image", err)
	}
	ex.harness.Backend = img.Backend
	ex.harness.ImageDigest = img.Digest

	var srcPath string
	if job.Source != nil {
		srcPath, err = w.fetchSource(ctx, j)
		if err != nil {
			return fail("cannot fetch the source package", err)
		}
	}
	j.setStage(StageTesting)
	spec := runner.Spec{
		Package:    job.Package,
		Version:    job.Version,
		Triggers:   job.Triggers,
		SkipTests:  job.SkipTests,
		Tests:      job.Tests,
		AptSources: job.AptSources,
		SourcePath: srcPath,
		Image:      img,
		OutputDir:  filepath.Join(j.dir, outputDir),
		Log:        w.RunnerLog,
		VirtServer: w.VirtServer,
		Sudo:       w.Sudo,
		RunRecord:  filepath.Join(j.dir, runRecord),
	}
	if srcPath != "" {
		// The runner takes either an archive package or a source.
		spec.Package = ""
	}
	j.log.Info("testing")
	out, err := w.RunTest(ctx, spec)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		ex = fail("test run failed", err)
		ex.infraNotes = append(ex.infraNotes, out.Notes...)
		return ex
	}
	ex.finished = w.Now()
	ex.outcome = out
	return ex
}

// fetchSource downloads and unpacks the job's source package and returns
// the path to hand to autopkgtest.
func (w *Worker) fetchSource(ctx context.Context, j *jobRun) (string, error) {
	src := j.job.Source
	if !filepath.IsLocal(filepath.FromSlash(src.Entry)) {
		return "", fmt.Errorf("%w: entry %q is not a path inside the archive", ErrUnsafeArchive, src.Entry)
	}
	tarPath := filepath.Join(j.dir, sourceTar)
	err := w.call(ctx, w.CallRetries, func(ctx context.Context, c Conn, token string) error {
		f, err := os.OpenFile(tarPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		_, err = c.FetchBlob(ctx, token, protocol.FetchBlobRequest{JobID: j.job.ID, Attempt: j.job.Attempt, SHA256: src.SHA256}, f)
		return errors.Join(err, f.Close())
	})
	if err != nil {
		return "", err
	}
	f, err := os.Open(tarPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	dst := filepath.Join(j.dir, sourceDir)
	if err := os.Mkdir(dst, 0o700); err != nil {
		return "", err
	}
	if err := Extract(f, dst); err != nil {
		return "", err
	}
	path := filepath.Join(dst, filepath.FromSlash(src.Entry))
	if _, err := os.Lstat(path); err != nil {
		return "", fmt.Errorf("source entry %q: %w", src.Entry, err)
	}
	return path, nil
}

// jobNotes are the lines that say in the run's log which of the
// package's tests the coordinator left out of this run, and why.
func jobNotes(job *protocol.Job) []string {
	var notes []string
	if len(job.Tests) > 0 {
		notes = append(notes, "running only tests "+strings.Join(job.Tests, ", ")+
			": the coordinator sent the package's other tests to agents that can run them")
	}
	return append(notes, job.SkipReasons...)
}

// appendNotes adds the agent's notes (tests the coordinator skipped, an
// infrastructure failure) to the end of the run's log, creating it when
// the runner left none.
func appendNotes(out string, notes []string) error {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(out, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(f, "sparegrid-agent: %s\n", n)
	}
	return f.Close()
}
