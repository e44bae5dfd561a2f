package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/blocklist"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/rules"
	"github.com/sparegrid/sparegrid/coordinator/store"
)

// maxEventList caps the limit of GET /events.
const maxEventList = 1000

// ErrNoArchive is what triggered() answers while the coordinator has no
// archive snapshots to find reverse dependencies in.
var ErrNoArchive = fmt.Errorf("%w: no archive watcher configured", rules.ErrTriggered)

// NoReverseDeps answers every triggered() lookup with ErrNoArchive.
func NoReverseDeps() rules.ReverseDeps {
	return rules.ReverseDepsFunc(func(context.Context, string) ([]string, error) { return nil, ErrNoArchive })
}

// AgentTargets tells the rules engine the targets the grid knows: every
// (release, arch) pair of the capabilities approved agents last
// advertised. A target is capable when one of those agents is not paused.
func AgentTargets(s store.Store) rules.Targets {
	return rules.TargetsFunc(func(ctx context.Context) ([]rules.TargetStatus, error) {
		ags, err := s.ListAgents(ctx)
		if err != nil {
			return nil, err
		}
		type seen struct {
			capable bool
			paused  string
		}
		targets := map[rules.Target]*seen{}
		for _, ag := range ags {
			if ag.State != store.AgentApproved || len(ag.Capabilities) == 0 {
				continue
			}
			var caps struct {
				Arch     string   `json:"arch"`
				Releases []string `json:"releases"`
			}
			if err := json.Unmarshal(ag.Capabilities, &caps); err != nil || caps.Arch == "" {
				continue
			}
			for _, rel := range caps.Releases {
				t := rules.Target{Release: rel, Arch: caps.Arch}
				st := targets[t]
				if st == nil {
					st = &seen{}
					targets[t] = st
				}
				if ag.Paused == "" {
					st.capable = true
				} else if st.paused == "" {
					st.paused = fmt.Sprintf("agent %d (%s) is paused: %s", ag.ID, ag.Name, ag.Paused)
				}
			}
		}
		out := make([]rules.TargetStatus, 0, len(targets))
		for t, st := range targets {
			ts := rules.TargetStatus{Target: t, Capable: st.capable}
			if !st.capable {
				ts.Reason = "every agent offering " + t.String() + " is paused; " + st.paused
			}
			out = append(out, ts)
		}
		slices.SortFunc(out, func(a, b rules.TargetStatus) int {
			return cmp.Or(cmp.Compare(a.Release, b.Release), cmp.Compare(a.Arch, b.Arch))
		})
		return out, nil
	})
}

