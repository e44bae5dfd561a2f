package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// leaseID leases job id, and no other, to agent at now.
func (f *fixture) leaseID(t *testing.T, id, agent int64, now time.Time) store.Job {
	t.Helper()
	j := f.mustJob(t, id)
	got, err := f.s.LeaseJob(t.Context(), store.LeaseParams{
		AgentID: agent, Arch: j.Arch, Releases: []string{j.Release}, TTL: ttl, Now: now,
		Nonce:   fmt.Sprintf("nonce-%d-%d-%d", id, agent, now.UnixNano()),
		Exclude: func(c store.Job) bool { return c.ID != id },
	})
	if err != nil || got == nil || got.ID != id {
		t.Fatalf("LeaseJob(job %d to agent %d) = %+v, %v; want job %d", id, agent, got, err, id)
	}
	return *got
}

// run leases job id to agent at now and completes it a minute later with
// verdict v from harness h. It returns the job as CompleteJob left it and
// the result as stored.
func (f *fixture) run(t *testing.T, id, agent int64, now time.Time, v dep8.Verdict, h dep8.Harness) (store.Job, store.Result) {
	t.Helper()
	r := result(f.leaseID(t, id, agent, now), v)
	r.Harness = h
	r.Tests = []dep8.Test{{Name: "smoke", Result: testResult(v), Detail: "on " + h.ImageDigest}}
	done := f.complete(t, r, now.Add(time.Minute))
	r.CreatedAt = now.Add(time.Minute)
	return done, r
}

func testResult(v dep8.Verdict) dep8.Result {
	switch v {
	case dep8.VerdictPass:
		return dep8.Pass
	case dep8.VerdictFail:
		return dep8.Fail
	}
	return dep8.Skip
}

// harness returns a harness revision named name.
func harness(name string) dep8.Harness {
	return dep8.Harness{AgentVersion: "1.0-" + name, AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:" + name}
}

// ranOf returns the PackageRun a job that ran and ended with result r
// reads as.
func ranOf(j store.Job, r store.Result) store.PackageRun {
	return store.PackageRun{JobID: j.ID, Package: j.Package, Version: j.Version, Release: j.Release, Arch: j.Arch,
		Triggers: j.Triggers, Verdict: j.Verdict, AgentID: r.AgentID, Tests: r.Tests, Harness: r.Harness,
		Finished: *j.FinishedAt, TestNames: j.Tests}
}

// testLeasePriority checks that LeaseJob serves one lane's jobs highest
// priority first, then oldest first.
func testLeasePriority(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		lane string
		// priorities are those of the jobs, created in this order; 0
		// leaves the default.
		priorities []int
		// want is the order LeaseJob leases them in, as indexes.
		want []int
	}{
		{name: "higher first", priorities: []int{1, 5, 10, 8}, want: []int{2, 3, 1, 0}},
		{name: "equal priorities oldest first", priorities: []int{3, 3, 3}, want: []int{0, 1, 2}},
		{name: "default is between 4 and 6", priorities: []int{4, 0, 6}, want: []int{2, 1, 0}},
		{name: "default ties with 5", priorities: []int{0, store.DefaultPriority, 0}, want: []int{0, 1, 2}},
		{name: "named lane", lane: "fanout", priorities: []int{5, 8, 1, 8, 10, 5}, want: []int{4, 1, 3, 0, 5, 2}},
		{name: "extremes", priorities: []int{store.MinPriority, store.MaxPriority}, want: []int{1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, newStore)
			index := map[int64]int{}
			for i, p := range tt.priorities {
				j := f.createJob(t, store.Job{Package: fmt.Sprintf("pkg%d", i), Release: "unstable", Arch: "amd64",
					Priority: p, Lane: tt.lane, CreatedAt: at(time.Duration(i) * time.Second)})
				index[j.ID] = i
			}
			var got []int
			for i := range tt.priorities {
				got = append(got, index[f.lease(t, f.agent.ID, at(time.Hour+time.Duration(i)*time.Second)).ID])
			}
			diff(t, fmt.Sprintf("lease order of priorities %v", tt.priorities), got, tt.want)
			if j, err := f.s.LeaseJob(t.Context(), store.LeaseParams{AgentID: f.agent.ID, Arch: "amd64",
				Releases: []string{"unstable"}, TTL: ttl, Now: at(2 * time.Hour), Nonce: "last"}); err != nil || j != nil {
				t.Errorf("LeaseJob with every job leased = %+v, %v; want nil, nil", j, err)
			}
		})
	}
}

