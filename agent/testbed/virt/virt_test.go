package virt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/agent/testbed"
)

// hostBackend is a testbed that runs commands on the host in root, with
// TMPDIR inside root so that the downtmp lands there. Paths in the
// testbed are host paths.
type hostBackend struct {
	root       string
	caps       []string
	cleanupErr error
	openErr    error
	revertErr  error
	closeErr   error

	mu    sync.Mutex
	calls []string
}

func newHostBackend(t *testing.T, caps ...string) *hostBackend {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &hostBackend{root: root, caps: caps}
}

func (b *hostBackend) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *hostBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func (b *hostBackend) prefix() []string {
	return []string{"env", "TMPDIR=" + filepath.Join(b.root, "tmp"), "sh", "-c", `cd "$0" && exec "$@"`, b.root}
}

func (b *hostBackend) Name() string           { return "host" }
func (b *hostBackend) Capabilities() []string { return b.caps }

func (b *hostBackend) Cleanup(context.Context) error {
	b.record("cleanup")
	return b.cleanupErr
}

func (b *hostBackend) Open(context.Context) ([]string, error) {
	b.record("open")
	if b.openErr != nil {
		return nil, b.openErr
	}
	return b.prefix(), nil
}

func (b *hostBackend) Revert(context.Context) ([]string, error) {
	b.record("revert")
	if b.revertErr != nil {
		return nil, b.revertErr
	}
	return b.prefix(), nil
}

func (b *hostBackend) Close(context.Context) error {
	b.record("close")
	return b.closeErr
}

// rebootBackend loses everything in its tmp directory on reboot.
type rebootBackend struct{ *hostBackend }

func (b rebootBackend) Reboot(context.Context) ([]string, error) {
	b.record("reboot")
	tmp := filepath.Join(b.root, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	return b.prefix(), os.Mkdir(tmp, 0o755)
}

type hosterBackend struct{ *hostBackend }

func (b hosterBackend) DowntmpHost(tbPath string) (string, bool) { return tbPath, true }

func (b hosterBackend) DebugFail(context.Context) string { return "guest console says: oops" }

var _ testbed.Rebooter = rebootBackend{}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs Serve on pipes.
type harness struct {
	t       *testing.T
	in      *io.PipeWriter
	replies chan string
	done    chan error
	log     *syncBuffer
	cancel  context.CancelFunc
}

func start(t *testing.T, srv *Server, b testbed.Backend) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := &harness{t: t, in: inW, replies: make(chan string, 100), done: make(chan error, 1), log: &syncBuffer{}, cancel: cancel}
	go func() {
		err := srv.Serve(ctx, b, inR, outW, h.log)
		outW.Close()
		inR.Close()
		h.done <- err
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			h.replies <- sc.Text()
		}
		close(h.replies)
	}()
	t.Cleanup(func() {
		cancel()
		inW.Close()
	})
	if got := h.next(); got != "ok" {
		t.Fatalf("banner = %q, want %q", got, "ok")
	}
	return h
}

func (h *harness) next() string {
	h.t.Helper()
	r, ok := <-h.replies
	if !ok {
		h.t.Fatalf("server output ended; log:\n%s", h.log)
	}
	return r
}

func (h *harness) send(line string) {
	h.t.Helper()
	if _, err := io.WriteString(h.in, line+"\n"); err != nil {
		h.t.Fatalf("send %q: %v", line, err)
	}
}

func (h *harness) do(line string) string {
	h.t.Helper()
	h.send(line)
	return h.next()
}

// ok sends line, wants a reply starting "ok" and returns the words after it.
func (h *harness) ok(line string) []string {
	h.t.Helper()
	r := h.do(line)
	words := strings.Fields(r)
	if len(words) == 0 || words[0] != "ok" {
		h.t.Fatalf("reply to %q = %q, want ok...; log:\n%s", line, r, h.log)
	}
	return words[1:]
}

func (h *harness) wait() error {
	h.t.Helper()
	return <-h.done
}

