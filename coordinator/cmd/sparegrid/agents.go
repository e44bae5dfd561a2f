package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

func (a *app) agentsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List, claim, approve and reject agents",
	}
	cmd.AddCommand(
		a.agentsListCommand(),
		a.agentsShowCommand(),
		a.agentsClaimCommand(),
		a.agentsDecideCommand("approve", "Approve an agent so it may take jobs (admin)", (*client.Client).ApproveAgent),
		a.agentsDecideCommand("reject", "Reject an agent (admin)", (*client.Client).RejectAgent),
	)
	return cmd
}

func (a *app) agentsListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(false)
			if err != nil {
				return err
			}
			agents, err := c.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if agents == nil {
					agents = []client.Agent{}
				}
				return writeJSON(a.stdout, agents)
			}
			now := a.now()
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ID\tNAME\tOWNER\tSTATE\tLAST-SEEN\tPAUSED")
			for _, ag := range agents {
				row(tw, strconv.FormatInt(ag.ID, 10), ag.Name, ag.Owner, ag.State, agoOrNever(now, ag.LastSeen), pausedNote(now, ag))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the agents as JSON")
	return cmd
}

func (a *app) agentsShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one agent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("agent", args[0])
			if err != nil {
				return err
			}
			c, err := a.client(false)
			if err != nil {
				return err
			}
			ag, err := c.Agent(cmd.Context(), id)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, ag)
			}
			now := a.now()
			tw := newTable(a.stdout)
			row(tw, "id", strconv.FormatInt(ag.ID, 10))
			row(tw, "name", ag.Name)
			row(tw, "owner", ag.Owner)
			row(tw, "state", ag.State)
			row(tw, "claimed", strconv.FormatBool(ag.Claimed))
			if ag.AutoApproved {
				row(tw, "auto-approved", "true")
			}
			row(tw, "decided", decided(ag))
			row(tw, "labels", strings.Join(ag.Labels, ", "))
			cp, err := ag.ParseCapabilities()
			if err != nil {
				return err
			}
			if cp != nil {
				row(tw, "arch", cp.Arch)
				row(tw, "releases", strings.Join(cp.Releases, ", "))
				row(tw, "backend", cp.Backend)
				row(tw, "autopkgtest", cp.AutopkgtestVersion)
				row(tw, "agent version", cp.AgentVersion)
			}
			row(tw, "key", ag.KeyID)
			row(tw, "public key", base64.StdEncoding.EncodeToString(ag.PublicKey))
			row(tw, "created", stamp(now, &ag.CreatedAt))
			row(tw, "last seen", agoOrNever(now, ag.LastSeen))
			if ag.Paused != "" {
				row(tw, "paused", pausedNote(now, ag))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the agent as JSON")
	return cmd
}

// pausedNote says why and since when the agent paused itself, or nothing.
func pausedNote(now time.Time, ag client.Agent) string {
	if ag.Paused == "" {
		return ""
	}
	if ag.PausedAt == nil {
		return ag.Paused
	}
	return ag.Paused + " (paused " + ago(now, *ag.PausedAt) + ")"
}

func decided(ag client.Agent) string {
	if ag.DecidedBy == "" {
		return ""
	}
	s := "by ~" + ag.DecidedBy
	if ag.DecidedAt != nil {
		s += " at " + ag.DecidedAt.Local().Format("2006-01-02 15:04:05")
	}
	return s
}

func (a *app) agentsClaimCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "claim CODE",
		Short: "Claim an agent you own with the code it showed at registration",
		Long: `Claim an agent with the short code that "sparegrid-agent register" showed.
Only the account the agent was registered for may claim it; an admin then
approves it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ag, err := c.ClaimAgent(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			next := "state " + clean(ag.State)
			if ag.State == client.AgentPending {
				next = "it now waits for an admin's approval"
			}
			fmt.Fprintf(a.stderr, "claimed agent %d (%s); %s\n", ag.ID, clean(ag.Name), next)
			return nil
		},
	}
}

func (a *app) agentsDecideCommand(verb, short string, decide func(*client.Client, context.Context, int64) (client.Agent, error)) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("agent", args[0])
			if err != nil {
				return err
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ag, err := decide(c, cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "agent %d (%s, owner ~%s) is now %s\n", ag.ID, clean(ag.Name), clean(ag.Owner), clean(ag.State))
			return nil
		},
	}
}