// laneFill is a lane's queue in testLeaseLanes: jobs jobs of one priority.
type laneFill struct {
	lane     string
	priority int
	jobs     int
}

// expectLanes returns the lanes n leases in a row take, one at a time, by
// the rule LeaseJob documents: lowest (leases in the window + 1) /
// priority first, then higher priority, then the older job. The lanes are
// filled in the order given, so an earlier lane's jobs are older, and none
// had a lease in the window before.
func expectLanes(fills []laneFill, n int) []string {
	served := make([]int, len(fills))
	var out []string
	for range n {
		best := -1
		for i, l := range fills {
			if served[i] == l.jobs {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			b := fills[best]
			// (served[i]+1)/l.priority < (served[best]+1)/b.priority,
			// in integers.
			mine, theirs := (served[i]+1)*b.priority, (served[best]+1)*l.priority
			if mine < theirs || mine == theirs && l.priority > b.priority {
				best = i
			}
		}
		if best < 0 {
			break
		}
		served[best]++
		out = append(out, fills[best].lane)
	}
	return out
}

// testLeaseLanes checks how LeaseJob shares the grid between lanes: in
// proportion to the priority of each lane's next job, without starving a
// lane with work, counting only the leases of the last LaneWindow.
func testLeaseLanes(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name  string
		fills []laneFill
		n     int
		// want counts the leases per lane. They follow from the rule:
		// for 8:4:2 a lane's rank (leases+1)/priority grows by 1/8, 1/4
		// and 1/2 per lease, so the sequence repeats every 7 leases as
		// default, default, fanout, default, default, fanout, sweep, and
		// 35 leases are 5 rounds of 4:2:1.
		want map[string]int
		// starved is the lane that must get a lease within the first
		// within leases.
		starved string
		within  int
	}{
		{
			name:  "8:4:2",
			fills: []laneFill{{"fanout", 4, 30}, {"sweep", 2, 30}, {"default", 8, 30}},
			n:     35,
			want:  map[string]int{"default": 20, "fanout": 10, "sweep": 5},
			// Sweep's rank starts at 1/2; default passes it after 4
			// leases (5/8), fanout after 1 (2/4 ties, fanout has the
			// higher priority): the 7th lease.
			starved: "sweep", within: 7,
		},
		{
			name:  "highest against lowest",
			fills: []laneFill{{"urgent", store.MaxPriority, 30}, {"bulk", store.MinPriority, 30}},
			n:     22,
			want:  map[string]int{"urgent": 20, "bulk": 2},
			// Bulk's rank is 1; urgent's reaches 11/10 after 10 leases.
			starved: "bulk", within: 11,
		},
		{
			name:    "equal priorities alternate",
			fills:   []laneFill{{"one", 5, 30}, {"two", 5, 30}},
			n:       10,
			want:    map[string]int{"one": 5, "two": 5},
			starved: "two", within: 2,
		},
		{
			name:    "a lane running dry",
			fills:   []laneFill{{"big", 8, 30}, {"small", 1, 1}},
			n:       20,
			want:    map[string]int{"big": 19, "small": 1},
			starved: "small", within: 9,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, newStore)
			lane := map[int64]string{}
			created := 0
			for _, l := range tt.fills {
				for range l.jobs {
					j := f.createJob(t, store.Job{Package: fmt.Sprintf("%s%d", l.lane, created), Release: "unstable", Arch: "amd64",
						Priority: l.priority, Lane: l.lane, CreatedAt: at(time.Duration(created) * time.Second)})
					lane[j.ID] = l.lane
					created++
				}
			}
			var got []string
			counts := map[string]int{}
			for i := range tt.n {
				// All leases fall within one LaneWindow, and a completed
				// job's lease counts as much as a running one's.
				now := at(time.Hour + time.Duration(i)*time.Minute)
				j := f.lease(t, f.agent.ID, now)
				if i%2 == 1 {
					f.complete(t, result(j, dep8.VerdictPass), now.Add(time.Second))
				}
				got = append(got, lane[j.ID])
				counts[lane[j.ID]]++
			}
			diff(t, "lanes leased in turn", got, expectLanes(tt.fills, tt.n))
			diff(t, "leases per lane", counts, tt.want)
			first := -1
			for i, l := range got {
				if l == tt.starved {
					first = i
					break
				}
			}
			if first < 0 || first >= tt.within {
				t.Errorf("first lease of lane %s = lease %d of %s; want one of the first %d", tt.starved, first+1, strings.Join(got, ","), tt.within)
			}
		})
	}

	t.Run("window", func(t *testing.T) { testLaneWindow(t, newStore) })
}

