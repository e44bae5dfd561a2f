package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

func (a *app) blocklistCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "blocklist",
		Short: "List, add and remove blocklist rules (admins change them)",
		Long: `Blocklist rules keep a source package, or one of its tests, off the grid.

A rule matches jobs by a shell glob over the source package name and,
when given, an exact version, release and architecture. Without --test it
blocks whole jobs: a submission it covers is refused unless it is forced
(sparegrid submit --force). With --test it skips that one test. --agent or
--label limits a rule to one agent, or to agents with that label; such a
rule applies when an agent takes the job, not at submission. A rule with
--expires stops applying then; "list --all" still shows it.`,
	}
	cmd.AddCommand(a.blocklistAddCommand(), a.blocklistListCommand(), a.blocklistRemoveCommand())
	return cmd
}

type blockOptions struct {
	req     client.BlockRuleRequest
	agent   int64
	expires string
}

func (a *app) blocklistAddCommand() *cobra.Command {
	var o blockOptions
	cmd := &cobra.Command{
		Use:   "add --package GLOB --reason TEXT",
		Short: "Add a blocklist rule (admin)",
		Long: `Add a blocklist rule. The new rule's id is printed alone on standard output.

--expires takes an RFC 3339 time (2026-12-01T00:00:00Z) or a duration from
now (72h, 90m).`,
		Example: `  sparegrid blocklist add --package 'linux-*' --arch arm64 --reason "hangs the testbed" --expires 72h
  sparegrid blocklist add --package hello --test smoke --label slow-disk --reason "times out on slow disks"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("agent") {
				if o.agent <= 0 {
					return fmt.Errorf("--agent %d: want a positive agent id", o.agent)
				}
				o.req.Agent = &o.agent
			}
			if o.expires != "" {
				t, err := parseExpiry(a.now(), o.expires)
				if err != nil {
					return err
				}
				o.req.Expires = &t
			}
			if strings.TrimSpace(o.req.Reason) == "" {
				return errors.New("--reason must say why, for everyone the rule stops")
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			r, err := c.AddBlockRule(cmd.Context(), o.req)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, r.ID)
			fmt.Fprintf(a.stderr, "added %s\n", clean(r.Explanation))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.req.Package, "package", "", "source package name or shell glob, such as 'linux-*'")
	f.StringVar(&o.req.Version, "version", "", "only this exact version")
	f.StringVar(&o.req.Release, "release", "", "only on this release")
	f.StringVar(&o.req.Arch, "arch", "", "only on this architecture")
	f.StringVar(&o.req.Test, "test", "", "skip only this test instead of blocking the whole job")
	f.Int64Var(&o.agent, "agent", 0, "only on the agent with this id")
	f.StringVar(&o.req.Label, "label", "", "only on agents with this label")
	f.StringVar(&o.req.Reason, "reason", "", "why; shown with everything the rule blocks or skips")
	f.StringVar(&o.expires, "expires", "", "when the rule stops applying: RFC 3339 time or duration from now (default: never)")
	cmd.MarkFlagRequired("package")
	cmd.MarkFlagRequired("reason")
	cmd.MarkFlagsMutuallyExclusive("agent", "label")
	return cmd
}

// parseExpiry reads --expires: an RFC 3339 time, or a positive duration
// from now.
func parseExpiry(now time.Time, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--expires %q: want an RFC 3339 time such as 2026-12-01T00:00:00Z or a duration such as 72h", s)
	}
	if d <= 0 {
		return time.Time{}, fmt.Errorf("--expires %q: the duration must be positive", s)
	}
	return now.Add(d).UTC().Truncate(time.Second), nil
}

func (a *app) blocklistListCommand() *cobra.Command {
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the active blocklist rules, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(false)
			if err != nil {
				return err
			}
			rules, err := c.BlockRules(cmd.Context(), all)
			if err != nil {
				return err
			}
			if asJSON {
				if rules == nil {
					rules = []client.BlockRule{}
				}
				return writeJSON(a.stdout, rules)
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ID\tPACKAGE\tVERSION\tRELEASE\tARCH\tTEST\tSCOPE\tEXPIRES\tREASON")
			for _, r := range rules {
				row(tw, strconv.FormatInt(r.ID, 10), r.Package, r.Version, r.Release, r.Arch, r.Test,
					ruleScope(r), ruleExpiry(r), r.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rules as JSON")
	cmd.Flags().BoolVar(&all, "all", false, "include expired rules")
	return cmd
}

// ruleScope names the agents a rule applies on.
func ruleScope(r client.BlockRule) string {
	switch {
	case r.Agent != nil:
		return "agent " + strconv.FormatInt(*r.Agent, 10)
	case r.Label != "":
		return "label " + r.Label
	}
	return "all agents"
}

func ruleExpiry(r client.BlockRule) string {
	switch {
	case r.ExpiresAt == nil:
		return "never"
	case r.Expired:
		return "expired " + r.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	return r.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
}

func (a *app) blocklistRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a blocklist rule (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("rule", args[0])
			if err != nil {
				return err
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			if err := c.RemoveBlockRule(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "removed blocklist rule %d\n", id)
			return nil
		},
	}
}
