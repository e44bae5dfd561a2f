// Package proctest owns helpers for tests that run external commands and
// must prove that nothing of them outlives the code under test: finding
// live processes in /proc by their arguments or inherited environment,
// waiting for them to be gone, and an output writer that tells when a
// command reached a point.
//
// Only tests may import it. It must not start, signal or kill processes:
// it only looks at them, so a test can never hit a process it did not
// start.
package proctest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proc is a live process as /proc shows it.
type Proc struct {
	PID     int
	Cmdline []string
}

func (p Proc) String() string {
	return strconv.Itoa(p.PID) + ": " + strings.Join(p.Cmdline, " ")
}

// Match selects processes.
type Match func(Proc) bool

// ArgContains matches processes with s inside one of their arguments.
func ArgContains(s string) Match {
	return func(p Proc) bool {
		return slices.ContainsFunc(p.Cmdline, func(arg string) bool { return strings.Contains(arg, s) })
	}
}

// markEnv is the variable MarkChildren sets.
const markEnv = "SPAREGRID_PROCTEST_MARK"

// MarkChildren sets an environment variable, unique to this call, that
// every process the test starts from now on inherits unless it clears its
// environment, and returns a match for those processes. It uses t.Setenv,
// so the test must not be parallel.
func MarkChildren(t testing.TB) Match {
	t.Helper()
	value := strconv.FormatUint(rand.Uint64(), 36)
	t.Setenv(markEnv, value)
	kv := []byte(markEnv + "=" + value)
	self := os.Getpid()
	return func(p Proc) bool {
		if p.PID == self {
			return false
		}
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.PID), "environ"))
		if err != nil {
			return false
		}
		return slices.ContainsFunc(bytes.Split(env, []byte{0}), func(e []byte) bool { return bytes.Equal(e, kv) })
	}
}

// Processes returns the live processes, other than the test itself, that
// match. Processes that have exited but are not yet reaped, and kernel
// threads, have no command line and never match.
func Processes(t testing.TB, match Match) []Proc {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	self := os.Getpid()
	var found []Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		p := Proc{PID: pid, Cmdline: strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")}
		if match(p) {
			found = append(found, p)
		}
	}
	return found
}

// Polling for processes that are gone: a killed process lingers in /proc
// until the kernel has torn it down, which nothing lets a test wait for.
const (
	waitTries    = 100
	waitInterval = 20 * time.Millisecond
)

// WaitGone waits until no process matches, checking /proc a bounded
// number of times a short while apart, and fails the test with the
// processes it saw last if some still match.
func WaitGone(t testing.TB, match Match) {
	t.Helper()
	var left []Proc
	for i := range waitTries {
		if left = Processes(t, match); len(left) == 0 {
			return
		}
		if i < waitTries-1 {
			time.Sleep(waitInterval)
		}
	}
	t.Errorf("processes still running after %d checks of /proc: %q", waitTries, left)
}

// SleepArg returns a number of seconds for sleep(1), long enough to
// outlast any test and random enough that ArgContains(SleepArg())
// matches only the sleep that got it.
func SleepArg() string {
	return fmt.Sprintf("%d.%09d", 3000+rand.IntN(1000), rand.IntN(1_000_000_000))
}

// Output collects what a command writes and tells when it first contains
// a marker. It is safe for concurrent use.
type Output struct {
	marker string
	ready  chan struct{}

	mu    sync.Mutex
	buf   bytes.Buffer
	fired bool
}

// NewOutput returns an Output waiting for marker; with an empty marker it
// only collects.
func NewOutput(marker string) *Output {
	return &Output{marker: marker, ready: make(chan struct{})}
}

// Write implements io.Writer.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if !o.fired && o.marker != "" && strings.Contains(o.buf.String(), o.marker) {
		o.fired = true
		close(o.ready)
	}
	return len(p), nil
}

// Ready is closed once the output contains the marker.
func (o *Output) Ready() <-chan struct{} { return o.ready }

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