// testLaneWindow checks that LeaseJob counts a lane's leases of the last
// LaneWindow only. Lane busy had 10 leases a minute apart; its next job,
// of priority 5, competes with an idle lane's younger job of priority 1.
// With k of busy's leases in the window its rank is (k+1)/5 against 1:
// busy wins while k <= 4 (k = 4 ties, and busy's priority is higher).
func testLaneWindow(t *testing.T, newStore func(t *testing.T) store.Store) {
	const leases = 10
	start := at(time.Hour)
	tests := []struct {
		name     string
		inWindow int
		want     string
	}{
		{"all in the window", 10, "idle"},
		{"five in the window", 5, "idle"},
		{"four in the window", 4, "busy"},
		{"one in the window", 1, "busy"},
		{"all older than the window", 0, "busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, newStore)
			for i := range leases {
				f.createJob(t, store.Job{Package: fmt.Sprintf("busy%d", i), Release: "unstable", Arch: "amd64", Lane: "busy", Priority: 5})
				f.lease(t, f.agent.ID, start.Add(time.Duration(i)*time.Minute))
			}
			next := f.createJob(t, store.Job{Package: "busy-next", Release: "unstable", Arch: "amd64", Lane: "busy", Priority: 5})
			idle := f.createJob(t, store.Job{Package: "idle", Release: "unstable", Arch: "amd64", Lane: "idle", Priority: 1})
			// Half a minute after the lease that leaves the window last.
			now := start.Add(store.LaneWindow + time.Duration(leases-tt.inWindow)*time.Minute - 30*time.Second)
			got := f.lease(t, f.agent.ID, now)
			want := map[string]int64{"busy": next.ID, "idle": idle.ID}[tt.want]
			if got.ID != want {
				t.Errorf("LeaseJob with %d of busy's leases in the window = job %d (lane %s), want job %d (lane %s)",
					tt.inWindow, got.ID, got.Lane, want, tt.want)
			}
		})
	}
}

// testAvoidAgents checks that LeaseJob never leases a job to an agent it
// avoids, and leases it to others.
func testAvoidAgents(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		// avoid lists, per job, created in this order, the agents it
		// avoids: "A" is the fixture's agent, "B" another.
		avoid [][]string
		by    string
		want  int // index of the job leased; -1 for none
	}{
		{name: "only job avoids the agent", avoid: [][]string{{"A"}}, by: "A", want: -1},
		{name: "another agent takes it", avoid: [][]string{{"A"}}, by: "B", want: 0},
		{name: "avoided job passed over", avoid: [][]string{{"A"}, nil}, by: "A", want: 1},
		{name: "avoiding several agents", avoid: [][]string{{"B", "A"}}, by: "A", want: -1},
		{name: "avoiding another agent", avoid: [][]string{{"B"}}, by: "A", want: 0},
		{name: "both avoided", avoid: [][]string{{"A"}, {"A", "B"}}, by: "A", want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, newStore)
			ids := map[string]int64{"A": f.agent.ID, "B": f.approvedAgent(t, "box2").ID}
			var jobs []store.Job
			for i, names := range tt.avoid {
				var avoid []int64
				for _, n := range names {
					avoid = append(avoid, ids[n])
				}
				jobs = append(jobs, f.createJob(t, store.Job{Package: fmt.Sprintf("pkg%d", i), Release: "unstable", Arch: "amd64",
					AvoidAgents: avoid, CreatedAt: at(time.Duration(i) * time.Second)}))
			}
			got, err := f.s.LeaseJob(t.Context(), store.LeaseParams{AgentID: ids[tt.by], Arch: "amd64", Releases: []string{"unstable"},
				TTL: ttl, Now: at(time.Hour), Nonce: "n-" + tt.by})
			if err != nil {
				t.Fatalf("LeaseJob(agent %s) = %v", tt.by, err)
			}
			if tt.want < 0 {
				if got != nil {
					t.Errorf("LeaseJob(agent %s) = job %d avoiding %v, want none", tt.by, got.ID, got.AvoidAgents)
				}
				for _, j := range jobs {
					diff(t, fmt.Sprintf("job %d after LeaseJob", j.ID), f.mustJob(t, j.ID), j)
				}
				return
			}
			if got == nil || got.ID != jobs[tt.want].ID {
				t.Fatalf("LeaseJob(agent %s) = %+v, want job %d", tt.by, got, jobs[tt.want].ID)
			}
			diff(t, "AvoidAgents of the leased job", got.AvoidAgents, jobs[tt.want].AvoidAgents)
		})
	}
}

