package main

import (
	"errors"
	"io"
	"os"
	"os/user"

	kservice "github.com/kardianos/service"
	"github.com/spf13/cobra"

	agentservice "github.com/sparegrid/sparegrid/agent/service"
	"github.com/sparegrid/sparegrid/shared/version"
)

const binary = "sparegrid-agent"

// envState names the environment variable that sets --state.
const envState = "SPAREGRID_STATE"

// errNoState means neither --state nor SPAREGRID_STATE was given.
var errNoState = errors.New("no state directory: pass --state DIR or set " + envState)

// cli carries what every command needs, instead of globals.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	geteuid        func() int
	// newService returns the system service for a configuration; tests
	// replace it with a fake.
	newService func(*kservice.Config) (kservice.Service, error)
	// lookupUser reports whether a system user exists.
	lookupUser func(name string) error
}

func newRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	return (&cli{
		stdout:     stdout,
		stderr:     stderr,
		getenv:     getenv,
		geteuid:    os.Geteuid,
		newService: agentservice.New,
		lookupUser: func(name string) error { _, err := user.Lookup(name); return err },
	}).rootCmd()
}

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           binary,
		Short:         "Run sparegrid package tests on this machine",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(version.String(binary) + "\n")
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.AddCommand(c.registerCmd(), c.testbedCmd(), c.runCmd(), c.serviceCmd())
	return root
}

// stateFlag adds --state, defaulting to $SPAREGRID_STATE.
func (c *cli) stateFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "state", c.getenv(envState), "agent state directory (env "+envState+")")
}

func requireState(dir string) error {
	if dir == "" {
		return errNoState
	}
	return nil
}