func (h *harness) open() string {
	h.t.Helper()
	r := h.ok("open")
	if len(r) != 1 {
		h.t.Fatalf("open = %q, want one result", r)
	}
	d, err := url.PathUnescape(r[0])
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func q(s string) string { return Quote(s) }

func TestSession(t *testing.T) {
	b := newHostBackend(t, "revert", "isolation-container", "suggested-normal-user=tester", "reboot")
	h := start(t, &Server{}, b)

	if diff := cmp.Diff([]string{"revert", "isolation-container", "suggested-normal-user=tester"}, h.ok("capabilities")); diff != "" {
		t.Errorf("capabilities before open (-want +got):\n%s", diff)
	}
	downtmp := h.open()
	if !strings.HasPrefix(downtmp, filepath.Join(b.root, "tmp", "autopkgtest.")) {
		t.Errorf("open = %q, want a directory made by mktemp in %s", downtmp, b.root)
	}
	st, err := os.Stat(downtmp)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode()&(fs.ModePerm|fs.ModeSticky), fs.ModePerm|fs.ModeSticky; got != want {
		t.Errorf("downtmp mode = %v, want %v", got, want)
	}

	pec := h.ok("print-execute-command")
	if len(pec) != 1 {
		t.Fatalf("print-execute-command = %q, want one result", pec)
	}
	var argv []string
	for _, w := range strings.Split(pec[0], ",") {
		a, err := url.PathUnescape(w)
		if err != nil {
			t.Fatal(err)
		}
		argv = append(argv, a)
	}
	if diff := cmp.Diff(b.prefix(), argv); diff != "" {
		t.Errorf("print-execute-command decoded (-want +got):\n%s", diff)
	}
	if got := h.ok("print_execute_command"); !slices.Equal(got, pec) {
		t.Errorf("print_execute_command = %q, want %q", got, pec)
	}

	h.send("")
	h.send("   ")
	if got := h.ok("revert"); !slices.Equal(got, []string{q(downtmp)}) {
		t.Errorf("revert = %q, want [%q]", got, downtmp)
	}
	if got := h.ok("auxverb_debug_fail"); len(got) != 0 {
		t.Errorf("auxverb_debug_fail = %q, want no results", got)
	}
	h.ok("close")
	if err := os.RemoveAll(downtmp); err != nil {
		t.Fatal(err)
	}
	if got := h.open(); got != downtmp {
		t.Errorf("second open = %q, want the first downtmp %q", got, downtmp)
	}
	if _, err := os.Stat(downtmp); err != nil {
		t.Errorf("second open did not make the downtmp again: %v", err)
	}
	h.send("quit")
	if err := h.wait(); err != nil {
		t.Fatalf("Serve after quit = %v, want nil", err)
	}
	want := []string{"cleanup", "open", "revert", "close", "open", "close"}
	if diff := cmp.Diff(want, b.Calls()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}

func TestQuitWhenClosed(t *testing.T) {
	b := newHostBackend(t)
	h := start(t, &Server{}, b)
	h.ok("capabilities")
	h.send("quit")
	if err := h.wait(); err != nil {
		t.Fatalf("Serve after quit = %v, want nil", err)
	}
	if got := b.Calls(); len(got) != 0 {
		t.Errorf("backend calls = %q, want none", got)
	}
}

func TestFatal(t *testing.T) {
	tests := []struct {
		name      string
		caps      []string
		script    []string // each must reply ok
		last      string
		wantErr   error
		wantCalls []string
	}{
		{"unknown command", nil, nil, "frobnicate", ErrUnknownCommand, nil},
		{"bad encoding", nil, []string{"open"}, "copyup /x%zz /y", ErrEncoding, []string{"cleanup", "open", "close"}},
		{"too many args", nil, nil, "capabilities please", ErrArgCount, nil},
		{"over-long line", nil, []string{"open"}, "copyup /" + strings.Repeat("a", MaxLine) + " /b", ErrLineTooLong, []string{"cleanup", "open", "close"}},
		{"revert when closed", []string{"revert"}, nil, "revert", ErrNotOpen, nil},
		{"close when closed", nil, nil, "close", ErrNotOpen, nil},
		{"close after close", nil, []string{"open", "close"}, "close", ErrNotOpen, []string{"cleanup", "open", "close"}},
		{"print-execute-command when closed", nil, nil, "print-execute-command", ErrNotOpen, nil},
		{"copyup when closed", nil, nil, "copyup /a /b", ErrNotOpen, nil},
		{"copydown when closed", nil, nil, "copydown /a /b", ErrNotOpen, nil},
		{"shell when closed", nil, nil, "shell /", ErrNotOpen, nil},
		{"reboot when closed", nil, nil, "reboot", ErrNotOpen, nil},
		{"open twice", nil, []string{"open"}, "open", ErrAlreadyOpen, []string{"cleanup", "open", "close"}},
		{"revert not advertised", nil, []string{"open"}, "revert", ErrNotAdvertised, []string{"cleanup", "open", "close"}},
		{"reboot not implemented", []string{"reboot"}, []string{"open"}, "reboot", ErrNotAdvertised, []string{"cleanup", "open", "close"}},
		{"copy directoryness", nil, []string{"open"}, "copyup /a/ /b", ErrPaths, []string{"cleanup", "open", "close"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newHostBackend(t, tt.caps...)
			h := start(t, &Server{}, b)
			for _, line := range tt.script {
				h.ok(line)
			}
			// The server stops reading at a fatal error, so the write
			// of an over-long line may fail part way.
			go func() { _, _ = io.WriteString(h.in, tt.last+"\n") }()
			if got := h.next(); !strings.HasPrefix(got, "error ") {
				t.Errorf("reply to %.40q = %.80q, want error...", tt.last, got)
			}
			if err := h.wait(); !errors.Is(err, tt.wantErr) {
				t.Errorf("Serve = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantCalls, b.Calls()); diff != "" {
				t.Errorf("backend calls (-want +got):\n%s", diff)
			}
			if !strings.Contains(h.log.String(), "failure:") {
				t.Errorf("log = %q, want a failure message", h.log)
			}
		})
	}
}

func TestBackendFailures(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		set       func(*hostBackend)
		script    []string
		last      string
		wantCalls []string
	}{
		{"cleanup fails", func(b *hostBackend) { b.cleanupErr = boom }, nil, "open", []string{"cleanup"}},
		{"open fails", func(b *hostBackend) { b.openErr = boom }, nil, "open", []string{"cleanup", "open", "close"}},
		{"revert fails", func(b *hostBackend) { b.revertErr = boom }, []string{"open"}, "revert", []string{"cleanup", "open", "revert", "close"}},
		{"close fails", func(b *hostBackend) { b.closeErr = boom }, []string{"open"}, "close", []string{"cleanup", "open", "close", "close"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newHostBackend(t, "revert")
			tt.set(b)
			h := start(t, &Server{}, b)
			for _, line := range tt.script {
				h.ok(line)
			}
			if got := h.do(tt.last); !strings.HasPrefix(got, "error ") {
				t.Errorf("reply to %q = %q, want error...", tt.last, got)
			}
			err := h.wait()
			if !errors.Is(err, boom) || !errors.Is(err, ErrBackend) {
				t.Errorf("Serve = %v, want %v wrapped in %v", err, boom, ErrBackend)
			}
			if diff := cmp.Diff(tt.wantCalls, b.Calls()); diff != "" {
				t.Errorf("backend calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEmptyExecPrefixIsFatal(t *testing.T) {
	b := &emptyPrefixBackend{newHostBackend(t)}
	h := start(t, &Server{}, b)
	if got := h.do("open"); !strings.HasPrefix(got, "error ") {
		t.Errorf("open = %q, want error...", got)
	}
	if err := h.wait(); !errors.Is(err, ErrBackend) {
		t.Errorf("Serve = %v, want %v", err, ErrBackend)
	}
	if diff := cmp.Diff([]string{"cleanup", "open", "close"}, b.Calls()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}

type emptyPrefixBackend struct{ *hostBackend }

func (b *emptyPrefixBackend) Open(ctx context.Context) ([]string, error) {
	_, err := b.hostBackend.Open(ctx)
	return nil, err
}

func TestEOFCloses(t *testing.T) {
	b := newHostBackend(t)
	h := start(t, &Server{}, b)
	h.open()
	h.in.Close()
	if err := h.wait(); !errors.Is(err, ErrEOF) {
		t.Errorf("Serve after EOF = %v, want %v", err, ErrEOF)
	}
	if diff := cmp.Diff([]string{"cleanup", "open", "close"}, b.Calls()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(h.log.String(), "end of file") {
		t.Errorf("log = %q, want it to mention the end of file", h.log)
	}
}

func TestUnterminatedLastLine(t *testing.T) {
	b := newHostBackend(t)
	h := start(t, &Server{}, b)
	if _, err := io.WriteString(h.in, "capabilities"); err != nil {
		t.Fatal(err)
	}
	h.in.Close()
	if got := h.next(); got != "ok" {
		t.Errorf("reply to unterminated capabilities = %q, want %q", got, "ok")
	}
	if err := h.wait(); !errors.Is(err, ErrEOF) {
		t.Errorf("Serve = %v, want %v", err, ErrEOF)
	}
}

func TestCancelCloses(t *testing.T) {
	b := newHostBackend(t)
	h := start(t, &Server{}, b)
	h.open()
	h.cancel()
	if err := h.wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after cancel = %v, want %v", err, context.Canceled)
	}
	if diff := cmp.Diff([]string{"cleanup", "open", "close"}, b.Calls()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(h.log.String(), "closing the testbed") {
		t.Errorf("log = %q, want a message about closing", h.log)
	}
}

func TestCancelDuringCopy(t *testing.T) {
	b := newHostBackend(t)
	h := start(t, &Server{}, b)
	h.open()
	fifo := filepath.Join(b.root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	h.send("copyup " + q(fifo) + " " + q(filepath.Join(t.TempDir(), "out")))
	// The copy blocks opening the fifo; cancelling must end it.
	h.cancel()
	if err := h.wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after cancel = %v, want %v", err, context.Canceled)
	}
	if diff := cmp.Diff([]string{"cleanup", "open", "close"}, b.Calls()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}

func TestCopyFiles(t *testing.T) {
	b := newHostBackend(t)
	h := start(t, &Server{}, b)
	downtmp := h.open()
	host := t.TempDir()

	tests := []struct {
		name string
		mode fs.FileMode
	}{
		{"plain", 0o644},
		{"executable", 0o755},
		{"with space, comma and 'quote'", 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := []byte("content of " + tt.name + "\n\x00\xff")
			src := filepath.Join(host, tt.name)
			if err := os.WriteFile(src, content, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(src, tt.mode); err != nil {
				t.Fatal(err)
			}
			tb := filepath.Join(downtmp, tt.name)
			h.ok("copydown " + q(src) + " " + q(tb))
			got, err := os.ReadFile(tb)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("copydown content = %q, want %q", got, content)
			}
			st, err := os.Stat(tb)
			if err != nil {
				t.Fatal(err)
			}
			if gotX, wantX := st.Mode()&0o100 != 0, tt.mode&0o100 != 0; gotX != wantX {
				t.Errorf("copydown mode = %v, want executable %v", st.Mode(), wantX)
			}

			back := filepath.Join(host, "back "+tt.name)
			h.ok("copyup " + q(tb) + " " + q(back))
			got, err = os.ReadFile(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("copyup content = %q, want %q", got, content)
			}
		})
	}
}

// tree is a small directory tree: path → content ("" and mode with
// ModeDir for a directory, ModeSymlink for a symlink to content).
type entry struct {
	content string
	mode    fs.FileMode
}

func writeTree(t *testing.T, dir string, tree map[string]entry) {
	t.Helper()
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range tree {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		e := tree[name]
		p := filepath.Join(dir, name)
		var err error
		switch {
		case e.mode&fs.ModeDir != 0:
			err = os.Mkdir(p, 0o700)
		case e.mode&fs.ModeSymlink != 0:
			err = os.Symlink(e.content, p)
		default:
			err = os.WriteFile(p, []byte(e.content), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Modes last, so read-only directories can be filled first.
	for _, name := range slices.Backward(names) {
		e := tree[name]
		if e.mode&fs.ModeSymlink == 0 {
			if err := os.Chmod(filepath.Join(dir, name), e.mode.Perm()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func readTree(t *testing.T, dir string) map[string]entry {
	t.Helper()
	got := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			got[rel] = entry{mode: fs.ModeDir | info.Mode().Perm()}
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = entry{content: target, mode: fs.ModeSymlink}
		default:
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = entry{content: string(c), mode: info.Mode().Perm()}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCopyDirs(t *testing.T) {
	b := newHostBackend(t)
	h := start(t, &Server{}, b)
	downtmp := h.open()
	tree := map[string]entry{
		"a.txt":            {"alpha\n", 0o644},
		"run.sh":           {"#!/bin/sh\n", 0o755},
		"secret":           {"s", 0o600},
		"sub":              {"", fs.ModeDir | 0o750},
		"sub/deep":         {"", fs.ModeDir | 0o755},
		"sub/deep/b.txt":   {"beta", 0o640},
		"sub/link":         {"../a.txt", fs.ModeSymlink},
		"name with spaces": {"x", 0o644},
	}
	src := filepath.Join(t.TempDir(), "src dir")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, src, tree)

	tb := filepath.Join(downtmp, "tree")
	h.ok("copydown " + q(src+"/") + " " + q(tb+"/"))
	if diff := cmp.Diff(tree, readTree(t, tb), cmp.AllowUnexported(entry{})); diff != "" {
		t.Errorf("copydown tree (-want +got):\n%s", diff)
	}
	// Copying down again merges into the existing directory.
	h.ok("copydown " + q(src+"/") + " " + q(tb+"/"))

	back := filepath.Join(t.TempDir(), "back")
	h.ok("copyup " + q(tb+"/") + " " + q(back+"/"))
	if diff := cmp.Diff(tree, readTree(t, back), cmp.AllowUnexported(entry{})); diff != "" {
		t.Errorf("copyup tree (-want +got):\n%s", diff)
	}
}

func TestCopyFailedIsNotFatal(t *testing.T) {
	b := newHostBackend(t)
	h := start(t, &Server{}, b)
	downtmp := h.open()
	host := t.TempDir()
	tests := []struct {
		name string
		line string
	}{
		{"copyup missing file", "copyup " + q(downtmp+"/missing") + " " + q(host+"/x")},
		{"copyup missing dir", "copyup " + q(downtmp+"/missing/") + " " + q(host+"/y/")},
		{"copydown missing file", "copydown " + q(host+"/missing") + " " + q(downtmp+"/x")},
		{"copydown missing dir", "copydown " + q(host+"/missing/") + " " + q(downtmp+"/y/")},
		{"copyup into missing host dir", "copyup " + q(downtmp) + "/ " + q(host+"/no/such/")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.do(tt.line); got != "copy-failed" {
				t.Errorf("reply to %q = %q, want copy-failed", tt.line, got)
			}
			h.ok("capabilities")
		})
	}
	h.send("quit")
	if err := h.wait(); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

func TestCopyTimeout(t *testing.T) {
	b := newHostBackend(t)
	h := start(t, &Server{CopyTimeout: time.Millisecond}, b)
	h.open()
	fifo := filepath.Join(b.root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Nothing ever writes to the fifo, so reading it never ends.
	if got := h.do("copyup " + q(fifo) + " " + q(filepath.Join(t.TempDir(), "out"))); got != "timeout" {
		t.Errorf("copyup of a fifo = %q, want timeout", got)
	}
	h.ok("capabilities")
}

func TestReboot(t *testing.T) {
	b := rebootBackend{newHostBackend(t)}
	if err := os.MkdirAll(filepath.Join(b.root, "var", "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := &Server{
		rebootDirs: []string{filepath.Join(b.root, "readonly"), filepath.Join(b.root, "var", "cache")},
		rebootMark: filepath.Join(b.root, "mark"),
	}
	h := start(t, srv, b)
	if got := h.ok("capabilities"); !slices.Contains(got, "reboot") {
		t.Errorf("capabilities = %q, want reboot", got)
	}
	downtmp := h.open()
	kept := filepath.Join(downtmp, "kept")
	if err := os.WriteFile(kept, []byte("still here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := h.ok("reboot"); len(got) != 0 {
		t.Errorf("reboot = %q, want no results (autopkgtest expects none)", got)
	}
	if got, err := os.ReadFile(kept); err != nil || string(got) != "still here" {
		t.Errorf("after reboot %s = %q, %v; want %q", kept, got, err, "still here")
	}
	h.ok("reboot prepare-only")
	h.ok("close")
	want := []string{"cleanup", "open", "reboot", "reboot", "close"}
	if diff := cmp.Diff(want, b.Calls()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}

func TestDowntmpHostAndDebugFail(t *testing.T) {
	b := hosterBackend{newHostBackend(t, "isolation-container")}
	h := start(t, &Server{}, b)
	if got := h.ok("capabilities"); slices.ContainsFunc(got, func(c string) bool { return strings.HasPrefix(c, "downtmp-host=") }) {
		t.Errorf("capabilities when closed = %q, want no downtmp-host", got)
	}
	downtmp := h.open()
	want := []string{"isolation-container", "downtmp-host=" + q(downtmp)}
	if diff := cmp.Diff(want, h.ok("capabilities")); diff != "" {
		t.Errorf("capabilities when open (-want +got):\n%s", diff)
	}
	h.ok("auxverb_debug_fail")
	if !strings.Contains(h.log.String(), "guest console says: oops") {
		t.Errorf("log = %q, want the backend's debug text", h.log)
	}
}

func TestShell(t *testing.T) {
	b := newHostBackend(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	script := "pwd > result; echo \"$FOO|$BAR\" >> result; exit 0\n"
	if err := os.WriteFile(in, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := &Server{openTTY: func() (*os.File, *os.File, error) {
		r, err := os.Open(in)
		if err != nil {
			return nil, nil, err
		}
		w, err := os.Create(filepath.Join(dir, "out"))
		return r, w, err
	}}
	h := start(t, srv, b)
	downtmp := h.open()
	h.ok("shell " + q(downtmp) + " " + q("FOO=a b") + " " + q("BAR=$HOME"))
	got, err := os.ReadFile(filepath.Join(downtmp, "result"))
	if err != nil {
		t.Fatal(err)
	}
	if want := downtmp + "\na b|$HOME\n"; string(got) != want {
		t.Errorf("shell result = %q, want %q", got, want)
	}
}

func TestShellWithoutTTY(t *testing.T) {
	b := newHostBackend(t)
	srv := &Server{openTTY: func() (*os.File, *os.File, error) { return nil, nil, fs.ErrNotExist }}
	h := start(t, srv, b)
	h.open()
	h.ok("shell /")
	if !strings.Contains(h.log.String(), "cannot run shell") {
		t.Errorf("log = %q, want it to say the shell could not run", h.log)
	}
}

func TestReplyWriteFailureCloses(t *testing.T) {
	b := newHostBackend(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(t.Context(), b, inR, outW, io.Discard) }()
	br := bufio.NewReader(outR)
	for _, cmd := range []string{"", "open"} {
		if cmd != "" {
			fmt.Fprintln(inW, cmd)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	outR.Close()
	fmt.Fprintln(inW, "capabilities")
	if err := <-done; !errors.Is(err, ErrOutput) {
		t.Errorf("Serve with closed output = %v, want %v", err, ErrOutput)
	}
	inW.Close()
	if diff := cmp.Diff([]string{"cleanup", "open", "close"}, b.Calls()); diff != "" {
		t.Errorf("backend calls (-want +got):\n%s", diff)
	}
}
