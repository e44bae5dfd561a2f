package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/sched"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// grid is a real store with agents, and a dispatcher over a snapshot.
type grid struct {
	t      *testing.T
	db     *sqlite.DB
	d      *Dispatcher
	snaps  []archive.Snapshot
	agents []int64
}

func newGrid(t *testing.T, agents int, sources ...archive.Source) *grid {
	g := &grid{t: t, db: sqlite.NewTemp(t)}
	ctx := t.Context()
	owner, err := g.db.CreateAccount(ctx, store.Account{Name: "vol", Role: store.RoleVolunteer})
	if err != nil {
		t.Fatal(err)
	}
	for i := range agents {
		ag, err := g.db.CreateAgent(ctx, store.Agent{Name: fmt.Sprintf("box%d", i), OwnerID: owner.ID, PublicKey: []byte{byte(i)},
			ClaimCode: fmt.Sprintf("C%d", i), State: store.AgentApproved, AutoApproved: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.db.SeenAgent(ctx, ag.ID, now.Add(-time.Minute), []byte(`{"arch":"amd64","releases":["bookworm"],"backend":"overlay"}`)); err != nil {
			t.Fatal(err)
		}
		g.agents = append(g.agents, ag.ID)
	}
	g.snaps = []archive.Snapshot{archive.NewSnapshot(archive.Key{Archive: "debian", Suite: "bookworm", Component: "main"}, sources)}
	clock := func() time.Time { return now }
	in := intake.New(intake.Config{Store: g.db, Agents: intake.StoreAgents(g.db), Now: clock})
	g.d = New(Config{Store: g.db, Intake: in, Snapshots: func() []archive.Snapshot { return g.snaps },
		Architectures: map[string][]string{"bookworm": {"amd64"}}, MaxAttempts: 2, Now: clock})
	return g
}

// queued returns the queued jobs, oldest first.
func (g *grid) queued() []store.Job {
	g.t.Helper()
	jobs, err := g.db.ListJobs(g.t.Context(), store.JobFilter{State: store.JobQueued, Limit: 1000})
	if err != nil {
		g.t.Fatal(err)
	}
	slices.SortFunc(jobs, func(a, b store.Job) int { return cmp.Compare(a.ID, b.ID) })
	return jobs
}

// request is what a test compares of a job.
type request struct {
	Package, Version string
	Triggers         []string
	Priority         int
	Lane             string
}

func requests(jobs []store.Job) []request {
	var out []request
	for _, j := range jobs {
		out = append(out, request{j.Package, j.Version, j.Triggers, j.Priority, j.Lane})
	}
	return out
}

func testable(name, version string, triggers ...string) archive.Source {
	return archive.Source{Package: name, Version: version, Binaries: []string{name}, Testsuite: []string{"autopkgtest"},
		TestsuiteTriggers: triggers, Architecture: []string{"any"}}
}

func library(name, version, binary string) archive.Source {
	return archive.Source{Package: name, Version: version, Binaries: []string{binary}, Architecture: []string{"any"}}
}

func TestChangesQueueUploadAndReverseDependencies(t *testing.T) {
	g := newGrid(t, 1, library("libfoo", "2.0-1", "libfoo1"), testable("bar", "1.1-1", "libfoo1"), testable("baz", "3-2", "libfoo1"),
		testable("libfoo-tests", "2.0-1"), testable("unrelated", "1"))
	change := archive.Change{Archive: "debian", Suite: "bookworm", Component: "main", Source: "libfoo", OldVersion: "1.0-1", NewVersion: "2.0-1"}
	rep, err := g.d.Changes(t.Context(), []archive.Change{change})
	if err != nil {
		t.Fatal(err)
	}
	trig := []string{"libfoo/2.0-1"}
	want := []request{
		{"bar", "1.1-1", trig, sched.PriorityRdeps, sched.LaneDefault},
		{"baz", "3-2", trig, sched.PriorityRdeps, sched.LaneDefault},
	}
	if d := gocmp.Diff(want, requests(g.queued())); d != "" {
		t.Errorf("queued after the change mismatch (-want +got):\n%s", d)
	}
	if rep.Jobs != 2 || rep.Requests != 2 {
		t.Errorf("report = %+v, want 2 requests, 2 jobs", rep)
	}

	// The same change again asks for nothing new.
	if _, err := g.d.Changes(t.Context(), []archive.Change{change}); err != nil {
		t.Fatal(err)
	}
	if n := len(g.queued()); n != 2 {
		t.Errorf("queued after the same change again = %d jobs, want 2", n)
	}

	// A testable upload runs its own tests first; a removal asks nothing.
	own := archive.Change{Archive: "debian", Suite: "bookworm", Component: "main", Source: "unrelated", OldVersion: "0.9", NewVersion: "1", Testable: true}
	gone := archive.Change{Archive: "debian", Suite: "bookworm", Component: "main", Source: "baz", OldVersion: "3-2"}
	if _, err := g.d.Changes(t.Context(), []archive.Change{own, gone}); err != nil {
		t.Fatal(err)
	}
	got := g.queued()
	if last := got[len(got)-1]; last.Package != "unrelated" || last.Version != "1" || last.Priority != sched.PriorityUpload {
		t.Errorf("job for a testable upload = %+v, want unrelated 1 at priority %d", last, sched.PriorityUpload)
	}
	if len(got) != 3 {
		t.Errorf("queued = %v, want 3 jobs", requests(got))
	}
}

func TestChangesWithoutAgentsStillQueuePending(t *testing.T) {
	g := newGrid(t, 0, library("libfoo", "2.0-1", "libfoo1"), testable("bar", "1", "libfoo1"))
	if _, err := g.d.Changes(t.Context(), []archive.Change{{Archive: "debian", Suite: "bookworm", Source: "libfoo", NewVersion: "2.0-1"}}); err != nil {
		t.Fatal(err)
	}
	// The configured architecture gets the request; it waits for an agent.
	jobs := g.queued()
	if len(jobs) != 1 || jobs[0].Arch != "amd64" {
		t.Fatalf("queued = %+v, want bar on amd64", jobs)
	}
	rt, err := g.d.cfg.Intake.Router(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if why := rt.Unroutable(jobs[0].Release, jobs[0].Arch, jobs[0].Needs, nil); why == "" {
		t.Errorf("a job with no agent is routable")
	}
}

func TestSweepOldestFirstUpToFreeAgents(t *testing.T) {
	g := newGrid(t, 2, testable("aaa", "1"), testable("bbb", "1"), testable("ccc", "1"), library("lib", "1", "lib1"))
	ctx := t.Context()
	// bbb was tested an hour ago, ccc two hours ago; aaa never.
	for _, r := range []struct {
		pkg string
		age time.Duration
	}{{"bbb", time.Hour}, {"ccc", 2 * time.Hour}} {
		j, err := g.db.CreateJob(ctx, store.Job{Package: r.pkg, Version: "1", Release: "bookworm", Arch: "amd64", CreatedAt: now.Add(-r.age - time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := g.db.LeaseJob(ctx, store.LeaseParams{AgentID: g.agents[0], Arch: "amd64", Releases: []string{"bookworm"},
			TTL: time.Hour, Now: now.Add(-r.age - time.Minute), Nonce: r.pkg,
			Exclude: func(c store.Job) bool { return c.ID != j.ID }})
		if err != nil || l == nil {
			t.Fatalf("LeaseJob(%s) = %v, %v", r.pkg, l, err)
		}
		if _, err := g.db.CompleteJob(ctx, store.Result{JobID: l.ID, Attempt: l.Attempt, AgentID: g.agents[0], Verdict: dep8.VerdictPass,
			Envelope: []byte(r.pkg), Harness: dep8.Harness{AgentVersion: "1", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "x"}}, now.Add(-r.age)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := g.d.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two agents online and nothing queued: two slots.
	want := []request{{"aaa", "1", nil, sched.PrioritySweep, sched.LaneSweep}, {"ccc", "1", nil, sched.PrioritySweep, sched.LaneSweep}}
	if d := gocmp.Diff(want, requests(g.queued())); d != "" {
		t.Errorf("swept mismatch (-want +got):\n%s", d)
	}
	if rep.OldestResult == nil || rep.OldestResult.Package != "aaa" {
		t.Errorf("report oldest result = %+v, want aaa (never tested)", rep.OldestResult)
	}
	// With two jobs queued for two agents there is no free slot.
	if _, err := g.d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(g.queued()); n != 2 {
		t.Errorf("queued after a sweep with no free slot = %d, want 2", n)
	}
}

func TestConfirmQueuesRunOnAnotherAgent(t *testing.T) {
	g := newGrid(t, 2)
	ctx := t.Context()
	run := func(triggers []string, agent int64, v dep8.Verdict, at time.Time, apt ...string) store.Job {
		t.Helper()
		j, err := g.db.CreateJob(ctx, store.Job{Package: "bar", Version: "1", Release: "bookworm", Arch: "amd64", Triggers: triggers,
			AptSources: apt, CreatedAt: at.Add(-time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := g.db.LeaseJob(ctx, store.LeaseParams{AgentID: agent, Arch: "amd64", Releases: []string{"bookworm"}, TTL: time.Hour,
			Now: at.Add(-time.Minute), Nonce: fmt.Sprint(j.ID), Exclude: func(c store.Job) bool { return c.ID != j.ID }})
		if err != nil || l == nil {
			t.Fatalf("LeaseJob = %v, %v", l, err)
		}
		test := dep8.Test{Name: "smoke", Result: dep8.Pass}
		if v == dep8.VerdictFail {
			test.Result = dep8.Fail
		}
		done, err := g.db.CompleteJob(ctx, store.Result{JobID: l.ID, Attempt: l.Attempt, AgentID: agent, Verdict: v, Envelope: []byte(fmt.Sprint(j.ID)),
			Tests: []dep8.Test{test}, Harness: dep8.Harness{AgentVersion: "1", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "x"}}, at)
		if err != nil {
			t.Fatal(err)
		}
		return done
	}
	run(nil, g.agents[0], dep8.VerdictPass, now.Add(-2*time.Hour))
	upload := "deb [trusted=yes] http://127.0.0.1:9/libfoo/ ./"
	failed := run([]string{"libfoo/2.0-1"}, g.agents[0], dep8.VerdictFail, now.Add(-time.Hour), upload)

	jobs, err := g.d.Confirm(ctx, "bar")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 {
		t.Fatalf("Confirm = %v, want one confirmation job", jobs)
	}
	c := jobs[0]
	if !slices.Equal(c.AvoidAgents, []int64{g.agents[0]}) || c.Priority != ConfirmPriority || !slices.Equal(c.Triggers, failed.Triggers) || c.ReusedFrom != nil {
		t.Errorf("confirmation job = %+v, want a fresh run of %v avoiding agent %d at priority %d", c, failed.Triggers, g.agents[0], ConfirmPriority)
	}
	// It installs what the failure installed: the upload's repository.
	if !slices.Equal(c.AptSources, []string{upload}) {
		t.Errorf("confirmation job apt sources = %q, want those of the failed job %q", c.AptSources, upload)
	}
	// Asked again while the confirmation is queued: nothing new.
	if again, err := g.d.Confirm(ctx, "bar"); err != nil || len(again) != 0 {
		t.Errorf("Confirm again = %v, %v; want nothing", again, err)
	}

	// Done hands the package to Run, which judges it in the background.
	other := run([]string{"libbar/3"}, g.agents[1], dep8.VerdictFail, now.Add(-time.Minute))
	ctxRun, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { g.d.Run(ctxRun); close(stopped) }()
	g.d.Done(other)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var found bool
		for _, j := range g.queued() {
			if slices.Equal(j.Triggers, []string{"libbar/3"}) && slices.Equal(j.AvoidAgents, []int64{g.agents[1]}) {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no confirmation job for libbar/3 within 30s; queued: %v", requests(g.queued()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-stopped
}

func TestChangesPrefetchTestsBeforeQueueing(t *testing.T) {
	g := newGrid(t, 1, library("libfoo", "2.0-1", "libfoo1"), testable("bar", "1", "libfoo1"), testable("baz", "1", "libfoo1"))
	var asked []string
	g.d.cfg.Prefetch = func(ctx context.Context, release string, pkgs []string) {
		if _, ok := ctx.Deadline(); !ok {
			t.Errorf("Prefetch(%s) has no deadline", release)
		}
		if n := len(g.queued()); n != 0 {
			t.Errorf("Prefetch called with %d jobs already queued, want it before any", n)
		}
		asked = append(asked, release+":"+strings.Join(pkgs, ","))
	}
	if _, err := g.d.Changes(t.Context(), []archive.Change{{Archive: "debian", Suite: "bookworm", Source: "libfoo", NewVersion: "2.0-1"}}); err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff([]string{"bookworm:bar,baz"}, asked); diff != "" {
		t.Errorf("Prefetch calls mismatch (-want +got):\n%s", diff)
	}
}

func TestReports(t *testing.T) {
	g := newGrid(t, 1, library("libfoo", "2.0-1", "libfoo1"), testable("bar", "1", "libfoo1"))
	if r := g.d.LastReport(); !r.At.IsZero() {
		t.Errorf("LastReport before any decision = %+v, want zero", r)
	}
	if _, err := g.d.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	sweep := g.d.LastSweep()
	if !sweep.Sweep || sweep.OldestResult == nil || sweep.OldestResult.Package != "bar" || sweep.Jobs != 1 {
		t.Errorf("LastSweep after a sweep = %+v, want the sweep of bar with one job", sweep)
	}
	if _, err := g.d.Changes(t.Context(), []archive.Change{{Archive: "debian", Suite: "bookworm", Source: "libfoo", NewVersion: "2.0-1"}}); err != nil {
		t.Fatal(err)
	}
	if last := g.d.LastReport(); last.Sweep || last.Requests != 1 {
		t.Errorf("LastReport after a change = %+v, want the change's one request", last)
	}
	if got := g.d.LastSweep(); got.At != sweep.At || got.Requests != sweep.Requests {
		t.Errorf("LastSweep after a change = %+v, want the sweep's %+v", got, sweep)
	}
}
