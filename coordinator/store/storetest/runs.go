package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// testPackageRuns checks that PackageRuns returns a package's done jobs
// with their latest result and its queued, held and running jobs, and
// nothing of cancelled jobs or other packages.
func testPackageRuns(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	box2 := f.approvedAgent(t, "box2")

	runs, active, err := f.s.PackageRuns(ctx, "hello")
	if err != nil || len(runs) != 0 || len(active) != 0 {
		t.Fatalf("PackageRuns(hello) on an empty store = %v, %v, %v; want nothing", runs, active, err)
	}

	base := f.createJob(t, store.Job{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64"})
	f.complete(t, result(f.lease(t, f.agent.ID, at(time.Hour)), dep8.VerdictPass), at(time.Hour+time.Minute))

	triggers := []string{"glibc/2.41-1", "bash/5.2-1"}
	trig := f.createJob(t, store.Job{Package: "hello", Version: "1.1", Release: "unstable", Arch: "amd64", Triggers: triggers})
	f.complete(t, result(f.lease(t, f.agent.ID, at(2*time.Hour)), dep8.VerdictTmpfail), at(2*time.Hour+time.Minute))
	second := result(f.lease(t, box2.ID, at(3*time.Hour)), dep8.VerdictFail)
	second.Tests = []dep8.Test{{Name: "smoke", Result: dep8.Fail, Detail: "non-zero exit status 1"}}
	second.Harness.ImageDigest = "sha256:def"
	f.complete(t, second, at(3*time.Hour+time.Minute))

	cancelled := f.createJob(t, store.Job{Package: "hello", Release: "unstable", Arch: "amd64"})
	if _, err := f.s.CancelJob(ctx, cancelled.ID, at(4*time.Hour)); err != nil {
		t.Fatalf("CancelJob(%d) = %v", cancelled.ID, err)
	}
	running := f.createJob(t, store.Job{Package: "hello", Version: "1.1", Release: "unstable", Arch: "amd64"})
	queued := f.createJob(t, store.Job{Package: "hello", Release: "unstable", Arch: "arm64", Triggers: triggers})
	f.createJob(t, store.Job{Package: "other", Release: "unstable", Arch: "amd64"})
	if got := f.lease(t, f.agent.ID, at(5*time.Hour)); got.ID != running.ID {
		t.Fatalf("LeaseJob leased job %d, want %d", got.ID, running.ID)
	}

	runs, active, err = f.s.PackageRuns(ctx, "hello")
	if err != nil {
		t.Fatalf("PackageRuns(hello) = %v", err)
	}
	first := result(store.Job{ID: base.ID, Attempt: 1, AgentID: &f.agent.ID}, dep8.VerdictPass)
	diff(t, "PackageRuns(hello) runs", runs, []store.PackageRun{
		{JobID: base.ID, Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64",
			Verdict: dep8.VerdictPass, AgentID: f.agent.ID, Tests: first.Tests, Harness: first.Harness,
			Finished: at(time.Hour + time.Minute)},
		{JobID: trig.ID, Package: "hello", Version: "1.1", Release: "unstable", Arch: "amd64", Triggers: triggers,
			Verdict: dep8.VerdictFail, AgentID: box2.ID, Tests: second.Tests, Harness: second.Harness,
			Finished: at(3*time.Hour + time.Minute)},
	})
	diff(t, "PackageRuns(hello) active", active, []store.ActiveJob{
		{JobID: running.ID, Package: "hello", Version: "1.1", Release: "unstable", Arch: "amd64", Running: true},
		{JobID: queued.ID, Package: "hello", Release: "unstable", Arch: "arm64", Triggers: triggers},
	})

	runs, active, err = f.s.PackageRuns(ctx, "nothing")
	if err != nil || len(runs) != 0 || len(active) != 0 {
		t.Errorf("PackageRuns(nothing) = %v, %v, %v; want nothing", runs, active, err)
	}
}

// testPackageRunsLimit checks that PackageRuns reads only the newest
// PackageRunsLimit jobs of a package.
func testPackageRunsLimit(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	for i := range store.PackageRunsLimit + 1 {
		f.createJob(t, store.Job{Package: "busy", Version: fmt.Sprintf("1.%d", i), Release: "unstable", Arch: "amd64"})
	}
	_, active, err := f.s.PackageRuns(t.Context(), "busy")
	if err != nil {
		t.Fatalf("PackageRuns(busy) = %v", err)
	}
	if len(active) != store.PackageRunsLimit || active[0].Version != "1.1" {
		t.Fatalf("PackageRuns(busy) = %d active jobs, want %d from version 1.1", len(active), store.PackageRunsLimit)
	}
}
