package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Exit statuses of submit --wait.
const (
	exitFail  = 1
	exitInfra = 2
)

// maxPollFailures is how many polls in a row may fail to reach the
// coordinator before submit --wait gives up.
const maxPollFailures = 5

type submitOptions struct {
	release  string
	arch     string
	version  string
	triggers []string
	source   string
	wait     bool
	force    bool
	priority int
	labels   []string
	memoryMB int64
	diskMB   int64
}

func (a *app) submitCommand() *cobra.Command {
	var o submitOptions
	cmd := &cobra.Command{
		Use:   "submit (PACKAGE | --source PATH) --release RELEASE",
		Short: "Ask the grid to test a package",
		Long: `Ask the grid to run a package's autopkgtests.

Either name a source PACKAGE to test from the archive, or give --source with
an unpacked source tree (a directory with debian/control) or a .dsc whose
files lie beside it; the source is packed, uploaded and tested as it is.

The new job's id is printed alone on standard output.

A job that a blocklist rule blocks is refused with the rule and its reason
(see "sparegrid blocklist list"). --force submits it anyway; the job's
reason then names the rule. --force also asks for a fresh run where the
coordinator could reuse an earlier result with the same package, version,
triggers, release, architecture and harness.

--priority places the job in the queue (1 to 10, higher first; 7 by
default, above the tests an upload triggers). --label, --memory and --disk
send it only to agents that offer them. When the package's tests need
more than some agents offer (isolation-machine, needs-reboot, ...), the
tests those agents cannot run are split off to jobs of their own for the
agents that can; a job no agent can take waits and says why.

With --wait, sparegrid follows the job until it ends, then prints each
test's result and the verdict on standard error, and exits with:
  0  the verdict is pass or neutral
  1  the verdict is fail (or sparegrid itself failed)
  2  the verdict is tmpfail or error (trouble with the grid, not the
     package), or the job was cancelled`,
		Example: `  sparegrid submit hello --release trixie --trigger glibc/2.41-1 --wait
  sparegrid submit --source ./hello-2.10 --release trixie`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.submit(cmd.Context(), args, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.release, "release", "", "release to test on, such as trixie")
	f.StringVar(&o.arch, "arch", "", "architecture (default: the coordinator's)")
	f.StringVar(&o.version, "version", "", "package version (default: the archive's, or the source's)")
	f.StringArrayVar(&o.triggers, "trigger", nil, "a trigger as SOURCE/VERSION; repeat for more")
	f.StringVar(&o.source, "source", "", "source tree directory or .dsc to upload and test")
	f.BoolVar(&o.wait, "wait", false, "wait for the result; the exit status tells the verdict")
	f.BoolVar(&o.force, "force", false, "run even if a blocklist rule blocks the job or an earlier result could be reused")
	f.IntVar(&o.priority, "priority", 0, "priority from 1 to 10, higher first (default 7)")
	f.StringArrayVar(&o.labels, "label", nil, "run only on agents with this label; repeat for more")
	f.Int64Var(&o.memoryMB, "memory", 0, "run only on agents whose testbeds may use this many MiB of memory")
	f.Int64Var(&o.diskMB, "disk", 0, "run only on agents whose testbeds may use this many MiB of disk")
	cmd.MarkFlagRequired("release")
	return cmd
}

func (a *app) submit(ctx context.Context, args []string, o submitOptions) error {
	switch {
	case len(args) == 1 && o.source != "":
		return errors.New("give either a PACKAGE to test from the archive or --source PATH, not both")
	case len(args) == 0 && o.source == "":
		return errors.New("give a PACKAGE to test from the archive, or --source PATH with a source tree or .dsc")
	}
	for _, t := range o.triggers {
		if err := checkTrigger(t); err != nil {
			return err
		}
	}
	if o.priority < 0 || o.priority > 10 {
		return fmt.Errorf("--priority %d: use 1 to 10, higher first", o.priority)
	}
	req := client.SubmitRequest{Release: o.release, Arch: o.arch, Version: o.version, Triggers: o.triggers, Force: o.force,
		Priority: o.priority, Labels: o.labels, MemoryMB: o.memoryMB, DiskMB: o.diskMB}
	if len(args) == 1 {
		req.Package = args[0]
		if !dep8.ValidSource(req.Package) {
			return fmt.Errorf("package %q is not a valid source package name", req.Package)
		}
	}
	c, err := a.client(true)
	if err != nil {
		return err
	}
	if o.source != "" {
		src, err := a.uploadSource(ctx, c, o.source)
		if err != nil {
			return err
		}
		req.Package, req.Source = src.Package, src.Source()
		if req.Version == "" {
			req.Version = src.Version
		}
	}
	job, err := c.SubmitJob(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, job.ID)
	if job.Reason != "" {
		fmt.Fprintf(a.stderr, "job %d: %s\n", job.ID, clean(job.Reason))
	}
	for _, id := range job.SplitJobs {
		fmt.Fprintf(a.stderr, "job %d: the tests its agents cannot run are split off to job %d (sparegrid show %d)\n", job.ID, id, id)
	}
	if job.Pending != "" {
		fmt.Fprintf(a.stderr, "job %d waits: %s\n", job.ID, clean(job.Pending))
	}
	if !o.wait {
		return nil
	}
	return a.wait(ctx, c, job)
}

func (a *app) uploadSource(ctx context.Context, c *client.Client, path string) (client.Packed, error) {
	p, err := client.PackSource(path)
	if err != nil {
		return p, err
	}
	defer os.Remove(p.File)
	for _, s := range p.Skipped {
		fmt.Fprintf(a.stderr, "note: left out %s (a special file, or a symbolic link leaving the tree)\n", clean(s))
	}
	f, err := os.Open(p.File)
	if err != nil {
		return p, err
	}
	defer f.Close()
	if _, err := c.UploadSource(ctx, f, p.SHA256, p.Size); err != nil {
		return p, fmt.Errorf("upload source: %w", err)
	}
	what := p.Package
	if p.Version != "" {
		what += " " + p.Version
	}
	fmt.Fprintf(a.stderr, "uploaded %s (%s %s, %s, sha256:%s)\n", clean(what), p.Kind, clean(p.Entry), humanSize(p.Size), p.SHA256)
	return p, nil
}

// wait polls the job until it ends, shows its progress on stderr, prints
// its results, and returns an *exitError carrying the verdict's status.
func (a *app) wait(ctx context.Context, c *client.Client, job client.Job) error {
	start := a.now()
	last := progress(job)
	if a.stderrTTY {
		fmt.Fprintf(a.stderr, "\r\x1b[K%s", last)
	} else {
		fmt.Fprintln(a.stderr, last)
	}
	failures := 0
	timer := time.NewTimer(a.pollInterval)
	defer timer.Stop()
	for !job.Finished() {
		select {
		case <-ctx.Done():
			if a.stderrTTY {
				fmt.Fprintln(a.stderr)
			}
			return fmt.Errorf("stopped waiting; job %d goes on without you (%w)", job.ID, context.Cause(ctx))
		case <-timer.C:
		}
		timer.Reset(a.pollInterval)
		j, err := c.Job(ctx, job.ID)
		if err != nil {
			var aerr *client.APIError
			failures++
			if (errors.As(err, &aerr) && aerr.Status < 500) || failures >= maxPollFailures || ctx.Err() != nil {
				return fmt.Errorf("follow job %d: %w", job.ID, err)
			}
			continue
		}
		failures = 0
		job = j
		line := progress(job)
		if a.stderrTTY {
			fmt.Fprintf(a.stderr, "\r\x1b[K%s, %s", line, a.now().Sub(start).Truncate(time.Second))
		} else if line != last {
			fmt.Fprintln(a.stderr, line)
		}
		last = line
	}
	if a.stderrTTY {
		fmt.Fprintln(a.stderr)
	}
	a.printOutcome(job)
	code := verdictExit(job)
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}

func progress(j client.Job) string {
	s := fmt.Sprintf("job %d: %s", j.ID, clean(j.State))
	if j.Stage != "" && !j.Finished() {
		s += ", stage " + clean(j.Stage)
	}
	if j.Attempt > 0 {
		s += ", attempt " + strconv.Itoa(j.Attempt)
	}
	return s
}

func (a *app) printOutcome(j client.Job) {
	tw := newTable(a.stderr)
	for _, t := range j.Tests {
		row(tw, "  "+string(t.Result), t.Name, t.Detail)
	}
	tw.Flush()
	verdict := string(j.Verdict)
	if verdict == "" {
		verdict = j.State
	}
	s := fmt.Sprintf("job %d: %s %s on %s/%s: %s", j.ID, clean(j.Package), clean(j.Version), clean(j.Release), clean(j.Arch), clean(verdict))
	if j.Reason != "" {
		s += " (" + clean(j.Reason) + ")"
	}
	if ag := agentLabel(j); ag != "" {
		s += ", agent " + clean(ag)
	}
	fmt.Fprintln(a.stderr, s)
}

// verdictExit is the exit status of submit --wait for a finished job.
func verdictExit(j client.Job) int {
	if j.State == client.StateCancelled {
		return exitInfra
	}
	switch j.Verdict {
	case dep8.VerdictPass, dep8.VerdictNeutral:
		return 0
	case dep8.VerdictFail:
		return exitFail
	}
	return exitInfra
}

// checkTrigger refuses a trigger that is not SOURCE/VERSION.
func checkTrigger(t string) error {
	if !dep8.ValidTrigger(t) {
		return fmt.Errorf("--trigger %q: want SOURCE/VERSION, such as glibc/2.41-1", t)
	}
	return nil
}
