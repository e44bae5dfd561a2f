// Package worker owns the agent's job loop: it leases one job at a time
// from the coordinator, fetches and unpacks an uploaded source package,
// runs the test through package runner, heartbeats while it runs, uploads
// the log and artifacts, and sends the signed result. It reconnects when the
// session is lost and stops in stages when asked to.
//
// It must not parse autopkgtest's output or judge a test (package runner
// and shared/dep8 do), must not build testbed images, and must never import
// anything under coordinator/.
package worker

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/link"
	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// Errors returned by this package; match them with errors.Is.
var (
	// ErrJobCancelled is the cause of a job's cancellation when the
	// coordinator asked for it in a heartbeat reply.
	ErrJobCancelled = errors.New("worker: coordinator cancelled the job")
	// ErrNoDial means a Worker has neither a connection nor a way to make
	// one.
	ErrNoDial = errors.New("worker: no Dial function")
)

// Defaults for zero Worker fields.
const (
	DefaultLeaseWait         = 25 * time.Second
	DefaultReportTimeout     = 2 * time.Minute
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultCallRetries       = 5

	// leaseSlack is how much longer than its wait a Lease call may take.
	leaseSlack = 10 * time.Second
	// heartbeatJitter is the ± fraction applied to heartbeat intervals.
	heartbeatJitter = 0.10
)

// Conn is a connection to the coordinator, as link.Conn provides.
type Conn interface {
	protocol.Coordinator
	// Done is closed when the session has ended.
	Done() <-chan struct{}
	Close() error
}

var _ Conn = (*link.Conn)(nil)

// RunFunc runs one test; runner.Run is the real one.
type RunFunc func(ctx context.Context, spec runner.Spec) (runner.Outcome, error)

// Worker runs jobs for one agent. Set the exported fields, then call Run
// once. Drain may be called from any goroutine.
type Worker struct {
	// Conn is the connection to start with; nil means Dial one.
	Conn Conn
	// Dial opens a new connection (dial plus hello) at start when Conn is
	// nil and whenever the session is lost.
	Dial     func(ctx context.Context) (Conn, error)
	Tokens   *link.Tokens
	StateDir string
	Key      ed25519.PrivateKey
	AgentID  int64
	// Capabilities is sent with every lease request.
	Capabilities protocol.Capabilities
	Log          *slog.Logger
	// Now is the clock for result timestamps; nil means time.Now.
	Now func() time.Time
	// Rand returns jitter in [0, 1); nil means math/rand/v2.
	Rand func() float64

	// RunTest runs a test; nil means runner.Run.
	RunTest RunFunc
	// Artifacts lists the files a run left in its output directory; nil
	// means runner.Artifacts.
	Artifacts func(outputDir string) ([]runner.File, error)
	// LookupImage finds the testbed image for a job; nil means
	// PreferredImage with Backends.
	LookupImage func(stateDir, release, arch string) (image.Image, error)
	// Backends are the testbed backends the agent may use, most preferred
	// first; nil means DefaultBackends.
	Backends []string
	// RunnerLog receives the runner's progress output; nil discards it.
	RunnerLog io.Writer
	// VirtServer is the autopkgtest-virt-sparegrid program for overlay
	// images (see runner.Spec.VirtServer); empty means the one on PATH.
	VirtServer string
	// Sudo runs the overlay virt server as root when the agent is not
	// root, such as {"/usr/bin/sudo", "-n"} (see runner.Spec.Sudo); nil
	// runs it directly.
	Sudo []string

	// Once makes Run return after one job.
	Once bool
	// LeaseWait is how long one Lease call may wait for a job.
	LeaseWait time.Duration
	// ReportTimeout bounds uploading and reporting a finished job.
	ReportTimeout time.Duration
	// CallRetries bounds attempts at one upload or report.
	CallRetries int

	// MaxInfraFailures is how many infrastructure failures (tmpfail
	// results) in a row pause the agent for PauseFor; 0 means
	// DefaultMaxInfraFailures, negative never pauses.
	MaxInfraFailures int
	// PauseFor is how long such a pause lasts (default DefaultPauseFor).
	PauseFor time.Duration
	// MinFreeDisk pauses the agent while less than this many bytes are
	// free in StateDir; 0 means DefaultMinFreeDisk, negative never.
	MinFreeDisk int64
	// FreeDisk returns the bytes free in the file system holding a path;
	// nil means statfs.
	FreeDisk func(path string) (int64, error)
	// PauseCheck is how often a paused agent checks again and tells the
	// coordinator (default DefaultPauseCheck).
	PauseCheck time.Duration

	initOnce    sync.Once
	draining    context.Context
	drainCancel context.CancelFunc

	// dialSem serialises reconnects; whoever holds it may replace conn.
	dialSem chan struct{}
	mu      sync.Mutex
	conn    Conn
	// connFailures counts consecutive transport failures on conn.
	connFailures int
	// infraFailures counts tmpfail results in a row; lastInfra says what
	// the last one was; pausedUntil ends a pause they caused.
	infraFailures int
	lastInfra     string
	pausedUntil   time.Time
	// pauseShown is the pause reason last logged.
	pauseShown string
}

