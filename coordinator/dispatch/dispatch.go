// Package dispatch runs the selection policy: it turns what the archive
// watchers saw change, a periodic sweep over every testable package, and
// failures that await a confirmation run into requests, and hands each to
// intake, which makes the jobs.
//
// It owns the State a policy decides on (changes with the reverse
// dependencies they trigger, the targets agents offer, the age of every
// testable package's latest result, what is already queued, free sweep
// slots) and the loop that asks. It must not decide what to test (package
// sched does), lease jobs, or judge results (package verdict does).
package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/sched"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
)

// Defaults.
const (
	DefaultSweepEvery = 10 * time.Minute
	// DefaultPrefetchTimeout bounds how long a decision waits to learn
	// the tests of the packages it asks for.
	DefaultPrefetchTimeout = 2 * time.Minute
	// ConfirmPriority is the priority of a run that confirms a failure
	// on another agent before it is declared a REGRESSION.
	ConfirmPriority = 7
	// maxQueuedRead bounds how many queued and running jobs one decision
	// reads.
	maxQueuedRead = 100000
	// onlineWindow is how recently an agent must have been heard from to
	// count as free capacity for the sweep.
	onlineWindow = 2 * time.Minute
)

// Config configures a Dispatcher.
type Config struct {
	Store  store.Store
	Intake *intake.Intake
	// Policy decides; nil means sched.Default{}.
	Policy sched.Policy
	// Snapshots returns the latest snapshot of every archive suite and
	// component; nil means no archive is watched.
	Snapshots func() []archive.Snapshot
	// Architectures maps a release (suite) to the architectures its
	// archive is configured with; requests for a change go to these and
	// to every arch an agent offers for the release.
	Architectures map[string][]string
	// SweepEvery is how often the sweep runs (DefaultSweepEvery when
	// zero, never when negative).
	SweepEvery  time.Duration
	MaxAttempts int
	// Prefetch, when set, is asked before a decision's requests are
	// queued to read the tests of the packages they name in a release,
	// so that intake can split them; it gets at most PrefetchTimeout
	// (DefaultPrefetchTimeout when zero).
	Prefetch        func(ctx context.Context, release string, pkgs []string)
	PrefetchTimeout time.Duration
	// OnJudged, when set, is given every judgement of a package's
	// verdicts after a job of it ended (to mail the changes).
	OnJudged func(ctx context.Context, pkg string, out verdict.Output)
	// Notify tells waiting agents that jobs were queued.
	Notify func()
	Now    func() time.Time
	Log    *slog.Logger
}

// Dispatcher runs the policy. Its methods are safe for concurrent use;
// decisions are made one at a time.
type Dispatcher struct {
	cfg     Config
	mu      sync.Mutex // one decision at a time
	confirm chan string
	// last is the latest decision's report, lastSweep the latest sweep's.
	lastMu    sync.Mutex
	last      Report
	lastSweep Report
}

// Report is what a decision found, for logs and status pages.
type Report struct {
	// Sweep is set for the sweep's decisions.
	Sweep           bool
	At              time.Time
	Requests        int
	Jobs            int
	Reused          int
	Blocked         int
	OldestResult    *sched.Package
	OldestResultAge time.Duration
}

