package main

import (
	"errors"
	"io"

	"github.com/spf13/cobra"

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
}

func newRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:           binary,
		Short:         "Run sparegrid package tests on this machine",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(version.String(binary) + "\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(c.registerCmd(), c.testbedCmd(), c.runCmd())
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
