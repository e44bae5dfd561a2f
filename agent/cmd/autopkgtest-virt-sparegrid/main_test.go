package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/agent/recovery"
	"github.com/sparegrid/sparegrid/agent/testbed"
)

type fakeBackend struct {
	openErr    error
	cleanupErr error

	mu    sync.Mutex
	calls []string
}

func (b *fakeBackend) record(c string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, c)
}

func (b *fakeBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func (b *fakeBackend) Name() string                  { return "fake" }
func (b *fakeBackend) Capabilities() []string        { return []string{"revert"} }
func (b *fakeBackend) Cleanup(context.Context) error { b.record("cleanup"); return b.cleanupErr }
func (b *fakeBackend) Close(context.Context) error   { b.record("close"); return nil }

func (b *fakeBackend) Open(context.Context) ([]string, error) {
	b.record("open")
	return nil, b.openErr
}

func (b *fakeBackend) Revert(context.Context) ([]string, error) {
	b.record("revert")
	return nil, b.openErr
}

func TestRun(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		openErr    error
		factoryErr error
		stdin      string
		ctxErr     error
		wantStatus int
		wantOut    string
		wantErrIn  string
		wantCalls  []string
	}{
		{name: "no backend", wantStatus: 1, wantErrIn: "no backend given"},
		{name: "unknown backend", args: []string{"qemu"}, wantStatus: 1, wantErrIn: `unknown backend "qemu"`},
		{name: "option before backend", args: []string{"--debug", "fake"}, wantStatus: 1, wantErrIn: "unknown option"},
		{name: "help", args: []string{"--help"}, wantStatus: 0, wantOut: "Backends: fake, other"},
		{name: "backend rejects its args", args: []string{"fake", "--bogus"}, factoryErr: boom, wantStatus: 1, wantErrIn: "fake: boom"},
		{name: "bad copy timeout", args: []string{"fake"}, env: map[string]string{"AUTOPKGTEST_VIRT_COPY_TIMEOUT": "soon"}, wantStatus: 1, wantErrIn: "AUTOPKGTEST_VIRT_COPY_TIMEOUT"},
		{name: "quit", args: []string{"fake"}, env: map[string]string{"AUTOPKGTEST_VIRT_COPY_TIMEOUT": "60"}, stdin: "capabilities\nquit\n", wantStatus: 0, wantOut: "ok\nok revert\n"},
		{name: "fatal open", args: []string{"fake"}, openErr: boom, stdin: "open\n", wantStatus: 12, wantErrIn: "failure", wantCalls: []string{"cleanup", "open", "close"}},
		{name: "eof", args: []string{"fake"}, stdin: "capabilities\n", wantStatus: 12, wantErrIn: "end of file"},
		{name: "signal", args: []string{"fake"}, ctxErr: signalError{syscall.SIGTERM}, wantStatus: 128 + 15, wantErrIn: "received terminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBackend{openErr: tt.openErr}
			var gotArgs []string
			table := map[string]backend{
				"fake": {open: func(args []string) (testbed.Backend, error) {
					gotArgs = args
					return b, tt.factoryErr
				}},
				"other": {open: func([]string) (testbed.Backend, error) { return nil, errors.New("not used") }},
			}
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			if tt.ctxErr != nil {
				cancel(tt.ctxErr)
			}
			var stdout, stderr bytes.Buffer
			getenv := func(k string) string { return tt.env[k] }
			status := run(ctx, tt.args, strings.NewReader(tt.stdin), &stdout, &stderr, getenv, table)
			if status != tt.wantStatus {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, status, tt.wantStatus, stderr.String())
			}
			if tt.wantOut != "" && !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.args, stdout.String(), tt.wantOut)
			}
			if !strings.Contains(stderr.String(), tt.wantErrIn) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.wantErrIn)
			}
			if diff := cmp.Diff(tt.wantCalls, b.Calls()); diff != "" {
				t.Errorf("backend calls (-want +got):\n%s", diff)
			}
			if len(tt.args) > 1 && tt.args[0] == "fake" && !slices.Equal(gotArgs, tt.args[1:]) {
				t.Errorf("backend got args %q, want %q", gotArgs, tt.args[1:])
			}
		})
	}
}

