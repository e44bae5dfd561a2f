// Package virt owns sparegrid's side of autopkgtest's virtualisation-server
// protocol (README.virtualisation-server in autopkgtest's documentation):
// the line protocol on stdin/stdout, the Closed/Open state machine, the
// scratch directory ("downtmp") inside the testbed, copyup/copydown
// through the backend's exec prefix, and closing the testbed on every
// error, end of input and cancellation. It behaves like autopkgtest's own
// VirtSubproc.py, which autopkgtest 5.28's client expects.
//
// It must not know how a testbed is made: that is a testbed.Backend's job.
// It must not add a capability a backend did not claim.
package virt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sparegrid/sparegrid/agent/testbed"
)

// DefaultCopyTimeout bounds one copyup or copydown when Server.CopyTimeout
// is zero; it is autopkgtest's default for --timeout-copy.
const DefaultCopyTimeout = 300 * time.Second

// DefaultProg names the server in its messages.
const DefaultProg = "autopkgtest-virt-sparegrid"

var (
	// ErrEOF means the input ended without a quit command.
	ErrEOF = errors.New("virt: end of file - caller quit?")
	// ErrNotOpen means a command needs an open testbed and there is none.
	ErrNotOpen = errors.New("virt: testbed not open")
	// ErrAlreadyOpen means open was sent while a testbed is open.
	ErrAlreadyOpen = errors.New("virt: testbed already open")
	// ErrNotAdvertised means revert or reboot was sent although the
	// server did not advertise it.
	ErrNotAdvertised = errors.New("virt: capability not advertised")
	// ErrPaths means copyup/copydown paths are empty or disagree about
	// being directories (a trailing "/").
	ErrPaths = errors.New("virt: bad copy paths")
	// ErrCopyFailed means a copyup or copydown failed; the server replies
	// "copy-failed" and stays up.
	ErrCopyFailed = errors.New("virt: copy failed")
	// ErrCopyTimeout means a copyup or copydown ran out of time; the
	// server replies "timeout" and stays up.
	ErrCopyTimeout = errors.New("virt: copy timed out")
	// ErrExec means a command the server ran in the testbed failed.
	ErrExec = errors.New("virt: command in testbed failed")
	// ErrBackend wraps an error returned by the backend.
	ErrBackend = errors.New("virt: backend failed")
	// ErrOutput means a reply could not be written.
	ErrOutput = errors.New("virt: cannot write reply")
)

// DowntmpHoster is implemented by backends whose testbed directories are
// also visible on the host. DowntmpHost returns the host path of the
// testbed path tbPath, if there is one; the server then advertises it as
// "downtmp-host=PATH".
type DowntmpHoster interface {
	DowntmpHost(tbPath string) (hostPath string, ok bool)
}

// DebugFailer is implemented by backends that can describe why a testbed
// failed; the server logs the text when autopkgtest sends
// auxverb_debug_fail.
type DebugFailer interface {
	DebugFail(ctx context.Context) string
}

// Server holds the settings of a virt server. The zero value is ready to
// use.
type Server struct {
	// Prog names the server in messages on the log; DefaultProg if empty.
	Prog string
	// CopyTimeout bounds each copyup and copydown; DefaultCopyTimeout if
	// zero. autopkgtest passes its copy timeout in the environment as
	// AUTOPKGTEST_VIRT_COPY_TIMEOUT (seconds).
	CopyTimeout time.Duration

	// openTTY opens the terminal the shell command runs on, for reading
	// and for writing.
	openTTY func() (in, out *os.File, err error)
	// rebootDirs are where the downtmp is saved across a reboot, first
	// writable one wins; rebootMark is removed when it is saved.
	rebootDirs []string
	rebootMark string
}

// Serve runs the virt-server protocol with the default Server.
func Serve(ctx context.Context, b testbed.Backend, in io.Reader, out io.Writer, log io.Writer) error {
	var s Server
	return s.Serve(ctx, b, in, out, log)
}