// testReusedJob checks CreateJob with ReusedFrom: the new job is done at
// once with the verdict of the job it reuses, which must be done with a
// pass, fail or neutral verdict, and it has no results of its own.
func testReusedJob(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	h := harness("origin")
	start := at(time.Hour)
	origin := map[dep8.Verdict]store.Job{}
	for i, v := range []dep8.Verdict{dep8.VerdictPass, dep8.VerdictFail, dep8.VerdictNeutral} {
		j := f.createJob(t, store.Job{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64"})
		origin[v], _ = f.run(t, j.ID, f.agent.ID, start.Add(time.Duration(i)*time.Minute), v, h)
	}
	queued := f.createJob(t, store.Job{Package: "queued", Release: "unstable", Arch: "amd64"})
	running := f.createJob(t, store.Job{Package: "running", Release: "unstable", Arch: "amd64"})
	f.leaseID(t, running.ID, f.agent.ID, start)
	requeued := f.createJob(t, store.Job{Package: "requeued", Release: "unstable", Arch: "amd64", MaxAttempts: 3})
	f.complete(t, result(f.leaseID(t, requeued.ID, f.agent.ID, start), dep8.VerdictTmpfail), start.Add(time.Second))
	errored := f.createJob(t, store.Job{Package: "errored", Release: "unstable", Arch: "amd64", MaxAttempts: 1})
	f.complete(t, result(f.leaseID(t, errored.ID, f.agent.ID, start), dep8.VerdictTmpfail), start.Add(time.Second))
	if j := f.mustJob(t, errored.ID); j.State != store.JobDone || j.Verdict != dep8.VerdictError {
		t.Fatalf("job %d after its last tmpfail = %s/%s, want done/error", j.ID, j.State, j.Verdict)
	}
	cancelled := f.createJob(t, store.Job{Package: "cancelled", Release: "unstable", Arch: "amd64"})
	if _, err := f.s.CancelJob(ctx, cancelled.ID, start); err != nil {
		t.Fatalf("CancelJob(%d) = %v", cancelled.ID, err)
	}
	reused := f.createJob(t, store.Job{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64",
		ReusedFrom: ptr(origin[dep8.VerdictFail].ID), CreatedAt: at(2 * time.Hour)})

	created := at(3 * time.Hour)
	tests := []struct {
		name     string
		from     int64
		verdict  dep8.Verdict
		wantFrom int64
		err      error
	}{
		{name: "pass", from: origin[dep8.VerdictPass].ID, verdict: dep8.VerdictPass, wantFrom: origin[dep8.VerdictPass].ID},
		{name: "fail", from: origin[dep8.VerdictFail].ID, verdict: dep8.VerdictFail, wantFrom: origin[dep8.VerdictFail].ID},
		{name: "neutral", from: origin[dep8.VerdictNeutral].ID, verdict: dep8.VerdictNeutral, wantFrom: origin[dep8.VerdictNeutral].ID},
		{name: "a reused job points to its origin", from: reused.ID, verdict: dep8.VerdictFail, wantFrom: origin[dep8.VerdictFail].ID},
		{name: "queued", from: queued.ID, err: store.ErrInvalid},
		{name: "running", from: running.ID, err: store.ErrInvalid},
		{name: "queued again after a tmpfail", from: requeued.ID, err: store.ErrInvalid},
		{name: "error verdict", from: errored.ID, err: store.ErrInvalid},
		{name: "cancelled", from: cancelled.ID, err: store.ErrInvalid},
		{name: "unknown", from: 9999, err: store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := store.Job{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64",
				Triggers: []string{"glibc/2.41-1"}, Tests: []string{"smoke"}, SubmittedBy: "volunteer1",
				ReusedFrom: ptr(tt.from), CreatedAt: created}
			if tt.err != nil {
				in.Package = "refused"
			}
			got, err := f.s.CreateJob(ctx, in)
			checkErr(t, fmt.Sprintf("CreateJob(ReusedFrom %d)", tt.from), err, tt.err)
			if err != nil {
				return
			}
			want := store.Job{ID: got.ID, Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64",
				Triggers: []string{"glibc/2.41-1"}, Tests: []string{"smoke"}, SubmittedBy: "volunteer1",
				State: store.JobDone, Verdict: tt.verdict, MaxAttempts: store.DefaultMaxAttempts,
				Priority: store.DefaultPriority, Lane: store.LaneDefault, ReusedFrom: ptr(tt.wantFrom),
				CreatedAt: created, FinishedAt: ptr(created)}
			diff(t, "CreateJob", got, want)
			diff(t, "Job", f.mustJob(t, got.ID), want)
			results, err := f.s.Results(ctx, got.ID)
			if err != nil || len(results) != 0 {
				t.Errorf("Results(reused job %d) = %d results, %v; want none", got.ID, len(results), err)
			}
			_, err = f.s.LatestResult(ctx, got.ID)
			checkErr(t, "LatestResult(reused job)", err, store.ErrNotFound)
		})
	}

	t.Run("refusals wrote nothing", func(t *testing.T) {
		got, err := f.s.ListJobs(ctx, store.JobFilter{Package: "refused"})
		if err != nil || len(got) != 0 {
			t.Errorf("ListJobs(refused) = %d jobs, %v; want none", len(got), err)
		}
		diff(t, "job reused from", f.mustJob(t, origin[dep8.VerdictPass].ID), origin[dep8.VerdictPass])
	})
}

// testReuseCandidates checks which done jobs ReuseCandidates offers, in
// which order, and with what of their latest result.
func testReuseCandidates(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	box2 := f.approvedAgent(t, "box2")
	glibc, bash := "glibc/2.41-1", "bash/5.2-1"
	next := at(time.Hour)
	tick := func() time.Time {
		next = next.Add(time.Hour)
		return next
	}
	// ran creates j and runs it to verdict v on agent a.
	ran := func(j store.Job, a int64, v dep8.Verdict, h string) store.PackageRun {
		t.Helper()
		j.CreatedAt = tick()
		done, r := f.run(t, f.createJob(t, j).ID, a, tick(), v, harness(h))
		return ranOf(done, r)
	}
	hello := func(triggers ...string) store.Job {
		return store.Job{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64", Triggers: triggers}
	}

	empty, err := f.s.ReuseCandidates(ctx, store.ReuseQuery{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64"})
	if err != nil || len(empty) != 0 {
		t.Fatalf("ReuseCandidates on an empty store = %v, %v; want none", empty, err)
	}

	a := ran(hello(glibc, bash), f.agent.ID, dep8.VerdictPass, "a")
	b := ran(hello(bash, glibc), box2.ID, dep8.VerdictFail, "b")
	// c's first attempt failed on the infrastructure; its latest result
	// is from box2.
	cj := f.createJob(t, changed(hello(glibc, bash), func(j *store.Job) { j.CreatedAt = tick() }))
	tmpfail := result(f.leaseID(t, cj.ID, f.agent.ID, tick()), dep8.VerdictTmpfail)
	tmpfail.Harness = harness("c-tmpfail")
	f.complete(t, tmpfail, tick())
	cDone, cResult := f.run(t, cj.ID, box2.ID, tick(), dep8.VerdictNeutral, harness("c"))
	c := ranOf(cDone, cResult)

	ran(changed(hello(glibc, bash), func(j *store.Job) { j.Version = "1.1" }), f.agent.ID, dep8.VerdictPass, "version")
	ran(changed(hello(glibc, bash), func(j *store.Job) { j.Release = "trixie" }), f.agent.ID, dep8.VerdictPass, "release")
	ran(changed(hello(glibc, bash), func(j *store.Job) { j.Arch = "arm64" }), f.agent.ID, dep8.VerdictPass, "arch")
	other := ran(changed(hello(glibc, bash), func(j *store.Job) { j.Package = "other" }), f.agent.ID, dep8.VerdictPass, "other")
	one := ran(hello(glibc), f.agent.ID, dep8.VerdictPass, "one-trigger")
	ran(hello(glibc, bash, "perl/5.40.1-2"), f.agent.ID, dep8.VerdictPass, "more-triggers")
	split := ran(changed(hello(bash, glibc), func(j *store.Job) { j.Tests = []string{"smoke", "upstream"} }), box2.ID, dep8.VerdictPass, "split")
	ran(changed(hello(glibc, bash), func(j *store.Job) { j.Tests = []string{"smoke"} }), f.agent.ID, dep8.VerdictFail, "fewer-tests")
	f.createJob(t, changed(hello(glibc, bash), func(j *store.Job) { j.ReusedFrom = ptr(a.JobID); j.CreatedAt = tick() }))
	errored := f.createJob(t, changed(hello(glibc, bash), func(j *store.Job) { j.MaxAttempts = 1; j.CreatedAt = tick() }))
	f.complete(t, result(f.leaseID(t, errored.ID, f.agent.ID, tick()), dep8.VerdictTmpfail), tick())
	cancelled := f.createJob(t, changed(hello(glibc, bash), func(j *store.Job) { j.CreatedAt = tick() }))
	if _, err := f.s.CancelJob(ctx, cancelled.ID, tick()); err != nil {
		t.Fatalf("CancelJob(%d) = %v", cancelled.ID, err)
	}
	running := f.createJob(t, changed(hello(glibc, bash), func(j *store.Job) { j.CreatedAt = tick() }))
	f.leaseID(t, running.ID, f.agent.ID, tick())
	f.createJob(t, changed(hello(glibc, bash), func(j *store.Job) { j.CreatedAt = tick() }))
	bare := ran(hello(), f.agent.ID, dep8.VerdictPass, "bare")

	query := store.ReuseQuery{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64", Triggers: []string{bash, glibc}}
	tests := []struct {
		name string
		q    store.ReuseQuery
		want []store.PackageRun
	}{
		{"triggers as a set, newest first", query, []store.PackageRun{c, b, a}},
		{"limit", changed(query, func(q *store.ReuseQuery) { q.Limit = 2 }), []store.PackageRun{c, b}},
		{"tests as a set", changed(query, func(q *store.ReuseQuery) { q.Tests = []string{"upstream", "smoke"} }), []store.PackageRun{split}},
		{"no triggers", changed(query, func(q *store.ReuseQuery) { q.Triggers = nil }), []store.PackageRun{bare}},
		{"package", changed(query, func(q *store.ReuseQuery) { q.Package = "other" }), []store.PackageRun{other}},
		{"unknown version", changed(query, func(q *store.ReuseQuery) { q.Version = "9.9" }), nil},
		{"one trigger", changed(query, func(q *store.ReuseQuery) { q.Triggers = []string{glibc} }), []store.PackageRun{one}},
		{"tests nothing ran alone", changed(query, func(q *store.ReuseQuery) { q.Tests = []string{"upstream"} }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.ReuseCandidates(ctx, tt.q)
			if err != nil {
				t.Fatalf("ReuseCandidates(%+v) = %v", tt.q, err)
			}
			diff(t, fmt.Sprintf("ReuseCandidates(%+v)", tt.q), got, tt.want)
		})
	}
}

// changed returns a copy of v that fn changed.
func changed[T any](v T, fn func(*T)) T {
	fn(&v)
	return v
}

// testLatestHarness checks that LatestHarness returns the harness of the
// newest result on a release and arch that is not a tmpfail.
func testLatestHarness(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	_, err := f.s.LatestHarness(ctx, "unstable", "amd64")
	checkErr(t, "LatestHarness on an empty store", err, store.ErrNotFound)

	next := at(time.Hour)
	tick := func() time.Time {
		next = next.Add(time.Hour)
		return next
	}
	ran := func(release, arch string, maxAttempts int, v dep8.Verdict, h string) {
		t.Helper()
		j := f.createJob(t, store.Job{Package: "hello", Release: release, Arch: arch, MaxAttempts: maxAttempts, CreatedAt: tick()})
		f.run(t, j.ID, f.agent.ID, tick(), v, harness(h))
	}
	ran("unstable", "arm64", 0, dep8.VerdictNeutral, "arm-old")
	ran("unstable", "amd64", 0, dep8.VerdictPass, "one")
	ran("unstable", "amd64", 0, dep8.VerdictFail, "two")
	ran("unstable", "amd64", 1, dep8.VerdictTmpfail, "exhausted")
	ran("unstable", "amd64", 3, dep8.VerdictTmpfail, "requeued")
	ran("trixie", "amd64", 0, dep8.VerdictPass, "trixie")
	ran("trixie", "arm64", 1, dep8.VerdictTmpfail, "only-tmpfail")

	tests := []struct {
		release, arch string
		want          dep8.Harness
		err           error
	}{
		{"unstable", "amd64", harness("two"), nil},
		{"trixie", "amd64", harness("trixie"), nil},
		{"unstable", "arm64", harness("arm-old"), nil},
		{"trixie", "arm64", dep8.Harness{}, store.ErrNotFound},
		{"bookworm", "amd64", dep8.Harness{}, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.release+"/"+tt.arch, func(t *testing.T) {
			got, err := f.s.LatestHarness(ctx, tt.release, tt.arch)
			checkErr(t, fmt.Sprintf("LatestHarness(%s, %s)", tt.release, tt.arch), err, tt.err)
			if err == nil {
				diff(t, fmt.Sprintf("LatestHarness(%s, %s)", tt.release, tt.arch), got, tt.want)
			}
		})
	}
}

// testTargetResults checks that TargetResults reports, per package,
// release and arch, when its newest done job without triggers finished.
func testTargetResults(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	got, err := f.s.TargetResults(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("TargetResults on an empty store = %v, %v; want none", got, err)
	}
	job := func(pkg, release, arch string, triggers ...string) store.Job {
		return f.createJob(t, store.Job{Package: pkg, Release: release, Arch: arch, Triggers: triggers})
	}
	h := harness("h")

	// The older job finishes last, and its finish is the one to report.
	older := job("hello", "unstable", "amd64")
	newer := job("hello", "unstable", "amd64")
	f.complete(t, result(f.leaseID(t, older.ID, f.agent.ID, at(time.Hour)), dep8.VerdictPass), at(4*time.Hour))
	f.complete(t, result(f.leaseID(t, newer.ID, f.agent.ID, at(time.Hour)), dep8.VerdictFail), at(3*time.Hour))
	f.run(t, job("hello", "unstable", "amd64", "glibc/2.41-1").ID, f.agent.ID, at(5*time.Hour), dep8.VerdictPass, h)
	if _, err := f.s.CancelJob(ctx, job("hello", "unstable", "amd64").ID, at(6*time.Hour)); err != nil {
		t.Fatalf("CancelJob = %v", err)
	}
	f.leaseID(t, job("hello", "unstable", "amd64").ID, f.agent.ID, at(7*time.Hour))
	job("hello", "unstable", "amd64")

	f.run(t, job("hello", "trixie", "amd64").ID, f.agent.ID, at(time.Hour), dep8.VerdictNeutral, h)
	// A job that ended in error has no result to count.
	errored := f.createJob(t, store.Job{Package: "alpha", Release: "unstable", Arch: "arm64", MaxAttempts: 1})
	f.complete(t, result(f.leaseID(t, errored.ID, f.agent.ID, at(time.Hour)), dep8.VerdictTmpfail), at(2*time.Hour))
	// A reused job ran nothing: its origin's result counts, not it.
	origin, _ := f.run(t, job("beta", "unstable", "amd64", "glibc/2.41-1").ID, f.agent.ID, at(time.Hour), dep8.VerdictPass, h)
	f.createJob(t, store.Job{Package: "beta", Release: "unstable", Arch: "amd64", ReusedFrom: ptr(origin.ID), CreatedAt: at(8 * time.Hour)})
	f.createJob(t, store.Job{Package: "beta", Release: "unstable", Arch: "amd64", Triggers: []string{"bash/5.2-1"},
		ReusedFrom: ptr(origin.ID), CreatedAt: at(9 * time.Hour)})
	f.leaseID(t, job("zeta", "unstable", "amd64").ID, f.agent.ID, at(time.Hour))
	job("omega", "unstable", "amd64")

	got, err = f.s.TargetResults(ctx)
	if err != nil {
		t.Fatalf("TargetResults = %v", err)
	}
	diff(t, "TargetResults", got, []store.TargetResult{
		{Package: "hello", Release: "trixie", Arch: "amd64", Finished: at(time.Hour + time.Minute)},
		{Package: "hello", Release: "unstable", Arch: "amd64", Finished: at(4 * time.Hour)},
	})
}

// testPackageRunsReused checks that PackageRuns shows a reused job as a
// run with the agent, harness and tests of its origin's latest result,
// and carries the tests, needs and avoided agents of jobs still to run.
func testPackageRunsReused(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	box2 := f.approvedAgent(t, "box2")
	triggers := []string{"glibc/2.41-1"}

	origin := f.createJob(t, store.Job{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64",
		Triggers: triggers, Tests: []string{"smoke"}, MaxAttempts: 2})
	failed := result(f.leaseID(t, origin.ID, f.agent.ID, at(time.Hour)), dep8.VerdictTmpfail)
	failed.Harness = harness("broken")
	f.complete(t, failed, at(time.Hour+time.Minute))
	done, latest := f.run(t, origin.ID, box2.ID, at(2*time.Hour), dep8.VerdictPass, harness("good"))

	reused := f.createJob(t, store.Job{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64",
		Triggers: triggers, Tests: []string{"smoke"}, ReusedFrom: ptr(origin.ID), CreatedAt: at(3 * time.Hour)})
	again := f.createJob(t, store.Job{Package: "hello", Version: "1.0", Release: "unstable", Arch: "amd64",
		ReusedFrom: ptr(reused.ID), CreatedAt: at(4 * time.Hour)})

	needs := store.JobNeeds{Tests: []dep8.Requirements{{Test: "reboot", Restrictions: []string{"needs-reboot"}, NeedsReboot: true}},
		Labels: []string{"gpu"}, MemoryMB: 2048, DiskMB: 10240}
	running := f.createJob(t, store.Job{Package: "hello", Version: "1.1", Release: "unstable", Arch: "amd64",
		Tests: []string{"command1"}, Needs: store.JobNeeds{Labels: []string{"big"}}, AvoidAgents: []int64{f.agent.ID}})
	f.leaseID(t, running.ID, box2.ID, at(5*time.Hour))
	queued := f.createJob(t, store.Job{Package: "hello", Version: "1.1", Release: "unstable", Arch: "amd64",
		Tests: []string{"reboot"}, Needs: needs, AvoidAgents: []int64{f.agent.ID, box2.ID}})

	runs, active, err := f.s.PackageRuns(ctx, "hello")
	if err != nil {
		t.Fatalf("PackageRuns(hello) = %v", err)
	}
	first := ranOf(done, latest)
	fromOrigin := func(j store.Job) store.PackageRun {
		r := first
		r.JobID, r.Finished, r.ReusedFrom, r.TestNames, r.Triggers = j.ID, j.CreatedAt, origin.ID, j.Tests, j.Triggers
		return r
	}
	diff(t, "PackageRuns(hello) runs", runs, []store.PackageRun{
		first,
		fromOrigin(reused),
		fromOrigin(again),
	})
	diff(t, "PackageRuns(hello) active", active, []store.ActiveJob{
		{JobID: running.ID, Package: "hello", Version: "1.1", Release: "unstable", Arch: "amd64", Running: true,
			Tests: []string{"command1"}, Needs: store.JobNeeds{Labels: []string{"big"}}, AvoidAgents: []int64{f.agent.ID}},
		{JobID: queued.ID, Package: "hello", Version: "1.1", Release: "unstable", Arch: "amd64",
			Tests: []string{"reboot"}, Needs: needs, AvoidAgents: []int64{f.agent.ID, box2.ID}},
	})
}
