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
		Short: "List, claim, approve, reject and label agents",
	}
	cmd.AddCommand(
		a.agentsListCommand(),
		a.agentsShowCommand(),
		a.agentsClaimCommand(),
		a.agentsDecideCommand("approve", "Approve an agent so it may take jobs (admin)", (*client.Client).ApproveAgent),
		a.agentsDecideCommand("reject", "Reject an agent (admin)", (*client.Client).RejectAgent),
		a.agentsLabelCommand(),
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
			row(tw, "admin labels", strings.Join(ag.Labels, " "))
			row(tw, "routing sees", effectiveLine(ag))
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

func (a *app) agentsLabelCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "label ID [LABEL...]",
		Short: "Set the labels that override what an agent claims (admin)",
		Long: `Set an agent's admin labels, replacing those it had; with no LABEL, clear
them. Routing applies them over what the agent advertises, so they describe
what an agent cannot say about itself, or says wrongly:

  isolation=none|container|machine   how far a testbed is kept from its host
  reboot=yes|no                      whether a test may reboot the testbed
  internet=yes|no                    whether a test may reach beyond the archive
  root=yes|no                        whether tests get root on the testbed
  revert-full-system=yes|no          whether a revert undoes all a test did
  memory-mb=N, disk-mb=N             what one testbed may use
  NAME                               adds the label NAME, which requests can ask for
  -NAME                              removes the label NAME the agent claims

A NAME is 1 to 64 characters from a-z, 0-9 and "._:-", starting with a
letter or digit. An agent has at most 32 labels, and two that contradict
each other (isolation=none and isolation=machine, gpu and -gpu) are refused.
Put labels that start with "-" after "--", so they are not read as flags.

"sparegrid agents show ID" prints the labels and what routing believes.`,
		Example: `  sparegrid agents label 7 isolation=machine reboot=yes gpu
  sparegrid agents label 7 -- -big
  sparegrid agents label 7`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("agent", args[0])
			if err != nil {
				return err
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			ag, err := c.SetAgentLabels(cmd.Context(), id, args[1:])
			if err != nil {
				return err
			}
			labels := "no admin labels"
			if len(ag.Labels) > 0 {
				labels = "admin labels " + strings.Join(ag.Labels, " ")
			}
			fmt.Fprintf(a.stderr, "agent %d (%s) now has %s\nrouting sees: %s\n", ag.ID, clean(ag.Name), clean(labels), clean(effectiveLine(ag)))
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w; put labels that start with \"-\" after \"--\": sparegrid agents label ID -- -NAME", err)
	})
	return cmd
}

// effectiveLine describes what routing believes an agent's testbeds can
// do, in the words of admin labels.
func effectiveLine(ag client.Agent) string {
	c := ag.Effective
	if c == nil {
		return "nothing until the agent advertises its capabilities"
	}
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	words := []string{
		c.Arch + " " + c.Backend + ":",
		"isolation=" + c.Isolation,
		"root=" + yesNo(c.Root),
		"revert-full-system=" + yesNo(c.RevertFullSystem),
		"reboot=" + yesNo(c.Reboot),
		"internet=" + yesNo(c.Internet),
	}
	if c.MemoryMB > 0 {
		words = append(words, "memory-mb="+strconv.FormatInt(c.MemoryMB, 10))
	}
	if c.DiskMB > 0 {
		words = append(words, "disk-mb="+strconv.FormatInt(c.DiskMB, 10))
	}
	line := strings.Join(words, " ")
	if len(c.Labels) > 0 {
		line += "; labels " + strings.Join(c.Labels, " ")
	}
	return line
}
