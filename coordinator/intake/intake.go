// Package intake owns the step from a test request to jobs, shared by every
// way work enters the grid (sparegrid submit, events and their rules, the
// archive watcher's selection policy, confirmation runs of a failure):
//
//   - a whole-job blocklist rule refuses the request, unless it is forced;
//   - the package's tests, when its debian/tests/control is known, are
//     split between the agents that offer the release and arch: tests
//     every such agent can run stay together, and tests only some (or no)
//     agents can run go to jobs of their own that run just those tests
//     (autopkgtest --test-name) and carry what an agent needs to take them;
//   - a finished job with the same key (package, version, trigger set,
//     release, arch, test selection) whose harness matches the grid's
//     harness revision stands for the request instead of a new run, unless
//     the request is forced or asks for a fresh run;
//   - everything else becomes a queued job with its priority, lane and
//     reason.
//
// It also answers, for verdicts, which queued jobs no agent can take now
// and why (Route).
//
// It must not lease jobs, talk to agents or decide what to test: callers
// bring requests, the gateway leases.
package intake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/blocklist"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// ErrBlocked means a whole-job blocklist rule refused the request.
var ErrBlocked = errors.New("intake: blocked")

// BlockedError is the error of a request a whole-job blocklist rule
// refused; it matches ErrBlocked.
type BlockedError struct {
	// What names the request: package (and version) on release/arch.
	What string
	Rule store.BlockRule
}

func (e *BlockedError) Error() string {
	return e.What + " is blocked by " + blocklist.Explain(e.Rule)
}

// Is reports whether target is ErrBlocked.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// Request is one test request.
type Request struct {
	Package string
	// Version is the version to test; empty leaves it to the testbed (the
	// archive's current version), and such a request is never reused.
	Version  string
	Release  string
	Arch     string
	Triggers []string
	// Source is the uploaded source package, nil for the archive's.
	Source *store.Source
	// Control is the package's debian/tests/control, parsed; nil when it
	// is not known, in which case the tests are not split.
	Control []dep8.TestStanza
	// Tests, when set, are the only tests to run, with TestNeeds what
	// they require: the request is one part of an earlier split (a
	// confirmation run) and is not split again.
	Tests     []string
	TestNeeds []dep8.Requirements
	// Labels, MemoryMB and DiskMB are what the request asks of an agent
	// on top of the tests' own requirements.
	Labels   []string
	MemoryMB int64
	DiskMB   int64
	// Priority and Lane place the jobs in the queue; zero values are
	// store.DefaultPriority and store.LaneDefault.
	Priority int
	Lane     string
	Reason   string
	// SubmittedBy names the account or component making the request.
	SubmittedBy string
	// Forced runs the request whatever whole-job blocklist rule covers it
	// and whatever earlier result could stand for it.
	Forced bool
	// Fresh asks for a new run even when an earlier result could be
	// reused (the sweep, whose point is to run again).
	Fresh bool
	// AvoidAgents must not take the jobs (confirmation runs).
	AvoidAgents []int64
	// AptSources are apt source lines the testbed adds, such as the
	// repository of the upload that triggered the request; the release's
	// Config.ReleaseSources come first.
	AptSources  []string
	MaxAttempts int
}

// ArchiveTests tells the tests of packages from the watched archives.
type ArchiveTests interface {
	// Tests returns the tests of pkg at version (empty: the archive's
	// newest) in release, and whether they are known. It must answer at
	// once: when they are not known yet it may start finding out in the
	// background, and the request is not split.
	Tests(ctx context.Context, release, pkg, version string) (tests []dep8.TestStanza, known bool)
}

// Agent is an approved agent as routing sees it.
type Agent struct {
	// Caps are its capabilities with admin labels applied; Caps.ID is
	// the agent's id.
	Caps     dep8.AgentCaps
	Releases []string
	// Paused is why it paused itself; empty when it takes work.
	Paused string
}

// offers reports whether the agent offers the release and arch.
func (a Agent) offers(release, arch string) bool {
	return a.Caps.Arch == arch && slices.Contains(a.Releases, release)
}

// Outcome is what Submit made of a request.
type Outcome struct {
	// Jobs are the jobs made: one per part of a split, each queued or,
	// when an earlier result stands for it, done with ReusedFrom set.
	Jobs []store.Job
	// Blocked is the blocklist rule a forced request went past, nil when
	// none covered it.
	Blocked *store.BlockRule
	// Pending says, for every queued job no agent can take now, why; the
	// job waits for a capable agent.
	Pending map[int64]string
}

// Config configures an Intake.
type Config struct {
	Store store.Store
	// Agents returns the approved agents; nil means none are known.
	Agents func(ctx context.Context) ([]Agent, error)
	// Harness, when not empty, is the harness revision a reused result
	// must have; otherwise it must have the harness of the newest result
	// on the release and arch (store.LatestHarness).
	Harness Pin
	// ReleaseSources maps a release to apt source lines every job for it
	// adds to the testbed (an archive the testbed image does not have).
	ReleaseSources map[string][]string
	// ArchiveTests tells the tests of packages from the archive, so that
	// they are split like uploaded ones; nil means they are never known.
	ArchiveTests ArchiveTests
	Now          func() time.Time
}

