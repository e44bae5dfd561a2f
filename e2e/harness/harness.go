// Package harness owns the plumbing of sparegrid's end-to-end tests: it
// builds or finds the real binaries, starts a coordinator and agents on
// loopback, or in network namespaces it creates, with temporary
// directories and free ports, runs the CLI, finds processes, drives
// synthetic agents over the real protocol for load and crash tests, and
// waits for states while remembering the last one it saw.
//
// It must not reach into the coordinator's or the agent's packages: e2e
// tests see sparegrid only as its users do, through binaries, files, the
// HTTP API and the agent protocol in shared/.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bin returns the directory with the sparegrid binaries: $SPAREGRID_BIN if
// set, otherwise a directory they are built into once per test binary.
func Bin(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("SPAREGRID_BIN"); d != "" {
		return d
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sparegrid-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", dir+"/", "./coordinator/cmd/...", "./agent/cmd/...")
		cmd.Dir = RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		builtDir = dir
	})
	if buildErr != nil {
		t.Fatalf("harness: %v", buildErr)
	}
	return builtDir
}

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// RepoRoot returns the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Result is what a finished command printed.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs a binary from Bin with args and returns what it printed. It
// never fails the test itself: callers assert on the Result.
func Run(t testing.TB, env []string, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(Bin(t), name), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("harness: run %s %v: %v", name, args, err)
	}
	t.Logf("$ %s %s\n  exit %d\n  stdout: %s\n  stderr: %s", name, strings.Join(args, " "), res.Code, indent(res.Stdout), indent(res.Stderr))
	return res
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n          ")
}

// Proc is a long-running binary started by Start.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
	err  error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start starts a binary in its own process group. When the test ends it is
// sent SIGTERM, then SIGKILL, and its output is logged.
func Start(t testing.TB, env []string, name string, args ...string) *Proc {
	t.Helper()
	return StartProgram(t, append(os.Environ(), env...), filepath.Join(Bin(t), name), args...)
}

// StartProgram is Start for any program, given by path, with exactly the
// environment env.
func StartProgram(t testing.TB, env []string, path string, args ...string) *Proc {
	t.Helper()
	name := filepath.Base(path)
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Proc{Name: name, cmd: cmd, log: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("harness: start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(30 * time.Second)
		t.Logf("%s output:\n%s", name, p.Output())
	})
	return p
}

// Pid returns the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns everything the process printed so far.
func (p *Proc) Output() string { return p.log.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns the process's exit error once Done is closed.
func (p *Proc) Err() error { return p.err }

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) {
	syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Stop sends SIGTERM and waits up to grace, then kills the group.
func (p *Proc) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// FreeTCP returns a loopback TCP address that was free a moment ago.
func FreeTCP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitFor calls check until it returns true or timeout passes; on timeout
// it fails the test with the last state check described.
func WaitFor(t testing.TB, what string, timeout time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := "(never checked)"
	for {
		ok, state := check()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("harness: timed out after %v waiting for %s; last state: %s", timeout, what, last)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("harness: test ended while waiting for %s; last state: %s", what, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// HTTPGet fetches url and returns the body and status.
func HTTPGet(url string) (int, []byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}