// Serve speaks the virt-server protocol on in and out, driving b, until a
// quit command (it then returns nil), the end of in, a fatal error or the
// cancellation of ctx (it returns why). Before returning it closes the
// testbed if one may be open, and it says on log why it stops. Like
// VirtSubproc, it does not reply to quit: autopkgtest has closed its end
// by then.
//
// Like autopkgtest's VirtSubproc, an invalid command, a command invalid in
// the current state and a backend failure are fatal; Serve replies with a
// line starting "error" before it closes the testbed. A failed copy is
// not fatal: the reply is "copy-failed" or "timeout".
//
// A server run as root by sudo (SUDO_UID and SUDO_GID set) gives what it
// copies up to the host to the user who ran sudo, so that an unprivileged
// agent can remove it.
//
// Serve reads in from another goroutine, which stays blocked in Read after
// Serve returns until in delivers data or fails.
func (s *Server) Serve(ctx context.Context, b testbed.Backend, in io.Reader, out io.Writer, log io.Writer) error {
	ss := &session{srv: s, b: b, out: out, log: log, owner: sudoOwner(os.Geteuid(), os.Getenv)}
	if ss.srv.Prog == "" {
		ss.prog = DefaultProg
	} else {
		ss.prog = ss.srv.Prog
	}
	if err := ss.reply("ok"); err != nil {
		return err
	}

	lines := make(chan readResult)
	stop := make(chan struct{})
	defer close(stop)
	go readLines(in, lines, stop)

	err := ss.loop(ctx, lines)
	if cerr := ss.closeBackend(context.WithoutCancel(ctx)); cerr != nil {
		fmt.Fprintf(log, "%s: failure while closing the testbed: %v\n", ss.prog, cerr)
		err = errors.Join(err, cerr)
	}
	return err
}

type readResult struct {
	line string
	err  error
}

func readLines(in io.Reader, lines chan<- readResult, stop <-chan struct{}) {
	br := bufio.NewReaderSize(in, MaxLine)
	for {
		l, err := br.ReadSlice('\n')
		var r readResult
		switch {
		case err == nil:
			r.line = string(l)
		case errors.Is(err, bufio.ErrBufferFull):
			r.err = fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, MaxLine)
		case errors.Is(err, io.EOF) && len(l) > 0:
			r.line = string(l)
		case errors.Is(err, io.EOF):
			r.err = ErrEOF
		default:
			r.err = fmt.Errorf("virt: reading commands: %w", err)
		}
		select {
		case lines <- r:
		case <-stop:
			return
		}
		if r.err != nil {
			return
		}
	}
}

type session struct {
	srv  *Server
	prog string
	b    testbed.Backend
	out  io.Writer
	log  io.Writer

	cleaned bool
	// live is set from the first Open until a successful Close: the
	// backend may hold a testbed.
	live bool
	open bool
	// exec is the backend's exec prefix while open.
	exec []string
	// downtmp is the scratch directory while open; downtmpOpen is the
	// one made by the first open, kept for every later open and revert
	// because built trees may refer to it.
	downtmp     string
	downtmpOpen string
	// owner, when set, receives the files copied up to the host.
	owner *owner
}

// failedError is a non-fatal failure: the reply is word, not "ok".
type failedError struct {
	word string
	err  error
}

func (e *failedError) Error() string { return e.err.Error() }
func (e *failedError) Unwrap() error { return e.err }

func (ss *session) loop(ctx context.Context, lines <-chan readResult) error {
	stopped := func() error {
		err := fmt.Errorf("virt: stopped: %w", context.Cause(ctx))
		fmt.Fprintf(ss.log, "%s: %v; closing the testbed\n", ss.prog, err)
		return err
	}
	for {
		if ctx.Err() != nil {
			return stopped()
		}
		var r readResult
		select {
		case <-ctx.Done():
			return stopped()
		case r = <-lines:
		}
		if r.err != nil {
			if errors.Is(r.err, ErrLineTooLong) {
				return ss.fatal(r.err, true)
			}
			return ss.fatal(r.err, false)
		}
		c, err := ParseCommand(r.line)
		if errors.Is(err, ErrEmpty) {
			continue
		}
		if err != nil {
			return ss.fatal(err, true)
		}
		if c.Name == CmdQuit {
			if err := ss.closeBackend(ctx); err != nil {
				return ss.fatal(err, true)
			}
			// No reply, like VirtSubproc: autopkgtest closes its end
			// before it sends quit.
			return nil
		}
		results, err := ss.dispatch(ctx, c)
		var fe *failedError
		switch {
		case errors.As(err, &fe):
			fmt.Fprintf(ss.log, "%s: %v\n", ss.prog, err)
			err = ss.reply(fe.word)
		case err != nil:
			return ss.fatal(err, true)
		default:
			err = ss.reply(append([]string{"ok"}, results...)...)
		}
		if err != nil {
			return ss.fatal(err, false)
		}
	}
}

// fatal reports err on the log and, if tell, as a reply.
func (ss *session) fatal(err error, tell bool) error {
	fmt.Fprintf(ss.log, "%s: failure: %v\n", ss.prog, err)
	if tell {
		msg := strings.Join(strings.Fields(err.Error()), " ")
		_ = ss.reply("error", msg)
	}
	return err
}

func (ss *session) reply(words ...string) error {
	if _, err := io.WriteString(ss.out, strings.Join(words, " ")+"\n"); err != nil {
		return fmt.Errorf("%w: %w", ErrOutput, err)
	}
	return nil
}

