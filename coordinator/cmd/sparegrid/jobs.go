package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

func (a *app) jobsCommand() *cobra.Command {
	var (
		filter client.JobsFilter
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if filter.Limit < 0 {
				return errors.New("--limit must not be negative")
			}
			c, err := a.client(false)
			if err != nil {
				return err
			}
			jobs, err := c.Jobs(cmd.Context(), filter)
			if err != nil {
				return err
			}
			return a.printJobs(jobs, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&filter.Package, "package", "", "only jobs of this source package")
	f.StringVar(&filter.State, "state", "", "only jobs in this state: queued, running, done or cancelled")
	f.IntVar(&filter.Limit, "limit", 0, "at most this many jobs (default: the coordinator's)")
	f.BoolVar(&asJSON, "json", false, "print the jobs as JSON")
	return cmd
}

func (a *app) resultsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "results PACKAGE",
		Short: "List the finished jobs of a package, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(false)
			if err != nil {
				return err
			}
			jobs, err := c.Results(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printJobs(jobs, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the jobs as JSON")
	return cmd
}

func (a *app) printJobs(jobs []client.Job, asJSON bool) error {
	if asJSON {
		if jobs == nil {
			jobs = []client.Job{}
		}
		return writeJSON(a.stdout, jobs)
	}
	return jobTable(a.stdout, a.now(), jobs)
}

func (a *app) showCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show JOB",
		Short: "Show a job with its tests and harness",
		Args:  cobra.ExactArgs(1),
		RunE: a.onJob(false, func(ctx context.Context, c *client.Client, id int64) error {
			j, err := c.Job(ctx, id)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, j)
			}
			return a.printJob(j)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the job as JSON, as the API returns it")
	return cmd
}

// onJob returns the RunE of a command whose one argument is a job id: it
// parses the id, makes the API client (with a token when needToken) and
// calls f.
func (a *app) onJob(needToken bool, f func(ctx context.Context, c *client.Client, id int64) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		id, err := parseID("job", args[0])
		if err != nil {
			return err
		}
		c, err := a.client(needToken)
		if err != nil {
			return err
		}
		return f(cmd.Context(), c, id)
	}
}

func (a *app) printJob(j client.Job) error {
	now := a.now()
	tw := newTable(a.stdout)
	row(tw, "job", strconv.FormatInt(j.ID, 10))
	row(tw, "package", j.Package)
	row(tw, "version", j.Version)
	row(tw, "release", j.Release)
	row(tw, "arch", j.Arch)
	row(tw, "triggers", strings.Join(j.Triggers, " "))
	if s := j.Source; s != nil {
		row(tw, "source", fmt.Sprintf("%s %s, %s, sha256:%s", s.Kind, s.Entry, humanSize(s.Size), s.SHA256))
	}
	if len(j.OnlyTests) > 0 {
		row(tw, "only tests", strings.Join(j.OnlyTests, " "))
	}
	row(tw, "state", j.State)
	if !j.Finished() {
		row(tw, "stage", j.Stage)
		row(tw, "queue", fmt.Sprintf("priority %d, lane %s", j.Priority, j.Lane))
	}
	if j.Pending != "" {
		row(tw, "pending", j.Pending)
	}
	for _, l := range j.AptSources {
		row(tw, "apt source", l)
	}
	if len(j.AvoidAgents) > 0 {
		ids := make([]string, len(j.AvoidAgents))
		for i, id := range j.AvoidAgents {
			ids[i] = strconv.FormatInt(id, 10)
		}
		row(tw, "avoids agents", strings.Join(ids, " "))
	}
	if j.ReusedFrom != nil {
		row(tw, "reused from", fmt.Sprintf("job %d (not run again: same package, version, triggers, release, arch and harness)", *j.ReusedFrom))
	}
	row(tw, "verdict", string(j.Verdict))
	if j.Reason != "" {
		row(tw, "reason", j.Reason)
	}
	if j.ExitCode != nil {
		row(tw, "exit code", strconv.Itoa(*j.ExitCode))
	}
	row(tw, "attempt", strconv.Itoa(j.Attempt))
	agent := agentLabel(j)
	if agent != "" && j.Owner != "" {
		agent += ", owner ~" + j.Owner
	}
	row(tw, "agent", agent)
	row(tw, "transport", j.Transport)
	row(tw, "submitted by", j.SubmittedBy)
	row(tw, "created", stamp(now, &j.CreatedAt))
	row(tw, "started", stamp(now, j.StartedAt))
	row(tw, "finished", stamp(now, j.FinishedAt))
	if h := j.Harness; h != nil {
		row(tw, "harness", fmt.Sprintf("agent %s, autopkgtest %s, backend %s", h.AgentVersion, h.AutopkgtestVersion, h.Backend))
		row(tw, "image", h.ImageDigest)
	}
	if j.LogURL != "" {
		row(tw, "log", fmt.Sprintf("sparegrid log %d", j.ID))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(j.Tests) > 0 {
		fmt.Fprintln(a.stdout)
		tw = newTable(a.stdout)
		fmt.Fprintln(tw, "TEST\tRESULT\tDETAIL")
		for _, t := range j.Tests {
			row(tw, t.Name, string(t.Result), t.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(j.Blobs) > 0 {
		fmt.Fprintln(a.stdout)
		tw = newTable(a.stdout)
		fmt.Fprintln(tw, "BLOB\tSIZE\tSHA256")
		for _, b := range j.Blobs {
			row(tw, b.Name, humanSize(b.Size), b.SHA256)
		}
		return tw.Flush()
	}
	return nil
}

func (a *app) logCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "log JOB",
		Short: "Print the autopkgtest log of a job's latest result",
		Args:  cobra.ExactArgs(1),
		RunE: a.onJob(false, func(ctx context.Context, c *client.Client, id int64) error {
			return c.Log(ctx, id, a.stdout)
		}),
	}
}

func (a *app) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JOB",
		Short: "Cancel a queued or running job",
		Long: `Cancel a queued or running job. An agent running it learns at its next
heartbeat and tears its testbed down; nothing it reports afterwards is
kept. Maintainers may cancel the jobs they submitted, admins any job.`,
		Args: cobra.ExactArgs(1),
		RunE: a.onJob(true, func(ctx context.Context, c *client.Client, id int64) error {
			j, err := c.CancelJob(ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "job %d cancelled (%s %s on %s/%s)\n", j.ID, clean(j.Package), clean(j.Version), clean(j.Release), clean(j.Arch))
			return nil
		}),
	}
}