func eventView(e store.Event) apiv1.Event {
	v := apiv1.Event{
		ID: e.ID, Type: e.Type, Source: e.Source, Version: e.Version, ArtifactURL: e.ArtifactURL, BuildID: e.BuildID,
		Metadata: e.Metadata, Producer: e.Producer, Received: e.Received,
		Rules: make([]apiv1.EventRule, 0, len(e.Rules)), Requests: make([]apiv1.EventRequest, 0, len(e.Requests)),
		Jobs: e.Jobs(),
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	if v.Jobs == nil {
		v.Jobs = []int64{}
	}
	for _, r := range e.Rules {
		w := r.Warnings
		if w == nil {
			w = []string{}
		}
		v.Rules = append(v.Rules, apiv1.EventRule{Rule: r.Rule, Matched: r.Matched, Error: r.Error, Warnings: w, Requests: r.Requests})
	}
	for _, q := range e.Requests {
		rq := apiv1.EventRequest{
			Package: q.Package, Version: q.Version, Release: q.Release, Arch: q.Arch, Triggers: q.Triggers,
			Priority: q.Priority, Lane: q.Lane, Reason: q.Reason, Pending: q.Pending, PendingReason: q.PendingReason,
			Blocked: q.Blocked, SplitJobs: q.SplitJobs,
		}
		if rq.SplitJobs == nil {
			rq.SplitJobs = []int64{}
		}
		if rq.Triggers == nil {
			rq.Triggers = []string{}
		}
		if q.Job != 0 {
			id := q.Job
			rq.Job = &id
		}
		v.Requests = append(v.Requests, rq)
	}
	return v
}

func (a *API) postEvent(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, rules.MaxEventSize+1))
	if err != nil {
		return badRequest("request body: %v", err)
	}
	ev, err := rules.DecodeEvent(body)
	if err != nil {
		return badRequest("%v", err)
	}
	ev.Producer, ev.Received = caller(r).Name, a.cfg.Now().UTC()
	if err := ev.Validate(); err != nil {
		return badRequest("%v", err)
	}
	stored, err := a.cfg.Store.AddEvent(r.Context(), store.Event{
		Type: ev.Type, Source: ev.Source, Version: ev.Version, ArtifactURL: ev.ArtifactURL, BuildID: ev.BuildID,
		Metadata: ev.Metadata, Producer: ev.Producer, Received: ev.Received,
	})
	if err != nil {
		return err
	}
	ev.ID, ev.Received = stored.ID, stored.Received
	x, err := a.cfg.Events.Expand(r.Context(), ev)
	if err != nil {
		return fmt.Errorf("event %d: %w", ev.ID, err)
	}
	outcomes := make([]store.EventRule, 0, len(x.Rules))
	for _, o := range x.Rules {
		er := store.EventRule{Rule: o.Rule, Matched: o.Matched, Warnings: o.Warnings, Requests: o.Requests}
		if o.Err != nil {
			er.Error = o.Err.Error()
		}
		outcomes = append(outcomes, er)
	}
	requests := make([]store.EventRequest, 0, len(x.Requests))
	for _, q := range x.Requests {
		sr := store.EventRequest{
			Package: q.Package, Version: q.Version, Release: q.Release, Arch: q.Arch, Triggers: q.Triggers,
			Priority: q.Priority, Lane: q.Lane, Reason: q.Reason, Pending: q.Pending, PendingReason: q.PendingReason,
		}
		out, err := a.cfg.Intake.Submit(r.Context(), intake.Request{
			Package: q.Package, Version: q.Version, Release: q.Release, Arch: q.Arch, Triggers: q.Triggers,
			Priority: q.Priority, Lane: q.Lane, Reason: q.Reason, AptSources: q.AptSources,
			SubmittedBy: ev.Producer, MaxAttempts: a.cfg.MaxAttempts,
		})
		var blocked *intake.BlockedError
		switch {
		case errors.As(err, &blocked):
			sr.Blocked = blocklist.Explain(blocked.Rule)
		case err != nil:
			return fmt.Errorf("event %d: job for %s on %s/%s: %w", ev.ID, q.Package, q.Release, q.Arch, err)
		default:
			sr.Job = out.Jobs[0].ID
			for _, j := range out.Jobs[1:] {
				sr.SplitJobs = append(sr.SplitJobs, j.ID)
			}
			if why := out.Pending[sr.Job]; why != "" && !sr.Pending {
				sr.Pending, sr.PendingReason = true, why
			}
		}
		requests = append(requests, sr)
	}
	stored, err = a.cfg.Store.SetEventExpansion(r.Context(), ev.ID, outcomes, requests)
	if err != nil {
		return err
	}
	jobs := stored.Jobs()
	if len(jobs) > 0 {
		a.cfg.Jobs.Notify()
	}
	a.cfg.Log.Info("event received", "event", ev.ID, "type", ev.Type, "source", ev.Source, "producer", ev.Producer,
		"requests", len(requests), "jobs", len(jobs))
	writeJSON(w, http.StatusCreated, eventView(stored))
	return nil
}

func (a *API) listEvents(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		limit := 0
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 || n > maxEventList {
				return badRequest("limit %q: want 1 to %d", s, maxEventList)
			}
			limit = n
		}
		evs, err := a.cfg.Store.ListEvents(r.Context(), limit)
		if err != nil {
			return err
		}
		out := apiv1.EventList{Events: make([]apiv1.Event, 0, len(evs))}
		for _, e := range evs {
			out.Events = append(out.Events, eventView(e))
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})(w, r)
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request) {
	a.public(func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		e, err := a.cfg.Store.Event(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return notFound("no event %d", id)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, eventView(e))
		return nil
	})(w, r)
}

// noRules is the engine of a coordinator configured without rules.
func noRules(s store.Store) *rules.Engine {
	e, err := rules.New(nil, rules.Options{Targets: AgentTargets(s), ReverseDeps: NoReverseDeps()})
	if err != nil {
		panic("api: an engine without rules: " + err.Error())
	}
	return e
}
