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
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/agent/link"
	"github.com/sparegrid/sparegrid/agent/recovery"
	agentservice "github.com/sparegrid/sparegrid/agent/service"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/agent/worker"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
)

func (c *cli) runCmd() *cobra.Command {
	var dir, backendFlag string
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run --state DIR",
		Short: "Lease and run tests until stopped",
		Long: `Run connects to the coordinator the agent was registered with and runs
leased tests one at a time. The first SIGINT or SIGTERM stops leasing and
lets a running test finish and be reported; the second, or the end of the
--drain-grace (default 10m; 0 for no limit), cancels the running test (it
is still reported, as a temporary failure); the next signal exits at once.

With --virt-sudo (the default when the agent is not root) the overlay virt
server runs as root through "sudo -n", as the shipped sudoers rule allows;
that rule names /usr/bin/autopkgtest-virt-sparegrid, so the virt server
must be installed there unless a site edits the rule.

--backend picks the testbed backend: overlay, xenlvm or unshare, or several
separated by commas, most preferred first. For each release the agent uses
the image of the first backend that has one ("testbed list" shows them);
releases with images only of other backends are not offered. The default
is overlay,xenlvm,unshare. xenlvm testbeds bring their own --sudo among
the arguments they were registered with, so --virt-sudo does not apply.

The agent tells the coordinator what its testbeds can do: the backend's
isolation, root, full revert and reboot, whether tests may reach the
internet (not with --no-internet), the machine's memory, the disk space
free in the state directory, and the labels given with --label (such as
"gpu"; repeat the flag for more). Admins' labels for the agent override
all of it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireState(dir); err != nil {
				return err
			}
			if !cmd.Flags().Changed("virt-sudo") {
				var err error
				if o.virtSudo, err = virtSudoDefault(c.getenv, os.Geteuid()); err != nil {
					return err
				}
			}
			if o.virtServer != "" && !filepath.IsAbs(o.virtServer) {
				return fmt.Errorf("%w: %q", errVirtServer, o.virtServer)
			}
			if !cmd.Flags().Changed("transport") {
				if v := c.getenv(envTransport); v != "" {
					o.transport = v
				}
			}
			switch o.transport {
			case link.TransportAuto, link.TransportQUIC, link.TransportTCP:
			default:
				return fmt.Errorf("%w: --transport %q: use auto, quic or tcp", link.ErrBadTransport, o.transport)
			}
			if !cmd.Flags().Changed("backend") {
				backendFlag = c.getenv(envBackend)
			}
			var err error
			if o.backends, err = worker.ParseBackends(backendFlag); err != nil {
				return err
			}
			if !cmd.Flags().Changed("drain-grace") {
				if o.grace, err = drainGraceDefault(c.getenv); err != nil {
					return err
				}
			}
			if o.grace < 0 {
				return fmt.Errorf("%w: %v", errDrainGrace, o.grace)
			}
			if o.pauseFor <= 0 {
				return fmt.Errorf("%w: --pause-for %v", errPauseFor, o.pauseFor)
			}
			if o.maxInfraFailures == 0 || o.minFreeMiB == 0 {
				return errZeroPause
			}
			if !cmd.Flags().Changed("label") {
				o.labels = splitLabels(c.getenv(envLabels))
			}
			if o.labels, err = worker.ParseLabels(o.labels); err != nil {
				return err
			}
			if !cmd.Flags().Changed("no-internet") {
				if o.noInternet, err = noInternetDefault(c.getenv); err != nil {
					return err
				}
			}
			return c.runAgent(cmd.Context(), dir, o)
		},
	}
	c.stateFlag(cmd, &dir)
	cmd.Flags().BoolVar(&o.once, "once", false, "exit after one job")
	cmd.Flags().StringVar(&o.transport, "transport", link.TransportAuto, "how to reach the coordinator: auto (QUIC, falling back to TCP when UDP looks blocked), quic or tcp (env "+envTransport+")")
	cmd.Flags().BoolVar(&o.virtSudo, "virt-sudo", false, "run the overlay virt server through \"sudo -n\" (env "+envVirtSudo+"; default: on unless the agent runs as root)")
	cmd.Flags().StringVar(&backendFlag, "backend", "", "testbed backends to use, most preferred first: overlay, xenlvm, unshare (env "+envBackend+"; default overlay,xenlvm,unshare)")
	cmd.Flags().DurationVar(&o.grace, "drain-grace", agentservice.DefaultDrainGrace, "after the first signal, how long a running test may take before it is cancelled; 0 for no limit (env "+envDrainGrace+")")
	cmd.Flags().IntVar(&o.maxInfraFailures, "max-infra-failures", worker.DefaultMaxInfraFailures, "pause after this many infrastructure failures (tmpfail) in a row; negative never pauses")
	cmd.Flags().DurationVar(&o.pauseFor, "pause-for", worker.DefaultPauseFor, "how long such a pause lasts (a restart ends it too)")
	cmd.Flags().Int64Var(&o.minFreeMiB, "min-free-disk", worker.DefaultMinFreeDisk>>20, "take no work while less than this many MiB are free in the state directory; negative never checks")
	cmd.Flags().StringArrayVar(&o.labels, "label", nil, "a name for this machine that test requests can ask for, such as gpu; repeat for more (env "+envLabels+", comma-separated)")
	cmd.Flags().BoolVar(&o.noInternet, "no-internet", false, "tests must not reach the internet from this machine; tests that need it go to other agents (env "+envNoInternet+")")
	cmd.Flags().StringVar(&o.virtServer, "virt-server", "", "absolute path of autopkgtest-virt-sparegrid (default: the one beside this program, else "+installedVirtServer+" with --virt-sudo, else the one on PATH)")
	return cmd
}

// Errors for the pause settings.
var (
	errPauseFor  = errors.New("the pause must last longer than 0")
	errZeroPause = errors.New("--max-infra-failures and --min-free-disk take a positive number, or a negative one to turn the check off")
)

// Environment variables that set --label and --no-internet.
const (
	envLabels     = "SPAREGRID_LABELS"
	envNoInternet = "SPAREGRID_NO_INTERNET"
)

// errNoInternet means SPAREGRID_NO_INTERNET is not a boolean.
var errNoInternet = errors.New(envNoInternet + " is not a boolean")

// splitLabels reads SPAREGRID_LABELS: labels separated by commas or
// white space.
func splitLabels(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// noInternetDefault is --no-internet when the flag is not given: the
// value of SPAREGRID_NO_INTERNET, otherwise false.
func noInternetDefault(getenv func(string) string) (bool, error) {
	s := getenv(envNoInternet)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%w: %q", errNoInternet, s)
	}
	return v, nil
}

// envBackend names the environment variable that sets --backend.
const envBackend = "SPAREGRID_BACKEND"

// errVirtServer means --virt-server is not an absolute path.
var errVirtServer = errors.New("--virt-server is not an absolute path")

// envDrainGrace names the environment variable that sets --drain-grace.
const envDrainGrace = "SPAREGRID_DRAIN_GRACE"

// errDrainGrace means the drain grace is not a duration of zero or more.
var errDrainGrace = errors.New("drain grace is not a duration of 0 or more")

// drainGraceDefault is --drain-grace when the flag is not given: the value
// of SPAREGRID_DRAIN_GRACE, otherwise agentservice.DefaultDrainGrace.
func drainGraceDefault(getenv func(string) string) (time.Duration, error) {
	s := getenv(envDrainGrace)
	if s == "" {
		return agentservice.DefaultDrainGrace, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: %s=%q", errDrainGrace, envDrainGrace, s)
	}
	return d, nil
}

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

// runOptions are run's settings after flags and environment.
type runOptions struct {
	once, virtSudo bool
	virtServer     string
	backends       []string
	grace          time.Duration
	transport      string
	// Self-pause settings; see worker.Worker.
	maxInfraFailures int
	pauseFor         time.Duration
	minFreeMiB       int64
	// What the agent advertises beyond what it detects.
	labels     []string
	noInternet bool
}

// envTransport sets --transport.
const envTransport = "SPAREGRID_TRANSPORT"

func (c *cli) runAgent(ctx context.Context, dir string, o runOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := state.Load(dir)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.stderr, nil)).With("agent", st.Agent.AgentID)
	virt, sudo := o.virt()
	if err := recoverCrash(ctx, log, dir, o.backends, virt, sudo); err != nil {
		return err
	}
	caps, err := worker.DetectCapabilities(ctx, dir, worker.CapabilityOptions{Backends: o.backends, Labels: o.labels, NoInternet: o.noInternet})
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

	// One dialer for the agent's life, so a fallback to TCP is remembered
	// across reconnections and QUIC is probed again later.
	dialer := link.NewDialer(link.DialOptions{Transport: o.transport, Log: log})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &worker.Worker{
		Dial: func(ctx context.Context) (worker.Conn, error) {
			return dialer.Dial(ctx, st.Agent.Coordinator, tlsConf)
		},
		Tokens:       link.NewTokens(st.Agent.AgentID, st.Key, nil),
		StateDir:     dir,
		Key:          st.Key,
		AgentID:      st.Agent.AgentID,
		Capabilities: caps,
		Log:          log,
		Once:         o.once,
		Backends:     o.backends,
		VirtServer:   virt,
		Sudo:         sudo,

		MaxInfraFailures: o.maxInfraFailures,
		PauseFor:         o.pauseFor,
		MinFreeDisk:      o.minFreeMiB << 20,
	}
	stop := c.handleSignals(log, w, cancel, o.grace)
	defer stop()
	log.Info("starting", "coordinator", st.Agent.Coordinator, "arch", caps.Arch, "releases", caps.Releases,
		"autopkgtest", caps.AutopkgtestVersion, "backend", caps.Backend, "transport", o.transport, "uid", os.Geteuid(), "virt_sudo", w.Sudo,
		"isolation", caps.Isolation, "root", caps.Root, "revert_full_system", caps.RevertFullSystem, "reboot", caps.Reboot,
		"internet", caps.Internet, "labels", caps.Labels, "memory_mb", caps.MemoryMB, "disk_mb", caps.DiskMB)
	return w.Run(ctx)
}

// virt returns the virt server the agent runs and, with --virt-sudo, the
// sudo command line in front of it: --virt-server, else the one beside
// this program, else the installed one with --virt-sudo (the sudoers rule
// names it), else empty for autopkgtest to find on PATH.
func (o runOptions) virt() (server string, sudo []string) {
	server = virtServer()
	if o.virtServer != "" {
		server = o.virtServer
	}
	if o.virtSudo {
		sudo = sudoCommand()
		if server == "" {
			server = installedVirtServer
		}
	}
	return server, sudo
}

// errRecover means the agent could not remove what an earlier run left
// behind when it was killed; it takes no work until that is fixed.
var errRecover = errors.New("cannot clean up after an earlier crash of the agent; not taking work on this machine until this is fixed")

// recoverCrash ends the tests and removes the work directories and
// testbeds that an earlier run of the agent on dir left behind when it was
// killed, before any new work is leased.
func recoverCrash(ctx context.Context, log *slog.Logger, dir string, backends []string, virt string, sudo []string) error {
	rep, err := recovery.Recover(ctx, recovery.Options{StateDir: dir, Backends: backends, VirtServer: virt, Sudo: sudo})
	for _, j := range rep.Jobs {
		if j.Status == recovery.StatusMalformed {
			log.Warn("unreadable run record; nothing signalled", "dir", j.Name, "err", j.Detail)
		}
	}
	if len(rep.Jobs) > 0 {
		log.Info("recovered after a crash", "killed", rep.Killed(), "removed", rep.Removed(), "jobs", rep.JobIDs())
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errRecover, err)
	}
	return nil
}

// handleSignals stops the agent in stages (see stopStages) on SIGINT and
// SIGTERM.
func (c *cli) handleSignals(log *slog.Logger, w *worker.Worker, cancel context.CancelFunc, grace time.Duration) (stop func()) {
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	stages := stopStages{
		grace:  grace,
		after:  time.After,
		drain:  w.Drain,
		cancel: cancel,
		exit:   func() { os.Exit(130) },
		log:    log,
	}
	go stages.run(sigs, done)
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