// closeBackend closes the testbed if one may be open.
func (ss *session) closeBackend(ctx context.Context) error {
	ss.open = false
	ss.exec = nil
	ss.downtmp = ""
	if !ss.live {
		return nil
	}
	if err := ss.b.Close(ctx); err != nil {
		return fmt.Errorf("%w: close: %w", ErrBackend, err)
	}
	ss.live = false
	return nil
}

func (ss *session) dispatch(ctx context.Context, c Command) ([]string, error) {
	switch c.Name {
	case CmdCapabilities:
		return ss.capabilities(), nil
	case CmdAuxverbDebugFail:
		if d, ok := ss.b.(DebugFailer); ok {
			fmt.Fprintf(ss.log, "%s: %s\n", ss.prog, d.DebugFail(ctx))
		}
		return nil, nil
	case CmdOpen:
		return ss.openCmd(ctx)
	}
	if !ss.open {
		return nil, fmt.Errorf("%w: `%s' when not open", ErrNotOpen, c.Name)
	}
	switch c.Name {
	case CmdRevert:
		return ss.revertCmd(ctx)
	case CmdReboot:
		return nil, ss.rebootCmd(ctx)
	case CmdClose:
		return nil, ss.closeBackend(ctx)
	case CmdPrintExecuteCommand:
		q := make([]string, len(ss.exec))
		for i, w := range ss.exec {
			q[i] = Quote(w)
		}
		return []string{strings.Join(q, ",")}, nil
	case CmdCopydown:
		return nil, ss.copy(ctx, c.Name, false, c.Args[0], c.Args[1])
	case CmdCopyup:
		return nil, ss.copy(ctx, c.Name, true, c.Args[1], c.Args[0])
	case CmdShell:
		ss.shell(ctx, c.Args[0], c.Args[1:])
		return nil, nil
	}
	return nil, fmt.Errorf("%w `%s'", ErrUnknownCommand, c.Name)
}

func (ss *session) capabilities() []string {
	_, canReboot := ss.b.(testbed.Rebooter)
	var caps []string
	for _, c := range ss.b.Capabilities() {
		if c == "" || strings.HasPrefix(c, "downtmp-host=") || c == "reboot" && !canReboot {
			continue
		}
		caps = append(caps, quote(c, "/="))
	}
	if canReboot && !slices.Contains(caps, "reboot") {
		caps = append(caps, "reboot")
	}
	if h, ok := ss.downtmpHost(); ok {
		caps = append(caps, "downtmp-host="+Quote(h))
	}
	return caps
}

func (ss *session) downtmpHost() (string, bool) {
	h, ok := ss.b.(DowntmpHoster)
	if !ok || !ss.open {
		return "", false
	}
	return h.DowntmpHost(ss.downtmp)
}

func (ss *session) advertised(capability string) bool {
	if capability == "reboot" {
		_, ok := ss.b.(testbed.Rebooter)
		return ok
	}
	return slices.Contains(ss.b.Capabilities(), capability)
}

func (ss *session) openCmd(ctx context.Context) ([]string, error) {
	if ss.open {
		return nil, fmt.Errorf("%w: `open' when already open", ErrAlreadyOpen)
	}
	if !ss.cleaned {
		if err := ss.b.Cleanup(ctx); err != nil {
			return nil, fmt.Errorf("%w: cleanup: %w", ErrBackend, err)
		}
		ss.cleaned = true
	}
	ss.live = true
	ex, err := ss.b.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: open: %w", ErrBackend, err)
	}
	if err := ss.started(ctx, ex); err != nil {
		return nil, err
	}
	return []string{Quote(ss.downtmp)}, nil
}

func (ss *session) revertCmd(ctx context.Context) ([]string, error) {
	if !ss.advertised("revert") {
		return nil, fmt.Errorf("%w: `revert' when `revert' not advertised", ErrNotAdvertised)
	}
	ss.open = false
	ex, err := ss.b.Revert(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: revert: %w", ErrBackend, err)
	}
	if err := ss.started(ctx, ex); err != nil {
		return nil, err
	}
	return []string{Quote(ss.downtmp)}, nil
}

// started takes the exec prefix of a fresh testbed and makes its downtmp.
func (ss *session) started(ctx context.Context, ex []string) error {
	if len(ex) == 0 {
		return fmt.Errorf("%w: empty exec prefix", ErrBackend)
	}
	ss.exec = slices.Clone(ex)
	if ss.downtmpOpen != "" {
		if _, err := ss.checkExec(ctx, "mkdir", "--mode=1777", "--parents", ss.downtmpOpen); err != nil {
			return err
		}
	} else {
		d, err := ss.checkExec(ctx, "mktemp", "--directory", "--tmpdir", "autopkgtest.XXXXXX")
		if err != nil {
			return err
		}
		if d == "" || strings.ContainsAny(d, "\n") {
			return fmt.Errorf("%w: mktemp printed %q", ErrExec, d)
		}
		if _, err := ss.checkExec(ctx, "chmod", "1777", d); err != nil {
			return err
		}
		ss.downtmpOpen = d
	}
	ss.downtmp = ss.downtmpOpen
	ss.open = true
	return nil
}

