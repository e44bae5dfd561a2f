package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/agent/testbed"
)

type fakeBackend struct {
	openErr error

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
func (b *fakeBackend) Cleanup(context.Context) error { b.record("cleanup"); return nil }
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
			table := map[string]factory{
				"fake": func(args []string) (testbed.Backend, error) {
					gotArgs = args
					return b, tt.factoryErr
				},
				"other": func([]string) (testbed.Backend, error) { return nil, errors.New("not used") },
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
		if got[name] == nil {
			t.Errorf("backends()[%q] = nil, want a factory", name)
		}
	}
	if help := usage(got); !strings.Contains(help, "overlay, xenlvm") {
		t.Errorf("usage() = %q, want it to list overlay, xenlvm", help)
	}
}
