package storetest

import (
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func testJobCounts(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	got, err := f.s.JobCounts(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("JobCounts(empty) = %v, %v; want none", got, err)
	}
	for _, j := range []store.Job{
		{Package: "a", Lane: "zeta"},
		{Package: "b", Lane: "zeta"},
		{Package: "c", Lane: "alpha"},
		{Package: "d"},
		{Package: "e"},
		{Package: "f"},
		{Package: "g"},
	} {
		j.Release, j.Arch = "unstable", "amd64"
		f.createJob(t, j)
	}
	byPkg := make(map[string]int64)
	jobs, err := f.s.ListJobs(t.Context(), store.JobFilter{})
	if err != nil {
		t.Fatalf("ListJobs = %v", err)
	}
	for _, j := range jobs {
		byPkg[j.Package] = j.ID
	}
	f.leaseID(t, byPkg["a"], f.agent.ID, at(0))
	f.leaseID(t, byPkg["d"], f.agent.ID, at(0))
	f.run(t, byPkg["e"], f.agent.ID, at(0), dep8.VerdictPass, harness("h"))
	if _, err := f.s.CancelJob(t.Context(), byPkg["f"], at(0)); err != nil {
		t.Fatalf("CancelJob = %v", err)
	}

	got, err = f.s.JobCounts(t.Context())
	if err != nil {
		t.Fatalf("JobCounts = %v", err)
	}
	want := []store.JobCount{
		{State: store.JobQueued, Lane: "alpha", Jobs: 1},
		{State: store.JobQueued, Lane: store.LaneDefault, Jobs: 1},
		{State: store.JobRunning, Lane: store.LaneDefault, Jobs: 1},
		{State: store.JobQueued, Lane: "zeta", Jobs: 1},
		{State: store.JobRunning, Lane: "zeta", Jobs: 1},
	}
	diff(t, "JobCounts()", got, want)
}

func testAgentCounts(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	f.pendingAgent(t, "waiting")
	rejected := f.pendingAgent(t, "refused")
	if _, err := f.s.DecideAgent(ctx, rejected.ID, store.AgentRejected, f.admin.Name); err != nil {
		t.Fatalf("DecideAgent(%d, rejected) = %v", rejected.ID, err)
	}
	paused := f.approvedAgent(t, "paused")
	if err := f.s.PauseAgent(ctx, paused.ID, "disk full", at(0)); err != nil {
		t.Fatalf("PauseAgent = %v", err)
	}
	quiet := f.approvedAgent(t, "quiet")
	for id, seen := range map[int64]time.Time{f.agent.ID: at(time.Hour), paused.ID: at(2 * time.Hour), quiet.ID: at(0), rejected.ID: at(2 * time.Hour)} {
		if err := f.s.SeenAgent(ctx, id, seen, nil); err != nil {
			t.Fatalf("SeenAgent(%d) = %v", id, err)
		}
	}
	for _, tt := range []struct {
		name  string
		since time.Time
		want  store.AgentCounts
	}{
		{"all seen", at(0), store.AgentCounts{Pending: 1, Approved: 3, Rejected: 1, Paused: 1, Online: 3}},
		{"at the boundary", at(time.Hour), store.AgentCounts{Pending: 1, Approved: 3, Rejected: 1, Paused: 1, Online: 2}},
		{"recent only", at(90 * time.Minute), store.AgentCounts{Pending: 1, Approved: 3, Rejected: 1, Paused: 1, Online: 1}},
		{"none since", at(3 * time.Hour), store.AgentCounts{Pending: 1, Approved: 3, Rejected: 1, Paused: 1}},
		{"zero time", time.Time{}, store.AgentCounts{Pending: 1, Approved: 3, Rejected: 1, Paused: 1, Online: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.AgentCounts(ctx, tt.since)
			if err != nil {
				t.Fatalf("AgentCounts(%v) = %v", tt.since, err)
			}
			diff(t, "AgentCounts()", got, tt.want)
		})
	}
}
