// Command autopkgtest-virt-sparegrid is sparegrid's autopkgtest virt
// server. autopkgtest runs it for "autopkgtest ... -- sparegrid BACKEND
// [options]", finding it on PATH by its autopkgtest-virt- prefix, and
// speaks the virt-server protocol with it on stdin and stdout. The agent
// runs "autopkgtest-virt-sparegrid BACKEND --cleanup [options]" after a
// crash to remove what dead servers of that backend left behind.
//
// It picks a backend from its table and hands it to package virt; it must
// not hold protocol or testbed logic of its own.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sparegrid/sparegrid/agent/testbed"
	"github.com/sparegrid/sparegrid/agent/testbed/overlay"
	"github.com/sparegrid/sparegrid/agent/testbed/virt"
	"github.com/sparegrid/sparegrid/agent/testbed/xenlvm"
)

const prog = "autopkgtest-virt-sparegrid"

// Exit statuses. A fatal error exits like VirtSubproc's; autopkgtest
// reports any non-zero status after quit as a testbed failure.
const (
	exitOK    = 0
	exitUsage = 1
	exitFatal = 12
)

var (
	errUsage          = errors.New(prog + ": usage")
	errUnknownBackend = errors.New(prog + ": unknown backend")
	errHelp           = errors.New(prog + ": help requested")
)

// factory builds a backend from the arguments after its name.
type factory func(args []string) (testbed.Backend, error)

// cleaner removes what crashed servers of a backend left behind, given the
// arguments after cleanupArg.
type cleaner func(ctx context.Context, args []string) error

// backend is an entry of the backend table; cleanup is nil for a backend
// without a cleanup mode.
type backend struct {
	open    factory
	cleanup cleaner
}

// cleanupArg, right after the backend's name, selects cleanup mode. The
// agent's recovery spells it the same way (recovery.CleanupArg).
const cleanupArg = "--cleanup"

func backends() map[string]backend {
	return map[string]backend{
		"overlay": {open: overlay.FromArgs, cleanup: overlay.CleanupFromArgs},
		"xenlvm":  {open: xenlvm.FromArgs, cleanup: cleanupXenLVM},
	}
}

// cleanupXenLVM runs a xenlvm backend's Cleanup; it needs the same
// arguments as a server, which name the volume group and the host
// commands.
func cleanupXenLVM(ctx context.Context, args []string) error {
	b, err := xenlvm.FromArgs(args)
	if err != nil {
		return err
	}
	return b.Cleanup(ctx)
}

// signalError is the cause of a cancellation by a signal.
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return "received " + e.sig.String() }

func main() {
	// Exec mode runs one command in a live overlay testbed for a server
	// that itself runs under sudo (see overlay.ExecArg).
	if len(os.Args) > 2 && os.Args[1] == "overlay" && os.Args[2] == overlay.ExecArg {
		os.Exit(overlay.ExecMain(os.Args[3:]))
	}
	// Writing to a closed stdout must fail with EPIPE, not kill the
	// server before it has closed the testbed.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		cancel(signalError{sig})
		sig = <-sigs
		fmt.Fprintf(os.Stderr, "%s: %v again, exiting without closing the testbed\n", prog, sig)
		os.Exit(signalStatus(sig))
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv, backends()))
}

// run serves one autopkgtest session, or runs a backend's cleanup, and
// returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer,
	getenv func(string) string, table map[string]backend) int {
	if len(args) > 1 && args[1] == cleanupArg {
		return cleanup(ctx, args[0], args[2:], stderr, table)
	}
	b, srv, err := setup(args, getenv, table)
	switch {
	case errors.Is(err, errHelp):
		fmt.Fprint(stdout, usage(table))
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "%v\n", err)
		if errors.Is(err, errUsage) || errors.Is(err, errUnknownBackend) {
			fmt.Fprint(stderr, usage(table))
		}
		return exitUsage
	}
	err = srv.Serve(ctx, b, stdin, stdout, stderr)
	var se signalError
	switch {
	case err == nil:
		return exitOK
	case errors.As(context.Cause(ctx), &se):
		return signalStatus(se.sig)
	}
	return exitFatal
}

// cleanup runs the cleanup mode of backend name with args.
func cleanup(ctx context.Context, name string, args []string, stderr io.Writer, table map[string]backend) int {
	be, ok := table[name]
	switch {
	case !ok:
		fmt.Fprintf(stderr, "%v %q\n", errUnknownBackend, name)
		fmt.Fprint(stderr, usage(table))
		return exitUsage
	case be.cleanup == nil:
		fmt.Fprintf(stderr, "%v: backend %q has no %s mode\n", errUsage, name, cleanupArg)
		return exitUsage
	}
	if err := be.cleanup(ctx, args); err != nil {
		fmt.Fprintf(stderr, "%s: %s %s: %v\n", prog, name, cleanupArg, err)
		return exitFatal
	}
	return exitOK
}

func setup(args []string, getenv func(string) string, table map[string]backend) (testbed.Backend, *virt.Server, error) {
	if len(args) == 0 {
		return nil, nil, fmt.Errorf("%w: no backend given", errUsage)
	}
	switch name := args[0]; {
	case name == "-h" || name == "--help" || name == "help":
		return nil, nil, errHelp
	case strings.HasPrefix(name, "-"):
		return nil, nil, fmt.Errorf("%w: unknown option %q before the backend", errUsage, name)
	}
	be, ok := table[args[0]]
	if !ok {
		return nil, nil, fmt.Errorf("%w %q", errUnknownBackend, args[0])
	}
	srv := &virt.Server{Prog: prog}
	if s := getenv("AUTOPKGTEST_VIRT_COPY_TIMEOUT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, nil, fmt.Errorf("%w: AUTOPKGTEST_VIRT_COPY_TIMEOUT=%q is not a positive number of seconds", errUsage, s)
		}
		srv.CopyTimeout = time.Duration(n) * time.Second
	}
	b, err := be.open(args[1:])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s: %w", prog, args[0], err)
	}
	return b, srv, nil
}

func usage(table map[string]backend) string {
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprintf(`Usage: %[1]s BACKEND [BACKEND OPTIONS]
       %[1]s BACKEND %[3]s [BACKEND OPTIONS]

sparegrid's autopkgtest virtualisation server. autopkgtest runs it as
  autopkgtest [options] PACKAGE -- sparegrid BACKEND [BACKEND OPTIONS]
and talks to it on stdin and stdout.

With %[3]s it only removes the testbeds that crashed servers of BACKEND
left behind, and exits. overlay takes --workdir there; xenlvm the options
it is served with.

Backends: %[2]s

The environment variable AUTOPKGTEST_VIRT_COPY_TIMEOUT (seconds, set by
autopkgtest) bounds each copy into or out of the testbed.
`, prog, strings.Join(names, ", "), cleanupArg)
}

func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return exitFatal
}
