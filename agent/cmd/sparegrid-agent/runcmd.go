package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/agent/link"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/agent/worker"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
)

func (c *cli) runCmd() *cobra.Command {
	var dir, virtServerPath, backendFlag string
	var once, virtSudo bool
	cmd := &cobra.Command{
		Use:   "run --state DIR",
		Short: "Lease and run tests until stopped",
		Long: `Run connects to the coordinator the agent was registered with and runs
leased tests one at a time. The first SIGINT or SIGTERM stops leasing and
lets a running test finish and be reported; the second cancels the running
test (it is still reported, as a temporary failure); the third exits at once.

With --virt-sudo (the default when the agent is not root) the overlay virt
server runs as root through "sudo -n", as the shipped sudoers rule allows;
that rule names /usr/bin/autopkgtest-virt-sparegrid, so the virt server
must be installed there unless a site edits the rule.

--backend picks the testbed backend: overlay, xenlvm or unshare, or several
separated by commas, most preferred first. For each release the agent uses
the image of the first backend that has one ("testbed list" shows them);
releases with images only of other backends are not offered. The default
is overlay,xenlvm,unshare. xenlvm testbeds bring their own --sudo among
the arguments they were registered with, so --virt-sudo does not apply.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireState(dir); err != nil {
				return err
			}
			if !cmd.Flags().Changed("virt-sudo") {
				var err error
				if virtSudo, err = virtSudoDefault(c.getenv, os.Geteuid()); err != nil {
					return err
				}
			}
			if virtServerPath != "" && !filepath.IsAbs(virtServerPath) {
				return fmt.Errorf("%w: %q", errVirtServer, virtServerPath)
			}
			if !cmd.Flags().Changed("backend") {
				backendFlag = c.getenv(envBackend)
			}
			backends, err := worker.ParseBackends(backendFlag)
			if err != nil {
				return err
			}
			return c.runAgent(cmd.Context(), dir, once, virtSudo, virtServerPath, backends)
		},
	}
	c.stateFlag(cmd, &dir)
	cmd.Flags().BoolVar(&once, "once", false, "exit after one job")
	cmd.Flags().BoolVar(&virtSudo, "virt-sudo", false, "run the overlay virt server through \"sudo -n\" (env "+envVirtSudo+"; default: on unless the agent runs as root)")
	cmd.Flags().StringVar(&backendFlag, "backend", "", "testbed backends to use, most preferred first: overlay, xenlvm, unshare (env "+envBackend+"; default overlay,xenlvm,unshare)")
	cmd.Flags().StringVar(&virtServerPath, "virt-server", "", "absolute path of autopkgtest-virt-sparegrid (default: the one beside this program, else "+installedVirtServer+" with --virt-sudo, else the one on PATH)")
	return cmd
}

// envBackend names the environment variable that sets --backend.
const envBackend = "SPAREGRID_BACKEND"

// errVirtServer means --virt-server is not an absolute path.
var errVirtServer = errors.New("--virt-server is not an absolute path")

// envVirtSudo names the environment variable that sets --virt-sudo.
const envVirtSudo = "SPAREGRID_VIRT_SUDO"

// errVirtSudo means SPAREGRID_VIRT_SUDO is not a boolean.
var errVirtSudo = errors.New(envVirtSudo + " is not a boolean")

// virtSudoDefault is --virt-sudo when the flag is not given: the value of
// SPAREGRID_VIRT_SUDO, otherwise whether the agent runs as a user other
// than root.
func virtSudoDefault(getenv func(string) string, euid int) (bool, error) {
	s := getenv(envVirtSudo)
	if s == "" {
		return euid != 0, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%w: %q", errVirtSudo, s)
	}
	return v, nil
}

// installedVirtServer is where the shipped sudoers rule expects the virt
// server.
const installedVirtServer = "/usr/bin/autopkgtest-virt-sparegrid"

// sudoCommand returns the command line that runs the virt server as
// root: sudo from PATH, or /usr/bin/sudo, with -n so that it fails
// instead of asking for a password.
func sudoCommand() []string {
	p, err := exec.LookPath("sudo")
	if err != nil || !filepath.IsAbs(p) {
		p = "/usr/bin/sudo"
	}
	return []string{p, "-n"}
}

func (c *cli) runAgent(ctx context.Context, dir string, once, virtSudo bool, virtServerPath string, backends []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := state.Load(dir)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.stderr, nil)).With("agent", st.Agent.AgentID)
	caps, err := worker.DetectCapabilities(ctx, dir, backends)
	if err != nil {
		return err
	}
	serverName, err := link.ServerName(st.Agent.Coordinator)
	if err != nil {
		return err
	}
	tlsConf, err := tlsutil.ClientConfigWithCA(st.CAPEM, serverName)
	if err != nil {
		return fmt.Errorf("pinned CA in %s: %w", dir, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &worker.Worker{
		Dial: func(ctx context.Context) (worker.Conn, error) {
			return link.Dial(ctx, st.Agent.Coordinator, tlsConf)
		},
		Tokens:       link.NewTokens(st.Agent.AgentID, st.Key, nil),
		StateDir:     dir,
		Key:          st.Key,
		AgentID:      st.Agent.AgentID,
		Capabilities: caps,
		Log:          log,
		Once:         once,
		Backends:     backends,
		VirtServer:   virtServer(),
	}
	if virtServerPath != "" {
		w.VirtServer = virtServerPath
	}
	if virtSudo {
		w.Sudo = sudoCommand()
		if w.VirtServer == "" {
			w.VirtServer = installedVirtServer
		}
	}
	stop := c.handleSignals(log, w, cancel)
	defer stop()
	log.Info("starting", "coordinator", st.Agent.Coordinator, "arch", caps.Arch, "releases", caps.Releases,
		"autopkgtest", caps.AutopkgtestVersion, "backend", caps.Backend, "uid", os.Geteuid(), "virt_sudo", w.Sudo)
	return w.Run(ctx)
}

// handleSignals stops the agent in stages: the first signal drains, the
// second cancels the running job, the third exits at once.
func (c *cli) handleSignals(log *slog.Logger, w *worker.Worker, cancel context.CancelFunc) (stop func()) {
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case sig := <-sigs:
				switch n {
				case 1:
					log.Info("stopping: no new jobs; a running job finishes first (signal again to cancel it)", "signal", sig.String())
					w.Drain()
				case 2:
					log.Warn("cancelling the running job (signal again to exit at once)", "signal", sig.String())
					cancel()
				default:
					log.Error("exiting at once", "signal", sig.String())
					os.Exit(130)
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// virtServer returns the autopkgtest-virt-sparegrid installed beside this
// binary, so an agent run from a build directory uses the virt server of
// the same build; otherwise autopkgtest finds it on PATH.
func virtServer() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), "autopkgtest-virt-sparegrid")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p
	}
	return ""
}
