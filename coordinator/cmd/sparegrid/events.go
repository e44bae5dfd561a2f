package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

func (a *app) eventsCommand() *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the events build systems posted, newest first",
		Long: `Events are what build systems tell the grid: a new upload, a finished
build, a new image. The coordinator's rules turn each event into test
requests; a request no agent can serve now still becomes a job, which
waits for a capable agent and is shown as pending. "events
show ID" says what every rule made of one event; "events post" posts one
(with a maintainer's or an admin's token).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit %d: want a positive number", limit)
			}
			c, err := a.client(false)
			if err != nil {
				return err
			}
			evs, err := c.Events(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				if evs == nil {
					evs = []client.Event{}
				}
				return writeJSON(a.stdout, evs)
			}
			now := a.now()
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ID\tRECEIVED\tTYPE\tSOURCE\tVERSION\tPRODUCER\tRULES\tJOBS")
			for _, e := range evs {
				row(tw, strconv.FormatInt(e.ID, 10), ago(now, e.Received), e.Type, e.Source, e.Version, e.Producer,
					eventRules(e), eventJobs(e))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the events as JSON")
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many events (default: the coordinator's, 50)")
	cmd.AddCommand(a.eventsShowCommand(), a.eventsPostCommand())
	return cmd
}

// eventRules names the rules that matched an event and counts those that
// failed.
func eventRules(e client.Event) string {
	var matched []string
	failed := 0
	for _, r := range e.Rules {
		if r.Matched && r.Error == "" {
			matched = append(matched, r.Rule)
		}
		if r.Error != "" {
			failed++
		}
	}
	s := strings.Join(matched, ",")
	if failed > 0 {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("(%d failed)", failed)
	}
	return s
}

// eventJobs counts an event's jobs, and those of its requests that wait
// for a capable agent.
func eventJobs(e client.Event) string {
	pending := 0
	for _, q := range e.Requests {
		if q.Pending {
			pending++
		}
	}
	s := strconv.Itoa(len(e.Jobs))
	if pending > 0 {
		s += fmt.Sprintf(" (%d pending)", pending)
	}
	return s
}

func (a *app) eventsShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an event, what each rule made of it, and its jobs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("event", args[0])
			if err != nil {
				return err
			}
			c, err := a.client(false)
			if err != nil {
				return err
			}
			e, err := c.Event(cmd.Context(), id)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, e)
			}
			return a.printEvent(a.stdout, e)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the event as JSON")
	return cmd
}

func (a *app) printEvent(w io.Writer, e client.Event) error {
	tw := newTable(w)
	row(tw, "event", strconv.FormatInt(e.ID, 10))
	row(tw, "type", e.Type)
	row(tw, "source", e.Source)
	row(tw, "version", e.Version)
	row(tw, "artifact", e.ArtifactURL)
	row(tw, "build", e.BuildID)
	for _, k := range slices.Sorted(maps.Keys(e.Metadata)) {
		row(tw, "metadata", k+"="+e.Metadata[k])
	}
	row(tw, "producer", "~"+e.Producer)
	row(tw, "received", stamp(a.now(), &e.Received))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nRULES")
	tw = newTable(w)
	if len(e.Rules) == 0 {
		fmt.Fprintln(tw, "  (the coordinator has no rules)")
	}
	for _, r := range e.Rules {
		var what string
		switch {
		case r.Error != "":
			what = "failed: " + r.Error
		case r.Matched:
			what = fmt.Sprintf("matched, %d requests", r.Requests)
		default:
			what = "did not match"
		}
		row(tw, "  "+r.Rule, what)
		for _, warn := range r.Warnings {
			row(tw, "", "warning: "+warn)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nREQUESTS")
	tw = newTable(w)
	if len(e.Requests) == 0 {
		fmt.Fprintln(tw, "  (none)")
	} else {
		fmt.Fprintln(tw, "  PACKAGE\tVERSION\tTARGET\tPRIORITY\tLANE\tJOB")
	}
	for _, q := range e.Requests {
		job := "pending: " + q.PendingReason
		if q.Blocked != "" {
			job = "blocked: " + q.Blocked
		}
		if q.Job != nil {
			job = strconv.FormatInt(*q.Job, 10)
			for _, id := range q.SplitJobs {
				job += " +" + strconv.FormatInt(id, 10)
			}
			if q.Pending {
				job += " (pending: " + q.PendingReason + ")"
			}
		}
		row(tw, "  "+q.Package, q.Version, q.Release+"/"+q.Arch, strconv.Itoa(q.Priority), q.Lane, job)
	}
	return tw.Flush()
}

func (a *app) eventsPostCommand() *cobra.Command {
	var req client.EventPost
	var meta []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "post --type TYPE [--source S] [--version V] [--artifact-url U] [--build-id B] [--meta KEY=VALUE]...",
		Short: "Post an event, as a build system does (maintainer or admin)",
		Long: `Post an event. The coordinator stores it, runs its rules on it and
creates a job for every request an agent can serve. The event's id is
printed alone on standard output, what it became on standard error.`,
		Example: `  sparegrid events post --type upload --source libfoo --version 1.2-1 --meta suite=unstable
  sparegrid events post --type image-built --artifact-url https://images.example.org/trixie-arm64.tar --meta release=trixie --meta arch=arm64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, kv := range meta {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--meta %q: want KEY=VALUE", kv)
				}
				if req.Metadata == nil {
					req.Metadata = map[string]string{}
				}
				if _, dup := req.Metadata[k]; dup {
					return fmt.Errorf("--meta %q: key %q given twice", kv, k)
				}
				req.Metadata[k] = v
			}
			c, err := a.client(true)
			if err != nil {
				return err
			}
			e, err := c.PostEvent(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, e)
			}
			fmt.Fprintln(a.stdout, e.ID)
			fmt.Fprintf(a.stderr, "event %d: rules %s; jobs %s\n", e.ID, clean(eventRules(e)), eventJobs(e))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Type, "type", "", "what happened, such as upload, build-finished or image-built")
	f.StringVar(&req.Source, "source", "", "the source package concerned")
	f.StringVar(&req.Version, "version", "", "the source package's new version")
	f.StringVar(&req.ArtifactURL, "artifact-url", "", "where what was built can be fetched")
	f.StringVar(&req.BuildID, "build-id", "", "the build system's own id of the build")
	f.StringArrayVar(&meta, "meta", nil, "KEY=VALUE for rules to see as event.metadata; repeat for more")
	f.BoolVar(&asJSON, "json", false, "print the stored event as JSON")
	cmd.MarkFlagRequired("type")
	return cmd
}