func (w *Worker) init() {
	w.initOnce.Do(func() {
		w.draining, w.drainCancel = context.WithCancel(context.Background())
		w.dialSem = make(chan struct{}, 1)
		w.conn = w.Conn
		if w.Log == nil {
			w.Log = slog.New(slog.DiscardHandler)
		}
		if w.Now == nil {
			w.Now = time.Now
		}
		if w.Rand == nil {
			w.Rand = rand.Float64
		}
		if w.RunTest == nil {
			w.RunTest = runner.Run
		}
		if w.Artifacts == nil {
			w.Artifacts = runner.Artifacts
		}
		if w.LookupImage == nil {
			backends := w.Backends
			w.LookupImage = func(stateDir, release, arch string) (image.Image, error) {
				return PreferredImage(stateDir, release, arch, backends)
			}
		}
		if w.RunnerLog == nil {
			w.RunnerLog = io.Discard
		}
		if w.LeaseWait <= 0 {
			w.LeaseWait = DefaultLeaseWait
		}
		if w.ReportTimeout <= 0 {
			w.ReportTimeout = DefaultReportTimeout
		}
		if w.CallRetries <= 0 {
			w.CallRetries = DefaultCallRetries
		}
		if w.MaxInfraFailures == 0 {
			w.MaxInfraFailures = DefaultMaxInfraFailures
		}
		if w.PauseFor <= 0 {
			w.PauseFor = DefaultPauseFor
		}
		if w.MinFreeDisk == 0 {
			w.MinFreeDisk = DefaultMinFreeDisk
		}
		if w.FreeDisk == nil {
			w.FreeDisk = statfsFree
		}
		if w.PauseCheck <= 0 {
			w.PauseCheck = DefaultPauseCheck
		}
	})
}

// Drain stops leasing new jobs; a running job finishes and is reported, then
// Run returns. Cancel Run's context to stop the running job as well. Drain
// is idempotent.
func (w *Worker) Drain() {
	w.init()
	w.drainCancel()
}

func (w *Worker) isDraining() bool { return w.draining.Err() != nil }