// Intake turns requests into jobs.
type Intake struct {
	cfg Config
}

// New returns an Intake.
func New(cfg Config) *Intake {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Agents == nil {
		cfg.Agents = func(context.Context) ([]Agent, error) { return nil, nil }
	}
	return &Intake{cfg: cfg}
}

// Submit turns r into jobs. A request a whole-job blocklist rule covers is
// refused with a *BlockedError naming the rule, unless it is forced. Errors from the store are returned as they are.
func (in *Intake) Submit(ctx context.Context, r Request) (Outcome, error) {
	now := in.cfg.Now().UTC()
	var out Outcome
	rules, err := in.cfg.Store.BlockRules(ctx, now, false)
	if err != nil {
		return Outcome{}, err
	}
	d := blocklist.Decide(rules, blocklist.Target{Package: r.Package, Version: r.Version, Release: r.Release, Arch: r.Arch}, now)
	if d.Blocked != nil {
		if !r.Forced {
			return Outcome{}, &BlockedError{What: fmt.Sprintf("%s on %s/%s", describe(r), r.Release, r.Arch), Rule: *d.Blocked}
		}
		out.Blocked = d.Blocked
		r.Reason = strings.TrimPrefix(r.Reason+"; ", "; ") + fmt.Sprintf("submitted despite blocklist rule %d", d.Blocked.ID)
	}
	agents, err := in.cfg.Agents(ctx)
	if err != nil {
		return Outcome{}, err
	}
	if r.Control == nil && r.Source == nil && len(r.Tests) == 0 && in.cfg.ArchiveTests != nil {
		if tests, ok := in.cfg.ArchiveTests.Tests(ctx, r.Release, r.Package, r.Version); ok {
			r.Control = tests
		}
	}
	parts := split(r, agents)
	rt := NewRouter(agents)
	out.Pending = map[int64]string{}
	for _, p := range parts {
		j, err := in.create(ctx, r, p, now)
		if err != nil {
			return Outcome{}, err
		}
		out.Jobs = append(out.Jobs, j)
		if j.State != store.JobQueued {
			continue
		}
		if why := rt.Unroutable(r.Release, r.Arch, p.needs, r.AvoidAgents); why != "" {
			out.Pending[j.ID] = why
		}
	}
	return out, nil
}

func describe(r Request) string {
	if r.Version != "" {
		return r.Package + " " + r.Version
	}
	return r.Package
}

// create makes the job of one part: reused when an earlier result can
// stand for it, queued otherwise.
func (in *Intake) create(ctx context.Context, r Request, p part, now time.Time) (store.Job, error) {
	j := store.Job{
		Package: r.Package, Version: r.Version, Release: r.Release, Arch: r.Arch, Triggers: r.Triggers,
		Source: r.Source, State: store.JobQueued, MaxAttempts: r.MaxAttempts, Reason: r.Reason, Forced: r.Forced,
		Priority: r.Priority, Lane: r.Lane, Tests: p.tests, Needs: p.needs, AvoidAgents: r.AvoidAgents,
		AptSources: in.aptSources(r), SubmittedBy: r.SubmittedBy, CreatedAt: now,
	}
	if p.why != "" {
		j.Reason = strings.TrimPrefix(j.Reason+"; ", "; ") + p.why
	}
	if from, why, err := in.reusable(ctx, r, p); err != nil {
		return store.Job{}, err
	} else if from != 0 {
		j.ReusedFrom = &from
		j.Reason = strings.TrimPrefix(j.Reason+"; ", "; ") + why
	}
	return in.cfg.Store.CreateJob(ctx, j)
}

// reusable returns the job whose result can stand for the part, and why;
// zero when a new run is needed.
func (in *Intake) reusable(ctx context.Context, r Request, p part) (int64, string, error) {
	if r.Forced || r.Fresh || r.Version == "" || r.Source != nil || len(r.AvoidAgents) > 0 {
		return 0, "", nil
	}
	want := in.cfg.Harness
	if len(want) == 0 {
		h, err := in.cfg.Store.LatestHarness(ctx, r.Release, r.Arch)
		if errors.Is(err, store.ErrNotFound) {
			return 0, "", nil
		}
		if err != nil {
			return 0, "", err
		}
		want = PinOf(h)
	}
	cands, err := in.cfg.Store.ReuseCandidates(ctx, store.ReuseQuery{
		Package: r.Package, Version: r.Version, Release: r.Release, Arch: r.Arch, Triggers: r.Triggers, Tests: p.tests,
	})
	if err != nil {
		return 0, "", err
	}
	for _, c := range cands {
		if want.Match(c.Harness) {
			return c.JobID, fmt.Sprintf("reused the %s result of job %d (harness %s)", c.Verdict, c.JobID, c.Harness.Rev()), nil
		}
	}
	return 0, "", nil
}

// aptSources are the release's sources, then the request's, each once.
func (in *Intake) aptSources(r Request) []string {
	var out []string
	for _, l := range append(slices.Clone(in.cfg.ReleaseSources[r.Release]), r.AptSources...) {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}
