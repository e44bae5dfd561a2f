package main

import (
	"errors"
	"fmt"
	"os"

	kservice "github.com/kardianos/service"
	"github.com/spf13/cobra"

	agentservice "github.com/sparegrid/sparegrid/agent/service"
)

// errNotRoot means a service action that changes the system was run by a
// user other than root.
var errNotRoot = errors.New("must run as root (try sudo)")

// errNoUser means the service's system user does not exist.
var errNoUser = errors.New("no system user " + agentservice.User + ": create it with \"adduser --system --group --home " + agentservice.DefaultStateDir + " " + agentservice.User + "\"")

func (c *cli) serviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install and control the agent as a system service",
		Long: `Service installs the agent as the systemd service ` + agentservice.Name + `, which
runs "` + agentservice.DefaultExecutable + ` run --state DIR" as the user ` + agentservice.User + `, and
starts, stops and reports on it. Every action but status needs root.`,
	}
	var dir string
	var thisExe bool
	install := &cobra.Command{
		Use:   "install",
		Short: "Install and enable the service (does not start it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.requireRoot(); err != nil {
				return err
			}
			if err := c.lookupUser(agentservice.User); err != nil {
				return fmt.Errorf("%w (%w)", errNoUser, err)
			}
			o := agentservice.Options{StateDir: dir}
			if thisExe {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				o.Executable = exe
			}
			if err := c.control(o, "install"); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "installed %s; start it with \"%s service start\"\n", agentservice.Name, binary)
			return nil
		},
	}
	install.Flags().StringVar(&dir, "state", agentservice.DefaultStateDir, "state directory the service runs with")
	install.Flags().BoolVar(&thisExe, "this-executable", false, "run this program instead of "+agentservice.DefaultExecutable)
	cmd.AddCommand(install)
	for _, a := range []struct{ action, short string }{
		{"uninstall", "Disable and remove the service"},
		{"start", "Start the service"},
		{"stop", "Stop the service: it drains, see \"run --help\""},
		{"restart", "Stop and start the service"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   a.action,
			Short: a.short,
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				if err := c.requireRoot(); err != nil {
					return err
				}
				return c.control(agentservice.Options{}, a.action)
			},
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Print running, stopped or not installed",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := c.service(agentservice.Options{})
			if err != nil {
				return err
			}
			st, err := agentservice.Status(s)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, st)
			return nil
		},
	})
	return cmd
}

func (c *cli) requireRoot() error {
	if c.geteuid() != 0 {
		return errNotRoot
	}
	return nil
}

func (c *cli) service(o agentservice.Options) (kservice.Service, error) {
	conf, err := agentservice.Config(o)
	if err != nil {
		return nil, err
	}
	return c.newService(conf)
}

func (c *cli) control(o agentservice.Options, action string) error {
	s, err := c.service(o)
	if err != nil {
		return err
	}
	return agentservice.Control(s, action)
}