// Run leases and runs jobs, one at a time, until Drain is called, ctx is
// done, or (with Once) one job has been handled; then it returns nil.
// Before each lease it sends the results waiting in the outbox, and it
// takes no work while paused (repeated infrastructure failures, too little
// free disk), telling the coordinator why instead. When
// ctx is cancelled during a job, the job is stopped and still reported. Run
// returns an error only when it cannot go on: the coordinator refuses our
// protocol version, or the agent was rejected, revoked or is unknown. It
// closes its connection when it returns.
func (w *Worker) Run(ctx context.Context) error {
	w.init()
	defer w.closeConn()
	idle := w.newBackoff(time.Second, time.Minute)
	for !w.isDraining() && ctx.Err() == nil {
		w.flushOutbox(ctx)
		w.resumeAfterPause()
		if reason := w.pauseReason(); reason != "" {
			w.paused(ctx, reason)
			continue
		}
		w.mu.Lock()
		wasPaused := w.pauseShown != ""
		w.pauseShown = ""
		w.mu.Unlock()
		if wasPaused {
			w.Log.Info("pause over: taking work again")
		}
		job, err := w.lease(ctx)
		switch {
		case err != nil && fatal(err):
			return err
		case err != nil:
			if ctx.Err() != nil || w.isDraining() {
				return nil
			}
			msg := "lease failed"
			if errors.Is(err, protocol.ErrPending) {
				msg = "waiting for approval"
			}
			w.Log.Warn(msg, "err", err)
			sleep(ctx, idle.next())
			continue
		}
		idle.reset()
		if job == nil {
			continue
		}
		w.runJob(ctx, job)
		if w.Once {
			return nil
		}
	}
	return nil
}

// fatal reports whether an error stops the agent rather than one call.
func fatal(err error) bool {
	return errors.Is(err, protocol.ErrVersion) ||
		errors.Is(err, protocol.ErrRejected) ||
		errors.Is(err, protocol.ErrUnknownAgent)
}

func (w *Worker) newBackoff(base, max time.Duration) *backoff {
	return &backoff{base: base, max: max, rand: w.Rand}
}

// jitter spreads d by ±heartbeatJitter.
func (w *Worker) jitter(d time.Duration) time.Duration {
	f := 1 - heartbeatJitter + 2*heartbeatJitter*w.Rand()
	return time.Duration(float64(d) * f)
}

// lease asks for one job; a nil job means none came in time.
func (w *Worker) lease(ctx context.Context) (*protocol.Job, error) {
	lctx, cancel := context.WithTimeout(ctx, w.LeaseWait+leaseSlack)
	defer cancel()
	stop := context.AfterFunc(w.draining, cancel)
	defer stop()
	var reply protocol.LeaseReply
	err := w.call(lctx, 1, func(ctx context.Context, c Conn, token string) error {
		var err error
		reply, err = c.Lease(ctx, token, protocol.LeaseRequest{Capabilities: w.Capabilities, Wait: w.LeaseWait})
		return err
	})
	if err != nil {
		return nil, err
	}
	return reply.Job, nil
}

// call runs f with a live connection and a valid token, up to attempts
// times while the failures are transient. A refused token is minted afresh
// once without counting as an attempt.
func (w *Worker) call(ctx context.Context, attempts int, f func(ctx context.Context, c Conn, token string) error) error {
	bo := w.newBackoff(time.Second, 30*time.Second)
	reauthed := false
	for n := 1; ; n++ {
		c, err := w.connection(ctx)
		if err != nil {
			return err
		}
		token, err := w.Tokens.Token(ctx, c)
		if err == nil {
			err = f(ctx, c, token)
		}
		if err == nil {
			w.callSucceeded(c)
			return nil
		}
		if errors.Is(err, protocol.ErrUnauthenticated) && !reauthed {
			reauthed = true
			w.Tokens.Invalidate()
			n--
			continue
		}
		if ctx.Err() != nil {
			var pe *protocol.Error
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.As(err, &pe) {
				// No answer in time: a coordinator that died without
				// closing the session (a crash, a cut cable) looks like
				// this until the transport's idle timeout. Do not wait
				// for it; the next call dials afresh.
				w.dropConn(c, err)
			}
			return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		if protocol.Permanent(err) {
			return err
		}
		w.callFailed(c)
		if n >= attempts {
			return err
		}
		w.Log.Warn("call failed, retrying", "err", err)
		if !sleep(ctx, bo.next()) {
			return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
	}
}