// New returns a Dispatcher.
func New(cfg Config) *Dispatcher {
	if cfg.Policy == nil {
		cfg.Policy = sched.Default{}
	}
	if cfg.Snapshots == nil {
		cfg.Snapshots = func() []archive.Snapshot { return nil }
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = DefaultSweepEvery
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	if cfg.PrefetchTimeout == 0 {
		cfg.PrefetchTimeout = DefaultPrefetchTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{cfg: cfg, confirm: make(chan string, 256)}
}

// LastReport returns the latest decision's report.
func (d *Dispatcher) LastReport() Report {
	d.lastMu.Lock()
	defer d.lastMu.Unlock()
	return d.last
}

// LastSweep returns the latest sweep's report, which names the testable
// package with the oldest result; the zero Report before the first.
func (d *Dispatcher) LastSweep() Report {
	d.lastMu.Lock()
	defer d.lastMu.Unlock()
	return d.lastSweep
}

// SweepEvery is how often the sweep runs; not positive means never.
func (d *Dispatcher) SweepEvery() time.Duration { return d.cfg.SweepEvery }

// Changes asks the policy about what the archive watchers saw change and
// queues what it answers.
func (d *Dispatcher) Changes(ctx context.Context, changes []archive.Change) (Report, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.state(ctx, false)
	if err != nil {
		return Report{}, err
	}
	snaps := d.cfg.Snapshots()
	for _, c := range changes {
		if c.NewVersion == "" {
			continue // removed
		}
		sc := sched.Change{Source: c.Source, NewVersion: c.NewVersion, Release: c.Suite, Testable: c.Testable}
		for _, s := range snaps {
			if s.Suite == c.Suite && s.Archive == c.Archive {
				sc.Triggered = append(sc.Triggered, s.Triggered(c.Source)...)
			}
		}
		slices.Sort(sc.Triggered)
		sc.Triggered = slices.Compact(sc.Triggered)
		st.Changes = append(st.Changes, sc)
	}
	if len(st.Changes) == 0 {
		return Report{At: st.Now}, nil
	}
	return d.decide(ctx, st, false)
}

// Sweep asks the policy for the round-robin sweep over every testable
// package, up to the free capacity, and queues what it answers.
func (d *Dispatcher) Sweep(ctx context.Context) (Report, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.state(ctx, true)
	if err != nil {
		return Report{}, err
	}
	return d.decide(ctx, st, true)
}

// state builds what the policy decides on. The sweep part (testable
// packages, slots) is filled only when sweep is set.
func (d *Dispatcher) state(ctx context.Context, sweep bool) (sched.State, error) {
	now := d.cfg.Now().UTC()
	st := sched.State{Now: now, Arches: map[string][]string{}}
	rt, err := d.cfg.Intake.Router(ctx)
	if err != nil {
		return st, err
	}
	offered := map[string][]string{}
	for _, t := range rt.Targets() {
		rel, arch, _ := strings.Cut(t, "/")
		offered[rel] = append(offered[rel], arch)
	}
	for rel, arches := range offered {
		st.Arches[rel] = slices.Clone(arches)
	}
	for rel, arches := range d.cfg.Architectures {
		st.Arches[rel] = append(st.Arches[rel], arches...)
	}
	for rel, arches := range st.Arches {
		slices.Sort(arches)
		st.Arches[rel] = slices.Compact(arches)
	}
	queued := 0
	for _, state := range []store.JobState{store.JobQueued, store.JobRunning} {
		jobs, err := d.cfg.Store.ListJobs(ctx, store.JobFilter{State: state, Limit: maxQueuedRead})
		if err != nil {
			return st, err
		}
		for _, j := range jobs {
			st.Queued = append(st.Queued, sched.Request{Package: j.Package, Version: j.Version, Release: j.Release,
				Arch: j.Arch, Triggers: j.Triggers, Priority: j.Priority, Lane: j.Lane, Reason: j.Reason})
		}
		if state == store.JobQueued {
			queued = len(jobs)
		}
	}
	if !sweep {
		return st, nil
	}
	last := map[[3]string]time.Time{}
	results, err := d.cfg.Store.TargetResults(ctx)
	if err != nil {
		return st, err
	}
	for _, r := range results {
		last[[3]string{r.Package, r.Release, r.Arch}] = r.Finished
	}
	seen := map[[3]string]bool{}
	for _, s := range d.cfg.Snapshots() {
		for _, arch := range offered[s.Suite] {
			for _, src := range s.Sources() {
				k := [3]string{src.Package, s.Suite, arch}
				if !src.Testable() || seen[k] || (len(src.Architecture) > 0 && !archive.BuildsOn(src.Architecture, arch)) {
					continue
				}
				seen[k] = true
				st.Testable = append(st.Testable, sched.Package{Package: src.Package, Release: s.Suite, Arch: arch, LastResult: last[k]})
			}
		}
	}
	online, err := d.onlineAgents(ctx, now)
	if err != nil {
		return st, err
	}
	st.SweepSlots = max(online-queued, 0)
	return st, nil
}

// onlineAgents counts the approved, unpaused agents heard from lately.
func (d *Dispatcher) onlineAgents(ctx context.Context, now time.Time) (int, error) {
	ags, err := d.cfg.Store.ListAgents(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ag := range ags {
		if ag.State == store.AgentApproved && ag.Paused == "" && ag.LastSeen != nil && now.Sub(*ag.LastSeen) <= onlineWindow {
			n++
		}
	}
	return n, nil
}

// decide asks the policy and queues its requests.
func (d *Dispatcher) decide(ctx context.Context, st sched.State, sweep bool) (Report, error) {
	dec, err := d.cfg.Policy.Decide(ctx, st)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Sweep: sweep, At: st.Now, Requests: len(dec.Requests),
		OldestResult: dec.OldestResult, OldestResultAge: dec.OldestResultAge}
	d.prefetch(ctx, dec.Requests)
	versions := d.versions()
	queued := map[string]bool{}
	for _, q := range st.Queued {
		queued[requestKey(q.Package, q.Version, q.Release, q.Arch, q.Triggers)] = true
	}
	for _, q := range dec.Requests {
		if err := q.Validate(); err != nil {
			d.cfg.Log.Warn("policy request refused", "err", err)
			continue
		}
		version := q.Version
		if version == "" {
			version = versions[[2]string{q.Package, q.Release}]
		}
		if k := requestKey(q.Package, version, q.Release, q.Arch, q.Triggers); queued[k] {
			continue
		} else {
			queued[k] = true
		}
		out, err := d.cfg.Intake.Submit(ctx, intake.Request{
			Package: q.Package, Version: version, Release: q.Release, Arch: q.Arch, Triggers: q.Triggers,
			Priority: q.Priority, Lane: q.Lane, Reason: q.Reason, SubmittedBy: "scheduler",
			Fresh: q.Lane == sched.LaneSweep, MaxAttempts: d.cfg.MaxAttempts,
		})
		if err != nil {
			var blocked *intake.BlockedError
			if errors.As(err, &blocked) {
				rep.Blocked++
				d.cfg.Log.Info("request blocked", "package", q.Package, "release", q.Release, "arch", q.Arch, "why", blocked.Error())
				continue
			}
			return rep, err
		}
		for _, j := range out.Jobs {
			if j.ReusedFrom != nil {
				rep.Reused++
			} else {
				rep.Jobs++
			}
		}
	}
	if rep.Jobs > 0 {
		d.cfg.Notify()
	}
	d.lastMu.Lock()
	d.last = rep
	if rep.Sweep {
		d.lastSweep = rep
	}
	d.lastMu.Unlock()
	attrs := []any{"requests", rep.Requests, "jobs", rep.Jobs, "reused", rep.Reused, "blocked", rep.Blocked}
	if rep.OldestResult != nil {
		attrs = append(attrs, "oldest_result", rep.OldestResult.Package+" on "+rep.OldestResult.Release+"/"+rep.OldestResult.Arch,
			"oldest_result_age", rep.OldestResultAge.Round(time.Second))
	}
	d.cfg.Log.Info("scheduled", attrs...)
	return rep, nil
}

// prefetch asks Config.Prefetch for the tests of the packages reqs name,
// release by release, within Config.PrefetchTimeout.
func (d *Dispatcher) prefetch(ctx context.Context, reqs []sched.Request) {
	if d.cfg.Prefetch == nil || len(reqs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.PrefetchTimeout)
	defer cancel()
	byRelease := map[string][]string{}
	for _, q := range reqs {
		if !slices.Contains(byRelease[q.Release], q.Package) {
			byRelease[q.Release] = append(byRelease[q.Release], q.Package)
		}
	}
	for _, rel := range slices.Sorted(maps.Keys(byRelease)) {
		d.cfg.Prefetch(ctx, rel, byRelease[rel])
	}
}

// versions maps (source, suite) to the source's newest version in the
// watched archives, so that requests name what they test.
func (d *Dispatcher) versions() map[[2]string]string {
	out := map[[2]string]string{}
	for _, s := range d.cfg.Snapshots() {
		for _, src := range s.Sources() {
			k := [2]string{src.Package, s.Suite}
			if cur, ok := out[k]; !ok || archive.CompareVersions(src.Version, cur) > 0 {
				out[k] = src.Version
			}
		}
	}
	return out
}

// Done notes that a job ended, so its package's verdicts are judged again
// and a failure that needs confirming gets its run on another agent. It
// never blocks: when the backlog is full the package is judged again at
// its next result.
func (d *Dispatcher) Done(j store.Job) {
	select {
	case d.confirm <- j.Package:
	default:
		d.cfg.Log.Warn("confirmation backlog full; judging later", "package", j.Package, "job", j.ID)
	}
}

// Confirm judges pkg's verdicts and queues the confirmation runs they ask
// for: a failure that would be a REGRESSION runs again, avoiding the
// agents that saw it, before it is declared. It returns the jobs queued.
func (d *Dispatcher) Confirm(ctx context.Context, pkg string) ([]store.Job, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rt, err := d.cfg.Intake.Router(ctx)
	if err != nil {
		return nil, err
	}
	out, err := intake.Judge(ctx, d.cfg.Store, rt, pkg)
	if err != nil {
		return nil, err
	}
	if d.cfg.OnJudged != nil {
		d.cfg.OnJudged(ctx, pkg, out)
	}
	var jobs []store.Job
	for _, rr := range out.Retries {
		req := intake.Request{
			Package: rr.Package, Version: rr.Version, Release: rr.Release, Arch: rr.Arch, Triggers: rr.Triggers,
			Priority: ConfirmPriority, Lane: store.LaneDefault, Reason: rr.Reason, SubmittedBy: "scheduler",
			AvoidAgents: rr.AvoidAgents, MaxAttempts: d.cfg.MaxAttempts,
		}
		// The confirmation runs as the failure did: the same test
		// selection with its needs, and the same apt sources (the upload
		// the trigger names may only be in the event's repository).
		failed, err := d.failedJob(ctx, rr)
		if err != nil {
			return jobs, err
		}
		if failed != nil {
			req.AptSources = failed.AptSources
			if len(rr.Tests) > 0 {
				n := failed.Needs
				req.Tests, req.TestNeeds, req.Labels, req.MemoryMB, req.DiskMB = rr.Tests, n.Tests, n.Labels, n.MemoryMB, n.DiskMB
			}
		}
		res, err := d.cfg.Intake.Submit(ctx, req)
		if err != nil {
			var blocked *intake.BlockedError
			if errors.As(err, &blocked) {
				continue
			}
			return jobs, err
		}
		jobs = append(jobs, res.Jobs...)
		d.cfg.Log.Info("confirmation run queued", "package", rr.Package, "release", rr.Release, "arch", rr.Arch,
			"job", res.Jobs[0].ID, "avoid_agents", rr.AvoidAgents)
	}
	if len(jobs) > 0 {
		d.cfg.Notify()
	}
	return jobs, nil
}

// failedJob returns the newest job of the retry's package that ran what
// the retry confirms (same version, release, arch, triggers and test
// selection), nil when there is none.
func (d *Dispatcher) failedJob(ctx context.Context, rr verdict.RetryRequest) (*store.Job, error) {
	jobs, err := d.cfg.Store.ListJobs(ctx, store.JobFilter{Package: rr.Package, Limit: store.PackageRunsLimit})
	if err != nil {
		return nil, err
	}
	sorted := func(s []string) []string { return slices.Sorted(slices.Values(s)) }
	for _, j := range jobs {
		if j.State == store.JobDone && j.ReusedFrom == nil && j.Version == rr.Version && j.Release == rr.Release &&
			j.Arch == rr.Arch && slices.Equal(sorted(j.Triggers), sorted(rr.Triggers)) && slices.Equal(sorted(j.Tests), sorted(rr.Tests)) &&
			slices.ContainsFunc(rr.AvoidAgents, func(id int64) bool { return j.AgentID != nil && *j.AgentID == id }) {
			return &j, nil
		}
	}
	return nil, nil
}

// Run sweeps every SweepEvery and judges the packages Done names, until
// ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	var tick <-chan time.Time
	if d.cfg.SweepEvery > 0 {
		t := time.NewTicker(d.cfg.SweepEvery)
		defer t.Stop()
		tick = t.C
		if _, err := d.Sweep(ctx); err != nil && ctx.Err() == nil {
			d.cfg.Log.Error("sweep failed", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if _, err := d.Sweep(ctx); err != nil && ctx.Err() == nil {
				d.cfg.Log.Error("sweep failed", "err", err)
			}
		case pkg := <-d.confirm:
			if _, err := d.Confirm(ctx, pkg); err != nil && ctx.Err() == nil {
				d.cfg.Log.Error("confirmation failed", "package", pkg, "err", err)
			}
		}
	}
}

// requestKey identifies a request for deduplication against what is
// queued: what is tested where, with which triggers in any order.
func requestKey(pkg, version, release, arch string, triggers []string) string {
	ts := slices.Sorted(slices.Values(triggers))
	return strings.Join([]string{pkg, version, release, arch, strings.Join(ts, " ")}, "\x00")
}
