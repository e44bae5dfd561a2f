package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

const scopeHelp = `grid (the default), release:NAME, arch:NAME or label:NAME`

func (a *app) gridCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grid",
		Short: "Hold and resume the grid or part of it (admins), and list holds",
		Long: `While a scope is on hold, agents take none of the jobs it covers: they stay
queued and nothing fails. A scope is the whole grid, one release
(release:trixie), one architecture (arch:arm64) or the agents with one
label (label:gpu). A failing health check holds its scope until it passes
again; admins hold and resume scopes by hand. Jobs held longer than the
coordinator's max_hold are ended with verdict error.`,
	}
	cmd.AddCommand(a.gridHoldCommand(), a.gridResumeCommand(), a.gridHoldsCommand())
	return cmd
}

func (a *app) gridHoldCommand() *cobra.Command {
	var scope, reason string
	cmd := &cobra.Command{
		Use:     "hold --reason TEXT [--scope SCOPE]",
		Short:   "Put the grid, or a scope of it, on hold (admin)",
		Example: `  sparegrid grid hold --scope release:trixie --reason "mirror being rebuilt"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return errors.New("--reason must say why, for everyone whose jobs wait")
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			h, err := c.Hold(cmd.Context(), scope, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "%s on hold by %s since %s: %s\n", clean(h.Scope), clean(h.By), utc(h.Since), clean(h.Reason))
			return nil
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "grid", "what to hold: "+scopeHelp)
	cmd.Flags().StringVar(&reason, "reason", "", "why; shown with the hold")
	cmd.MarkFlagRequired("reason")
	return cmd
}

func (a *app) gridResumeCommand() *cobra.Command {
	var scope string
	cmd := &cobra.Command{
		Use:   "resume [--scope SCOPE]",
		Short: "Lift the admins' holds on the grid or a scope (admin)",
		Long: `Lift the admins' holds on a scope. A failing health check's hold stays
until the check passes; resume names such holds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(true)
			if err != nil {
				return err
			}
			r, err := c.Resume(cmd.Context(), scope)
			if err != nil {
				return err
			}
			for _, h := range r.Lifted {
				fmt.Fprintf(a.stderr, "lifted the hold %s set on %s: %s\n", clean(h.By), clean(h.Scope), clean(h.Reason))
			}
			for _, h := range r.Remaining {
				fmt.Fprintf(a.stderr, "%s stays on hold while %s fails: %s\n", clean(h.Scope), clean(strings.TrimPrefix(h.By, "check ")), clean(h.Reason))
			}
			if len(r.Remaining) > 0 {
				return fmt.Errorf("%s is still on hold by failing health checks", clean(scope))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "grid", "what to resume: "+scopeHelp)
	return cmd
}

func (a *app) gridHoldsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "holds",
		Short: "List the holds on the grid, by scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(false)
			if err != nil {
				return err
			}
			holds, err := c.Holds(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if holds == nil {
					holds = []client.Hold{}
				}
				return writeJSON(a.stdout, holds)
			}
			if len(holds) == 0 {
				fmt.Fprintln(a.stderr, "nothing is on hold")
				return nil
			}
			now := a.now()
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "SCOPE\tBY\tSINCE\tFOR\tREASON")
			for _, h := range holds {
				row(tw, h.Scope, h.By, utc(h.Since), span(now.Sub(h.Since)), h.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the holds as JSON")
	return cmd
}

func (a *app) downtimeCommand() *cobra.Command {
	var since string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "downtime [--since T]",
		Short: "Report when each health check failed, for how long, and why",
		Long: `Report the downtime the health checks recorded: every interval a check
failed that was still open or ended after --since, with the scope it held,
when it started and ended, how long it lasted and the check's last error,
then each check's total.

--since takes an RFC 3339 time (2026-11-01T00:00:00Z) or a duration back
from now (48h); the default is the coordinator's (the last 7 days).`,
		Example: `  sparegrid downtime --since 720h
  sparegrid downtime --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var from time.Time
			if since != "" {
				var err error
				if from, err = parseSince(a.now(), since); err != nil {
					return err
				}
			}
			c, err := a.client(false)
			if err != nil {
				return err
			}
			r, err := c.Downtime(cmd.Context(), from)
			if err != nil {
				return err
			}
			if asJSON {
				if r.Intervals == nil {
					r.Intervals = []client.DowntimeInterval{}
				}
				return writeJSON(a.stdout, r)
			}
			if len(r.Intervals) == 0 {
				fmt.Fprintf(a.stderr, "no downtime since %s\n", utc(r.Since))
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "CHECK\tSCOPE\tSTART\tEND\tDOWN\tLAST ERROR")
			type total struct {
				scopes    []string
				down      time.Duration
				intervals int
			}
			var order []string
			totals := map[string]*total{}
			for _, d := range r.Intervals {
				end := "still down"
				if d.End != nil {
					end = utc(*d.End)
				}
				dur := time.Duration(d.DurationSeconds) * time.Second
				row(tw, d.Check, d.Scope, utc(d.Start), end, span(dur), d.LastError)
				t := totals[d.Check]
				if t == nil {
					t = &total{}
					totals[d.Check] = t
					order = append(order, d.Check)
				}
				if len(t.scopes) == 0 || t.scopes[len(t.scopes)-1] != d.Scope {
					t.scopes = append(t.scopes, d.Scope)
				}
				t.down += dur
				t.intervals++
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "\nsince %s:\n", utc(r.Since))
			for _, name := range order {
				t := totals[name]
				fmt.Fprintf(a.stdout, "  %s held %s for %s in %d interval(s)\n", clean(name), clean(strings.Join(t.scopes, ", ")), span(t.down), t.intervals)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "report from this RFC 3339 time or duration back from now (default: the last 7 days)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// parseSince reads --since: an RFC 3339 time, or a positive duration back
// from now.
func parseSince(now time.Time, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time such as 2026-11-01T00:00:00Z or a positive duration such as 48h", s)
	}
	return now.Add(-d).UTC().Truncate(time.Second), nil
}

func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// span writes a duration to the second without zero units: "1h30m", "45s".
func span(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