const rebootSave = `for d in %s; do if [ -w $d ]; then ` +
	`tar --warning=none --create --absolute-names -f $d/autopkgtest-tmpdir.tar %s; ` +
	`rm -f %s; exit 0; fi; done; exit 1`

const rebootRestore = `for d in %s; do if [ -e $d/autopkgtest-tmpdir.tar ]; then ` +
	`tar --warning=none --extract --absolute-names -f $d/autopkgtest-tmpdir.tar; ` +
	`rm $d/autopkgtest-tmpdir.tar; exit 0; fi; done; exit 1`

// rebootCmd saves the downtmp in the testbed, has the backend reboot it and
// restores the downtmp. "reboot prepare-only" (the test reboots the
// testbed itself) is served the same way: the backend's Reboot restarts it.
func (ss *session) rebootCmd(ctx context.Context) error {
	r, ok := ss.b.(testbed.Rebooter)
	if !ok {
		return fmt.Errorf("%w: `reboot' when `reboot' not advertised", ErrNotAdvertised)
	}
	dirs, mark := ss.srv.rebootDirs, ss.srv.rebootMark
	if dirs == nil {
		dirs, mark = []string{"/var/cache", "/home"}, "/run/autopkgtest-reboot-prepare-mark"
	}
	qdirs := make([]string, len(dirs))
	for i, d := range dirs {
		qdirs[i] = shellQuote(d)
	}
	ctxSave, cancel := context.WithTimeout(ctx, ss.copyTimeout())
	defer cancel()
	save := fmt.Sprintf(rebootSave, strings.Join(qdirs, " "), shellQuote(ss.downtmp), shellQuote(mark))
	if _, err := ss.checkExec(ctxSave, "sh", "-ec", save); err != nil {
		return err
	}
	ss.open = false
	ex, err := r.Reboot(ctx)
	if err != nil {
		return fmt.Errorf("%w: reboot: %w", ErrBackend, err)
	}
	if len(ex) == 0 {
		return fmt.Errorf("%w: empty exec prefix", ErrBackend)
	}
	ss.exec = slices.Clone(ex)
	ctxRestore, cancel := context.WithTimeout(ctx, ss.copyTimeout())
	defer cancel()
	if _, err := ss.checkExec(ctxRestore, "sh", "-ec", fmt.Sprintf(rebootRestore, strings.Join(qdirs, " "))); err != nil {
		return err
	}
	ss.open = true
	return nil
}

func (ss *session) copyTimeout() time.Duration {
	if ss.srv.CopyTimeout > 0 {
		return ss.srv.CopyTimeout
	}
	return DefaultCopyTimeout
}

// command prepares argv to run on the host in its own process group,
// killed as a group when ctx ends.
func (ss *session) command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stderr = ss.log
	return cmd
}

// checkExec runs argv in the testbed; it must exit 0 without writing to
// stderr. It returns stdout without one trailing newline.
func (ss *session) checkExec(ctx context.Context, argv ...string) (string, error) {
	cmd := ss.command(ctx, append(slices.Clone(ss.exec), argv...))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: (down) %q: %w (stderr %q)", ErrExec, argv, err, stderr.String())
	}
	if stderr.Len() > 0 {
		return "", fmt.Errorf("%w: (down) %q unexpectedly produced stderr output %q", ErrExec, argv, stderr.String())
	}
	return strings.TrimSuffix(stdout.String(), "\n"), nil
}

// shell runs an interactive shell in the testbed on the terminal, in dir
// with the NAME=VALUE words env exported. Failing to start it is logged,
// not fatal.
func (ss *session) shell(ctx context.Context, dir string, env []string) {
	var script strings.Builder
	fmt.Fprintf(&script, "cd %s; ", shellQuote(dir))
	for _, e := range env {
		fmt.Fprintf(&script, "export %s; ", shellQuote(e))
	}
	if term, ok := os.LookupEnv("TERM"); ok {
		fmt.Fprintf(&script, "export TERM=%s; ", shellQuote(term))
	}
	script.WriteString("bash -i")

	openTTY := ss.srv.openTTY
	if openTTY == nil {
		openTTY = func() (*os.File, *os.File, error) {
			tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
			return tty, tty, err
		}
	}
	in, out, err := openTTY()
	if err != nil {
		fmt.Fprintf(ss.log, "%s: cannot run shell: %v\n", ss.prog, err)
		return
	}
	defer in.Close()
	defer out.Close()
	argv := append(slices.Clone(ss.exec), "sh", "-c", script.String())
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(ss.log, "%s: shell: %v\n", ss.prog, err)
	}
}