func TestBackendsTable(t *testing.T) {
	got := backends()
	for _, name := range []string{"overlay", "xenlvm"} {
		if got[name].open == nil || got[name].cleanup == nil {
			t.Errorf("backends()[%q] = %+v, want a factory and a cleanup mode", name, got[name])
		}
	}
	if help := usage(got); !strings.Contains(help, "overlay, xenlvm") {
		t.Errorf("usage() = %q, want it to list overlay, xenlvm", help)
	}
}

func TestRunCleanup(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		args       []string
		cleanupErr error
		wantStatus int
		wantErrIn  string
		wantCalls  []string
		wantArgs   []string
	}{
		{name: "cleans up", args: []string{"fake", "--cleanup"}, wantStatus: 0, wantCalls: []string{"cleanup"}, wantArgs: []string{}},
		{name: "passes the backend's options", args: []string{"fake", "--cleanup", "--workdir", "/w"}, wantStatus: 0, wantCalls: []string{"cleanup"}, wantArgs: []string{"--workdir", "/w"}},
		{name: "cleanup fails", args: []string{"fake", "--cleanup"}, cleanupErr: boom, wantStatus: 12, wantErrIn: "fake --cleanup: boom", wantCalls: []string{"cleanup"}, wantArgs: []string{}},
		{name: "backend without a cleanup mode", args: []string{"other", "--cleanup"}, wantStatus: 1, wantErrIn: "has no --cleanup mode"},
		{name: "unknown backend", args: []string{"qemu", "--cleanup"}, wantStatus: 1, wantErrIn: `unknown backend "qemu"`},
		{name: "not first after the backend", args: []string{"fake", "--rootfs", "/r", "--cleanup"}, wantStatus: 1, wantErrIn: "not opened"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBackend{cleanupErr: tt.cleanupErr}
			var gotArgs []string
			table := map[string]backend{
				"fake": {
					open: func([]string) (testbed.Backend, error) { return nil, errors.New("not opened") },
					cleanup: func(ctx context.Context, args []string) error {
						gotArgs = args
						return b.Cleanup(ctx)
					},
				},
				"other": {open: func([]string) (testbed.Backend, error) { return nil, errors.New("not used") }},
			}
			var stdout, stderr bytes.Buffer
			status := run(t.Context(), tt.args, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }, table)
			if status != tt.wantStatus {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, status, tt.wantStatus, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErrIn) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.wantErrIn)
			}
			if stdout.Len() != 0 {
				t.Errorf("run(%q) stdout = %q, want nothing", tt.args, stdout.String())
			}
			if diff := cmp.Diff(tt.wantCalls, b.Calls()); diff != "" {
				t.Errorf("backend calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantArgs, gotArgs); diff != "" {
				t.Errorf("cleanup args (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOverlayCleanup runs the real overlay backend's cleanup mode on a
// work directory holding a leftover testbed and one still in use.
func TestOverlayCleanup(t *testing.T) {
	work := t.TempDir()
	leftover := filepath.Join(work, testbed.Prefix+"0123456789abcdef")
	busy := filepath.Join(work, testbed.Prefix+"fedcba9876543210")
	for _, d := range []string{filepath.Join(leftover, "upper"), busy} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := os.Open(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"overlay", "--cleanup", "--workdir", work}
	if status := run(t.Context(), args, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }, backends()); status != 0 {
		t.Fatalf("run(%q) = %d, want 0; stderr:\n%s", args, status, stderr.String())
	}
	if _, err := os.Lstat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover testbed %s still there (stat error %v)", leftover, err)
	}
	if _, err := os.Lstat(busy); err != nil {
		t.Errorf("testbed in use %s removed: %v", busy, err)
	}
}

func TestCleanupArgMatchesRecovery(t *testing.T) {
	if cleanupArg != recovery.CleanupArg {
		t.Errorf("cleanupArg = %q, want recovery.CleanupArg %q", cleanupArg, recovery.CleanupArg)
	}
}

func TestOverlayCleanupRejectsServerOptions(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"overlay", "--cleanup", "--rootfs", t.TempDir()}
	if status := run(t.Context(), args, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }, backends()); status != exitFatal || !strings.Contains(stderr.String(), "bad arguments") {
		t.Errorf("run(%q) = %d, stderr %q, want %d and bad arguments", args, status, stderr.String(), exitFatal)
	}
}
