package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/agent/link"
)

func (c *cli) registerCmd() *cobra.Command {
	var opts link.RegisterOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "register --coordinator HOST:PORT --ca-sha256 HEX --owner NAME --state DIR",
		Short: "Register this machine with a coordinator",
		Long: `Register creates the agent's key, connects to the coordinator trusting only
the CA with the given fingerprint, and enrols the agent under its owner's
account. It prints the new agent's id on stdout, and on stderr the claim
code the owner confirms before an admin approves the agent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireState(opts.StateDir); err != nil {
				return err
			}
			if opts.Name == "" {
				host, err := os.Hostname()
				if err != nil {
					return fmt.Errorf("no --name given and no host name: %w", err)
				}
				opts.Name = host
			}
			reply, err := link.Register(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(reply); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(c.stdout, reply.AgentID)
			}
			fmt.Fprintf(c.stderr, "claim code: %s\n", reply.ClaimCode)
			if reply.State == "approved" {
				fmt.Fprintf(c.stderr, "agent %d is approved already (demo coordinator): start it with\n  sparegrid-agent run --state %s\n", reply.AgentID, opts.StateDir)
				return nil
			}
			fmt.Fprintf(c.stderr, `agent %d is %s. Next:
  1. %s, while logged in, confirms it:  sparegrid agents claim %s
  2. a grid admin approves it:            sparegrid agents approve %d
  3. then start it:                        sparegrid-agent run --state %s
`, reply.AgentID, reply.State, opts.Owner, reply.ClaimCode, reply.AgentID, opts.StateDir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Coordinator, "coordinator", "", "coordinator agent gateway, HOST:PORT")
	f.StringVar(&opts.CASHA256, "ca-sha256", "", "SHA-256 fingerprint of the grid CA, as the grid's admins publish it")
	f.StringVar(&opts.Owner, "owner", "", "account that owns this agent")
	f.StringVar(&opts.Name, "name", "", "machine name (default: the host name)")
	f.BoolVar(&asJSON, "json", false, "print {agent_id, claim_code, state} as JSON")
	c.stateFlag(cmd, &opts.StateDir)
	for _, name := range []string{"coordinator", "ca-sha256", "owner"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}
