package main

import (
	"fmt"
	"io"
	"strings"

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
