package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

func (a *app) verdictsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verdicts PACKAGE[/VERSION]",
		Short: "Show a package's verdicts: PASS, REGRESSION, ALWAYSFAIL, NEUTRAL, RUNNING or PENDING",
		Long: `Show one verdict per version, trigger set, release and architecture of a
package, in britney's words, with the reason. A failure is judged against the
package's latest run without triggers (its baseline); a would-be REGRESSION
stays RUNNING until a run on another agent confirms it.

The exit status is 0 whatever the verdicts say.`,
		Example: `  sparegrid verdicts hello
  sparegrid verdicts hello/2.10-3 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkg, version, err := parsePackageVersion(args[0])
			if err != nil {
				return err
			}
			c, err := a.client(false)
			if err != nil {
				return err
			}
			l, err := c.Verdicts(cmd.Context(), pkg, version)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, l)
			}
			if len(l.Verdicts) == 0 {
				fmt.Fprintf(a.stderr, "no verdicts for %s: no test with triggers has run or been queued\n", clean(args[0]))
				return nil
			}
			return verdictTable(a.stdout, l.Verdicts)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the coordinator's answer as JSON")
	return cmd
}

// parsePackageVersion splits PACKAGE[/VERSION].
func parsePackageVersion(s string) (pkg, version string, err error) {
	pkg, version, slash := strings.Cut(s, "/")
	if pkg == "" || (slash && version == "") {
		return "", "", fmt.Errorf("%q: want PACKAGE or PACKAGE/VERSION, such as hello/2.10-3", s)
	}
	return pkg, version, nil
}

func verdictTable(w io.Writer, vs []client.Verdict) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "STATUS\tPACKAGE\tVERSION\tTRIGGERS\tRELEASE/ARCH\tREASON")
	for _, v := range vs {
		row(tw, v.Status, v.Package, v.Version, strings.Join(v.Triggers, " "), v.Release+"/"+v.Arch, v.Reason)
	}
	return tw.Flush()
}

func (a *app) scheduleCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Show what the coordinator's selection policy did last, and the package waiting longest",
		Long: `Show the coordinator's latest scheduling decision (after an archive
change or a sweep) and its latest sweep: how many requests the policy made,
how many became jobs, how many reused an earlier result or were blocked,
and the testable package whose latest result is the oldest, with its age.
That age is the grid's starvation measure: the sweep tests every package
once before any twice.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(false)
			if err != nil {
				return err
			}
			s, err := c.Schedule(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, s)
			}
			if !s.Running {
				fmt.Fprintln(a.stdout, "the coordinator runs no selection policy (serve --config with an [[archive]] starts it)")
				return nil
			}
			now := a.now()
			tw := newTable(a.stdout)
			every := "off"
			if s.SweepEverySeconds > 0 {
				every = "every " + (time.Duration(s.SweepEverySeconds) * time.Second).String()
			}
			row(tw, "sweep", every)
			for _, d := range []struct {
				name string
				d    *client.ScheduleDecision
			}{{"last decision", s.Last}, {"last sweep", s.LastSweep}} {
				if d.d == nil {
					row(tw, d.name, "none yet")
					continue
				}
				row(tw, d.name, fmt.Sprintf("%s: %d requests, %d jobs, %d reused, %d blocked",
					stamp(now, &d.d.At), d.d.Requests, d.d.Jobs, d.d.Reused, d.d.Blocked))
			}
			if s.LastSweep != nil && s.LastSweep.OldestResult != nil {
				o := s.LastSweep.OldestResult
				age := "never tested"
				if o.LastResult != nil {
					age = "last result " + (time.Duration(s.LastSweep.OldestResultAgeSeconds) * time.Second).String() + " old"
				}
				row(tw, "oldest result", fmt.Sprintf("%s on %s/%s, %s", o.Package, o.Release, o.Arch, age))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the coordinator's answer as JSON")
	return cmd
}
