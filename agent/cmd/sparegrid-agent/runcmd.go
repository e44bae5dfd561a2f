package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/agent/link"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/agent/worker"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
)

func (c *cli) runCmd() *cobra.Command {
	var dir string
	var once bool
	cmd := &cobra.Command{
		Use:   "run --state DIR",
		Short: "Lease and run tests until stopped",
		Long: `Run connects to the coordinator the agent was registered with and runs
leased tests one at a time. The first SIGINT or SIGTERM stops leasing and
lets a running test finish and be reported; the second cancels the running
test (it is still reported, as a temporary failure); the third exits at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireState(dir); err != nil {
				return err
			}
			return c.runAgent(cmd.Context(), dir, once)
		},
	}
	c.stateFlag(cmd, &dir)
	cmd.Flags().BoolVar(&once, "once", false, "exit after one job")
	return cmd
}

func (c *cli) runAgent(ctx context.Context, dir string, once bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := state.Load(dir)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.stderr, nil)).With("agent", st.Agent.AgentID)
	caps, err := worker.DetectCapabilities(ctx, dir)
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
		VirtServer:   virtServer(),
	}
	stop := c.handleSignals(log, w, cancel)
	defer stop()
	log.Info("starting", "coordinator", st.Agent.Coordinator, "arch", caps.Arch, "releases", caps.Releases,
		"autopkgtest", caps.AutopkgtestVersion, "backend", caps.Backend)
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
