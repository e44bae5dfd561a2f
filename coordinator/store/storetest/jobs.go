package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func testBlobs(t *testing.T, newStore func(t *testing.T) store.Store) {
	s := newStore(t)
	ctx := t.Context()
	log := blobOf("log contents")
	empty := blobOf("")

	tests := []struct {
		name string
		in   store.Blob
		want error
	}{
		{"new", log, nil},
		{"again", log, nil},
		{"again later", store.Blob{SHA256: log.SHA256, Size: log.Size, CreatedAt: at(time.Hour)}, nil},
		{"empty file", empty, nil},
		{"other size", store.Blob{SHA256: log.SHA256, Size: log.Size + 1}, store.ErrConflict},
		{"upper case sum", store.Blob{SHA256: "AB" + log.SHA256[2:], Size: 1}, store.ErrInvalid},
		{"short sum", store.Blob{SHA256: log.SHA256[1:], Size: 1}, store.ErrInvalid},
		{"negative size", store.Blob{SHA256: blobOf("x").SHA256, Size: -1}, store.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, "AddBlob", s.AddBlob(ctx, tt.in), tt.want)
		})
	}

	lookups := []struct {
		name string
		sum  string
		want store.Blob
		err  error
	}{
		{"log keeps first row", log.SHA256, log, nil},
		{"empty", empty.SHA256, empty, nil},
		{"unknown", blobOf("never added").SHA256, store.Blob{}, store.ErrNotFound},
		{"refused", blobOf("x").SHA256, store.Blob{}, store.ErrNotFound},
	}
	for _, tt := range lookups {
		t.Run("lookup "+tt.name, func(t *testing.T) {
			got, err := s.Blob(ctx, tt.sum)
			checkErr(t, "Blob", err, tt.err)
			diff(t, "Blob", got, tt.want)
		})
	}
}

func testCreateJob(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	src := f.blob(t, "source tarball")
	unknown := blobOf("not uploaded")

	tests := []struct {
		name string
		in   store.Job
		want store.Job
		err  error
	}{
		{
			name: "archive package",
			in: store.Job{Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64",
				Triggers: []string{"hello/2.10-3", "glibc/2.41-1"}, SubmittedBy: "volunteer1", CreatedAt: t0()},
			want: store.Job{Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64",
				Triggers: []string{"hello/2.10-3", "glibc/2.41-1"}, State: store.JobQueued,
				MaxAttempts: store.DefaultMaxAttempts, SubmittedBy: "volunteer1", CreatedAt: t0(),
				Priority: store.DefaultPriority, Lane: store.LaneDefault},
		},
		{
			name: "split off with needs",
			in: store.Job{Package: "hello", Release: "unstable", Arch: "amd64", Priority: 8, Lane: "fanout",
				Tests: []string{"reboot", "command1"}, AvoidAgents: []int64{7},
				Needs: store.JobNeeds{Tests: []dep8.Requirements{{Test: "reboot", Restrictions: []string{"needs-reboot"}, NeedsReboot: true}},
					Labels: []string{"gpu"}, MemoryMB: 512}, CreatedAt: t0()},
			want: store.Job{Package: "hello", Release: "unstable", Arch: "amd64", Priority: 8, Lane: "fanout",
				Tests: []string{"reboot", "command1"}, AvoidAgents: []int64{7},
				Needs: store.JobNeeds{Tests: []dep8.Requirements{{Test: "reboot", Restrictions: []string{"needs-reboot"}, NeedsReboot: true}},
					Labels: []string{"gpu"}, MemoryMB: 512},
				State: store.JobQueued, MaxAttempts: store.DefaultMaxAttempts, CreatedAt: t0()},
		},
		{name: "priority too high", in: store.Job{Package: "hello", Release: "unstable", Arch: "amd64", Priority: 11}, err: store.ErrInvalid},
		{name: "bad lane", in: store.Job{Package: "hello", Release: "unstable", Arch: "amd64", Lane: "Fan Out"}, err: store.ErrInvalid},
		{name: "bad test name", in: store.Job{Package: "hello", Release: "unstable", Arch: "amd64", Tests: []string{"../x"}}, err: store.ErrInvalid},
		{name: "reuse of an unknown job", in: store.Job{Package: "hello", Release: "unstable", Arch: "amd64", ReusedFrom: ptr(int64(9999))}, err: store.ErrNotFound},
		{
			name: "uploaded source",
			in: store.Job{Package: "mypkg", Release: "trixie", Arch: "arm64", MaxAttempts: 5, State: store.JobQueued,
				Source: &store.Source{SHA256: src.SHA256, Size: src.Size, Kind: "tree", Entry: "mypkg-1.0"}, CreatedAt: t0()},
			want: store.Job{Package: "mypkg", Release: "trixie", Arch: "arm64", MaxAttempts: 5, State: store.JobQueued,
				Source: &store.Source{SHA256: src.SHA256, Size: src.Size, Kind: "tree", Entry: "mypkg-1.0"}, CreatedAt: t0(),
				Priority: store.DefaultPriority, Lane: store.LaneDefault},
		},
		{
			name: "source not uploaded",
			in: store.Job{Package: "mypkg", Release: "trixie", Arch: "arm64",
				Source: &store.Source{SHA256: unknown.SHA256, Size: unknown.Size, Kind: "tree", Entry: "."}},
			err: store.ErrUnknownBlob,
		},
		{
			name: "source size differs from blob",
			in: store.Job{Package: "mypkg", Release: "trixie", Arch: "arm64",
				Source: &store.Source{SHA256: src.SHA256, Size: src.Size + 1, Kind: "tree", Entry: "."}},
			err: store.ErrInvalid,
		},
		{
			name: "source without kind",
			in: store.Job{Package: "mypkg", Release: "trixie", Arch: "arm64",
				Source: &store.Source{SHA256: src.SHA256, Size: src.Size, Entry: "."}},
			err: store.ErrInvalid,
		},
		{name: "no package", in: store.Job{Release: "unstable", Arch: "amd64"}, err: store.ErrInvalid},
		{name: "no release", in: store.Job{Package: "hello", Arch: "amd64"}, err: store.ErrInvalid},
		{name: "no arch", in: store.Job{Package: "hello", Release: "unstable"}, err: store.ErrInvalid},
		{name: "created running", in: store.Job{Package: "hello", Release: "unstable", Arch: "amd64", State: store.JobRunning}, err: store.ErrInvalid},
		{name: "negative attempts", in: store.Job{Package: "hello", Release: "unstable", Arch: "amd64", MaxAttempts: -1}, err: store.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.CreateJob(ctx, tt.in)
			checkErr(t, "CreateJob", err, tt.err)
			if err != nil {
				return
			}
			want := tt.want
			want.ID = got.ID
			diff(t, "CreateJob", got, want)
			diff(t, "Job", f.mustJob(t, got.ID), got)
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		_, err := f.s.Job(ctx, 9999)
		checkErr(t, "Job(9999)", err, store.ErrNotFound)
	})
}

func testListJobs(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	var hello, other []store.Job
	for i := range store.DefaultListLimit + 1 {
		hello = append(hello, f.createJob(t, store.Job{Package: "hello", Release: "unstable", Arch: "amd64", CreatedAt: at(time.Duration(i) * time.Second)}))
	}
	for range 3 {
		other = append(other, f.job(t, "other", 0))
	}
	leased := f.lease(t, f.agent.ID, at(time.Hour))
	if leased.ID != hello[0].ID {
		t.Fatalf("LeaseJob leased job %d, want the oldest, %d", leased.ID, hello[0].ID)
	}

	ids := func(js []store.Job) []int64 {
		var out []int64
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	newest := func(js []store.Job, n int) []int64 {
		var out []int64
		for i := len(js) - 1; i >= 0 && len(out) < n; i-- {
			out = append(out, js[i].ID)
		}
		return out
	}
	tests := []struct {
		name   string
		filter store.JobFilter
		want   []int64
	}{
		{"default limit", store.JobFilter{}, append(newest(other, 3), newest(hello, store.DefaultListLimit-3)...)},
		{"limit", store.JobFilter{Limit: 2}, newest(other, 2)},
		{"package", store.JobFilter{Package: "other"}, newest(other, 3)},
		{"package and limit", store.JobFilter{Package: "hello", Limit: 3}, newest(hello, 3)},
		{"state", store.JobFilter{State: store.JobRunning}, []int64{leased.ID}},
		{"package and state", store.JobFilter{Package: "other", State: store.JobRunning}, nil},
		{"unknown package", store.JobFilter{Package: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.ListJobs(ctx, tt.filter)
			if err != nil {
				t.Fatalf("ListJobs(%+v) = %v", tt.filter, err)
			}
			diff(t, fmt.Sprintf("ListJobs(%+v)", tt.filter), ids(got), tt.want)
		})
	}
}

func testLeaseJob(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	armTrixie := f.createJob(t, store.Job{Package: "a", Release: "trixie", Arch: "arm64"})
	amdTrixie := f.createJob(t, store.Job{Package: "b", Release: "trixie", Arch: "amd64"})
	amdSid1 := f.createJob(t, store.Job{Package: "c", Release: "unstable", Arch: "amd64"})
	amdSid2 := f.createJob(t, store.Job{Package: "d", Release: "unstable", Arch: "amd64"})
	other := f.approvedAgent(t, "box2")

	params := func(agent int64, arch string, releases ...string) store.LeaseParams {
		return store.LeaseParams{AgentID: agent, Arch: arch, Releases: releases, TTL: ttl, Now: at(time.Hour), Nonce: "n-" + arch}
	}
	tests := []struct {
		name   string
		params store.LeaseParams
		want   int64 // job id; 0 for none
		err    error
	}{
		{"release not served", params(f.agent.ID, "amd64", "bookworm"), 0, nil},
		{"no releases", params(f.agent.ID, "amd64"), 0, nil},
		{"arch not queued", params(f.agent.ID, "riscv64", "unstable", "trixie"), 0, nil},
		{"oldest of several releases", params(f.agent.ID, "amd64", "unstable", "trixie"), amdTrixie.ID, nil},
		{"next oldest", params(other.ID, "amd64", "unstable", "trixie"), amdSid1.ID, nil},
		{"only matching release", params(f.agent.ID, "amd64", "unstable"), amdSid2.ID, nil},
		{"all leased", params(f.agent.ID, "amd64", "unstable", "trixie"), 0, nil},
		{"arch", params(other.ID, "arm64", "trixie"), armTrixie.ID, nil},
		{"unknown agent", params(9999, "amd64", "unstable"), 0, store.ErrNotFound},
		{"no agent", params(0, "amd64", "unstable"), 0, store.ErrInvalid},
		{"no arch", params(f.agent.ID, "", "unstable"), 0, store.ErrInvalid},
		{"no nonce", store.LeaseParams{AgentID: f.agent.ID, Arch: "amd64", Releases: []string{"unstable"}, TTL: ttl}, 0, store.ErrInvalid},
		{"no TTL", store.LeaseParams{AgentID: f.agent.ID, Arch: "amd64", Releases: []string{"unstable"}, Nonce: "n"}, 0, store.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before store.Job
			if tt.want != 0 {
				before = f.mustJob(t, tt.want)
			}
			got, err := f.s.LeaseJob(ctx, tt.params)
			checkErr(t, "LeaseJob", err, tt.err)
			if tt.want == 0 {
				if got != nil {
					t.Errorf("LeaseJob(%+v) = job %d, want none", tt.params, got.ID)
				}
				return
			}
			if got == nil {
				t.Fatalf("LeaseJob(%+v) = nil, want job %d", tt.params, tt.want)
			}
			want := before
			want.State = store.JobRunning
			want.Attempt = 1
			want.AgentID = ptr(tt.params.AgentID)
			want.Nonce = tt.params.Nonce
			want.LeaseExpires = ptr(tt.params.Now.Add(tt.params.TTL))
			want.StartedAt = ptr(tt.params.Now)
			diff(t, "LeaseJob", *got, want)
			diff(t, "Job after LeaseJob", f.mustJob(t, tt.want), want)
		})
	}
	t.Run("exclude", func(t *testing.T) { testLeaseExclude(t, newStore) })
}

// testLeaseExclude checks that LeaseJob passes over the jobs Exclude
// refuses, asks about them oldest first with their stored fields, and
// leaves them queued for another agent.
func testLeaseExclude(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	blocked := f.createJob(t, store.Job{Package: "linux-signed", Version: "6.12.9-1", Release: "trixie", Arch: "amd64"})
	free := f.createJob(t, store.Job{Package: "hello", Release: "trixie", Arch: "amd64"})
	other := f.approvedAgent(t, "box2")
	var asked []store.Job
	p := store.LeaseParams{AgentID: f.agent.ID, Arch: "amd64", Releases: []string{"trixie"}, TTL: ttl, Now: at(time.Hour), Nonce: "n-1",
		Exclude: func(j store.Job) bool {
			asked = append(asked, j)
			return j.Package == "linux-signed"
		}}
	got, err := f.s.LeaseJob(ctx, p)
	if err != nil || got == nil || got.ID != free.ID {
		t.Fatalf("LeaseJob with linux-signed excluded = %+v, %v; want job %d", got, err, free.ID)
	}
	diff(t, "jobs Exclude was asked about", asked, []store.Job{blocked, free})
	diff(t, "excluded job after LeaseJob", f.mustJob(t, blocked.ID), blocked)

	asked = nil
	p.Nonce = "n-2"
	if got, err := f.s.LeaseJob(ctx, p); err != nil || got != nil {
		t.Errorf("LeaseJob with every queued job excluded = %+v, %v; want none", got, err)
	}
	diff(t, "jobs Exclude was asked about", asked, []store.Job{blocked})

	p.AgentID, p.Exclude, p.Nonce = other.ID, nil, "n-3"
	if got, err := f.s.LeaseJob(ctx, p); err != nil || got == nil || got.ID != blocked.ID {
		t.Errorf("LeaseJob by another agent without Exclude = %+v, %v; want job %d", got, err, blocked.ID)
	}
}

func testLeaseExclusive(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	const jobs, workers = 24, 8
	want := map[int64]bool{}
	for i := range jobs {
		want[f.job(t, fmt.Sprintf("pkg%d", i), 0).ID] = true
	}
	agents := make([]store.Agent, workers)
	for i := range agents {
		agents[i] = f.approvedAgent(t, fmt.Sprintf("worker%d", i))
	}

	var (
		mu     sync.Mutex
		leased = map[int64][]int64{} // job id -> agents that got it
		errs   []error
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for w, a := range agents {
		wg.Go(func() {
			<-start
			for n := range jobs + 1 {
				j, err := f.s.LeaseJob(t.Context(), store.LeaseParams{
					AgentID: a.ID, Arch: "amd64", Releases: []string{"unstable"}, TTL: ttl, Now: at(time.Hour),
					Nonce: fmt.Sprintf("w%d-%d", w, n),
				})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				if j != nil {
					leased[j.ID] = append(leased[j.ID], a.ID)
				}
				mu.Unlock()
				if err != nil || j == nil {
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()

	for _, err := range errs {
		t.Errorf("concurrent LeaseJob = %v", err)
	}
	for id, by := range leased {
		if len(by) != 1 {
			t.Errorf("job %d leased to agents %v, want exactly one", id, by)
		}
		if !want[id] {
			t.Errorf("job %d leased, but was not queued", id)
		}
	}
	if len(leased) != jobs {
		t.Errorf("concurrent LeaseJob leased %d jobs, want %d", len(leased), jobs)
	}
}

func testExtendAndCheckLease(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	other := f.approvedAgent(t, "box2")
	start := at(time.Hour)
	f.job(t, "hello", 0)
	j := f.lease(t, f.agent.ID, start)
	done := f.job(t, "done", 0)
	doneLease := f.lease(t, f.agent.ID, start)
	if doneLease.ID != done.ID {
		t.Fatalf("LeaseJob = job %d, want %d", doneLease.ID, done.ID)
	}
	f.complete(t, result(doneLease, dep8.VerdictPass), start)
	held := ref(j)

	tests := []struct {
		name     string
		ref      store.LeaseRef
		now      time.Time
		until    time.Time
		stage    string
		err      error // of ExtendLease
		checkErr error // of CheckLease
	}{
		{"extend", held, start.Add(ttl / 2), start.Add(2 * ttl), "testbed", nil, nil},
		{"extend keeps stage", held, start.Add(ttl), start.Add(3 * ttl), "", nil, nil},
		{"extend with stage", held, start.Add(2 * ttl), start.Add(4 * ttl), "testing", nil, nil},
		{"until in the past", held, start.Add(2 * ttl), start.Add(ttl), "testing", store.ErrInvalid, nil},
		{"wrong attempt", store.LeaseRef{JobID: j.ID, Attempt: 2, AgentID: f.agent.ID}, start, start.Add(5 * ttl), "", store.ErrStaleLease, store.ErrStaleLease},
		{"earlier attempt", store.LeaseRef{JobID: j.ID, Attempt: 0, AgentID: f.agent.ID}, start, start.Add(5 * ttl), "", store.ErrStaleLease, store.ErrStaleLease},
		{"wrong agent", store.LeaseRef{JobID: j.ID, Attempt: 1, AgentID: other.ID}, start, start.Add(5 * ttl), "", store.ErrStaleLease, store.ErrStaleLease},
		{"job done", ref(doneLease), start, start.Add(5 * ttl), "", store.ErrStaleLease, store.ErrStaleLease},
		{"unknown job", store.LeaseRef{JobID: 9999, Attempt: 1, AgentID: f.agent.ID}, start, start.Add(5 * ttl), "", store.ErrNotFound, store.ErrNotFound},
		{"at expiry", held, start.Add(4 * ttl), start.Add(5 * ttl), "", store.ErrStaleLease, store.ErrStaleLease},
		{"after expiry", held, start.Add(5 * ttl), start.Add(6 * ttl), "", store.ErrStaleLease, store.ErrStaleLease},
	}
	stage := ""
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.s.Job(ctx, tt.ref.JobID)
			checked, err := f.s.CheckLease(ctx, tt.ref, tt.now)
			checkErr(t, "CheckLease", err, tt.checkErr)
			if err == nil {
				diff(t, "CheckLease", checked, before)
			}

			got, err := f.s.ExtendLease(ctx, tt.ref, tt.now, tt.until, tt.stage)
			checkErr(t, "ExtendLease", err, tt.err)
			if err != nil {
				after, _ := f.s.Job(ctx, tt.ref.JobID)
				diff(t, "Job after refused ExtendLease", after, before)
				return
			}
			if tt.stage != "" {
				stage = tt.stage
			}
			want := j
			want.LeaseExpires = ptr(tt.until)
			want.Stage = stage
			diff(t, "ExtendLease", got, want)
			diff(t, "Job after ExtendLease", f.mustJob(t, j.ID), want)
		})
	}
}

func testExpireLeases(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	other := f.approvedAgent(t, "box2")
	j := f.job(t, "hello", 2)
	start := at(time.Hour)

	first := f.lease(t, f.agent.ID, start)
	expire := func(now time.Time, want []int64) {
		t.Helper()
		got, err := f.s.ExpireLeases(ctx, now)
		if err != nil {
			t.Fatalf("ExpireLeases(%v) = %v", now, err)
		}
		diff(t, fmt.Sprintf("ExpireLeases(%v)", now), got, want)
	}

	expire(start.Add(ttl-1), nil)
	diff(t, "Job before expiry", f.mustJob(t, j.ID), first)

	expire(start.Add(ttl), []int64{j.ID})
	requeued := f.mustJob(t, j.ID)
	if requeued.State != store.JobQueued || requeued.AgentID != nil || requeued.Nonce != "" || requeued.LeaseExpires != nil ||
		requeued.Attempt != 1 || requeued.Reason == "" || requeued.Verdict != "" {
		t.Errorf("Job after first expiry = %+v, want queued, attempt 1, no agent, nonce or lease, a reason", requeued)
	}
	expire(start.Add(ttl), nil)

	_, err := f.s.CompleteJob(ctx, result(first, dep8.VerdictPass), start.Add(ttl))
	checkErr(t, "CompleteJob(expired attempt)", err, store.ErrStaleLease)
	_, err = f.s.CheckLease(ctx, ref(first), start)
	checkErr(t, "CheckLease(expired attempt)", err, store.ErrStaleLease)

	second := f.lease(t, other.ID, start.Add(2*ttl))
	if second.Attempt != 2 || *second.AgentID != other.ID || second.Nonce == first.Nonce {
		t.Errorf("second lease = attempt %d agent %d nonce %q, want attempt 2, agent %d, a new nonce", second.Attempt, *second.AgentID, second.Nonce, other.ID)
	}
	_, err = f.s.ExtendLease(ctx, ref(first), start.Add(2*ttl), start.Add(4*ttl), "")
	checkErr(t, "ExtendLease(first attempt)", err, store.ErrStaleLease)

	expire(start.Add(3*ttl), []int64{j.ID})
	exhausted := f.mustJob(t, j.ID)
	if exhausted.State != store.JobDone || exhausted.Verdict != dep8.VerdictError || exhausted.Reason == "" ||
		exhausted.FinishedAt == nil || !exhausted.FinishedAt.Equal(start.Add(3*ttl)) || exhausted.Attempt != 2 || exhausted.LeaseExpires != nil {
		t.Errorf("Job after last expiry = %+v, want done with verdict error, a reason, finished, attempt 2", exhausted)
	}
	if got, err := f.s.LeaseJob(ctx, store.LeaseParams{AgentID: f.agent.ID, Arch: "amd64", Releases: []string{"unstable"}, TTL: ttl, Now: start.Add(4 * ttl), Nonce: "again"}); err != nil || got != nil {
		t.Errorf("LeaseJob after exhaustion = %v, %v; want nil, nil", got, err)
	}
	expire(start.Add(10*ttl), nil)
}

func testCompleteJob(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	logBlob := f.blob(t, "the log")
	artifact := f.blob(t, "an artifact")
	start := at(time.Hour)

	for _, v := range []dep8.Verdict{dep8.VerdictPass, dep8.VerdictFail, dep8.VerdictNeutral} {
		t.Run(string(v), func(t *testing.T) {
			f.job(t, "pkg-"+string(v), 0)
			j := f.lease(t, f.agent.ID, start)
			r := result(j, v, logBlob, artifact)
			got := f.complete(t, r, start.Add(time.Second))

			want := j
			want.State = store.JobDone
			want.Verdict = v
			want.LeaseExpires = nil
			want.Transport = "quic"
			want.FinishedAt = ptr(start.Add(time.Second))
			diff(t, "CompleteJob", got, want)
			diff(t, "Job after CompleteJob", f.mustJob(t, j.ID), want)

			r.CreatedAt = start.Add(time.Second)
			latest, err := f.s.LatestResult(ctx, j.ID)
			if err != nil {
				t.Fatalf("LatestResult(%d) = %v", j.ID, err)
			}
			diff(t, "LatestResult", latest, r)
			all, err := f.s.Results(ctx, j.ID)
			if err != nil {
				t.Fatalf("Results(%d) = %v", j.ID, err)
			}
			diff(t, "Results", all, []store.Result{r})
		})
	}

	t.Run("no tests or blobs", func(t *testing.T) {
		f.job(t, "bare", 0)
		j := f.lease(t, f.agent.ID, start)
		r := result(j, dep8.VerdictNeutral)
		r.Tests = nil
		f.complete(t, r, start)
		got, err := f.s.LatestResult(ctx, j.ID)
		if err != nil {
			t.Fatalf("LatestResult(%d) = %v", j.ID, err)
		}
		r.CreatedAt = start
		diff(t, "LatestResult", got, r)
	})
}

func testCompleteJobRefusals(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	other := f.approvedAgent(t, "box2")
	logBlob := f.blob(t, "the log")
	start := at(time.Hour)
	f.job(t, "hello", 0)
	j := f.lease(t, f.agent.ID, start)
	good := result(j, dep8.VerdictFail, logBlob)

	mod := func(fn func(r *store.Result)) store.Result {
		r := good
		r.Tests = append([]dep8.Test(nil), good.Tests...)
		r.Blobs = append([]store.BlobRef(nil), good.Blobs...)
		fn(&r)
		return r
	}
	refused := []struct {
		name string
		r    store.Result
		want error
	}{
		{"unknown blob", mod(func(r *store.Result) {
			b := blobOf("never uploaded")
			r.Blobs = append(r.Blobs, store.BlobRef{Name: "artifact", SHA256: b.SHA256, Size: b.Size})
		}), store.ErrUnknownBlob},
		{"blob size differs", mod(func(r *store.Result) { r.Blobs[0].Size++ }), store.ErrInvalid},
		{"bad blob sum", mod(func(r *store.Result) { r.Blobs[0].SHA256 = "nope" }), store.ErrInvalid},
		{"wrong attempt", mod(func(r *store.Result) { r.Attempt = 2 }), store.ErrStaleLease},
		{"wrong agent", mod(func(r *store.Result) { r.AgentID = other.ID }), store.ErrStaleLease},
		{"unknown job", mod(func(r *store.Result) { r.JobID = 9999 }), store.ErrNotFound},
		{"verdict error", mod(func(r *store.Result) { r.Verdict = dep8.VerdictError }), store.ErrInvalid},
		{"verdict cancelled", mod(func(r *store.Result) { r.Verdict = dep8.VerdictCancelled }), store.ErrInvalid},
		{"no verdict", mod(func(r *store.Result) { r.Verdict = "" }), store.ErrInvalid},
		{"no envelope", mod(func(r *store.Result) { r.Envelope = nil }), store.ErrInvalid},
		{"bad test result", mod(func(r *store.Result) { r.Tests[0].Result = "WIN" }), store.ErrInvalid},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.s.CompleteJob(ctx, tt.r, start)
			checkErr(t, "CompleteJob", err, tt.want)
			diff(t, "Job after refused CompleteJob", f.mustJob(t, j.ID), j)
			_, err = f.s.LatestResult(ctx, j.ID)
			checkErr(t, "LatestResult after refused CompleteJob", err, store.ErrNotFound)
		})
	}

	first := f.complete(t, good, start.Add(time.Second))
	good.CreatedAt = start.Add(time.Second)

	again := []struct {
		name string
		r    store.Result
	}{
		{"same result again", good},
		{"different result for the same attempt", mod(func(r *store.Result) {
			r.Verdict = dep8.VerdictPass
			r.Envelope = []byte(`{"forged":true}`)
		})},
	}
	for _, tt := range again {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.s.CompleteJob(ctx, tt.r, start.Add(2*time.Second))
			checkErr(t, "CompleteJob(duplicate)", err, store.ErrStaleLease)
			diff(t, "Job after duplicate", f.mustJob(t, j.ID), first)
			all, err := f.s.Results(ctx, j.ID)
			if err != nil {
				t.Fatalf("Results(%d) = %v", j.ID, err)
			}
			diff(t, "Results after duplicate", all, []store.Result{good})
		})
	}
}

func testTmpfail(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	other := f.approvedAgent(t, "box2")
	start := at(time.Hour)
	j := f.job(t, "flaky-infra", 2)

	first := f.lease(t, f.agent.ID, start)
	r1 := result(first, dep8.VerdictTmpfail)
	got := f.complete(t, r1, start.Add(time.Second))
	if got.State != store.JobQueued || got.Verdict != "" || got.AgentID != nil || got.Nonce != "" ||
		got.LeaseExpires != nil || got.Attempt != 1 || got.Reason == "" || got.FinishedAt != nil || got.Transport != "quic" {
		t.Errorf("CompleteJob(tmpfail, attempt 1 of 2) = %+v, want queued again with a reason", got)
	}
	diff(t, "Job after tmpfail", f.mustJob(t, j.ID), got)

	_, err := f.s.CompleteJob(ctx, r1, start.Add(2*time.Second))
	checkErr(t, "CompleteJob(tmpfail again)", err, store.ErrStaleLease)

	second := f.lease(t, other.ID, start.Add(time.Minute))
	if second.Attempt != 2 {
		t.Errorf("LeaseJob after tmpfail = attempt %d, want 2", second.Attempt)
	}
	r2 := result(second, dep8.VerdictTmpfail)
	r2.Transport = "tcp"
	got = f.complete(t, r2, start.Add(2*time.Minute))
	if got.State != store.JobDone || got.Verdict != dep8.VerdictError || got.Reason == "" || got.Attempt != 2 ||
		got.FinishedAt == nil || !got.FinishedAt.Equal(start.Add(2*time.Minute)) || got.Transport != "tcp" {
		t.Errorf("CompleteJob(tmpfail, attempt 2 of 2) = %+v, want done with verdict error and a reason", got)
	}

	r1.CreatedAt = start.Add(time.Second)
	r2.CreatedAt = start.Add(2 * time.Minute)
	all, err := f.s.Results(ctx, j.ID)
	if err != nil {
		t.Fatalf("Results(%d) = %v", j.ID, err)
	}
	diff(t, "Results", all, []store.Result{r1, r2})
	latest, err := f.s.LatestResult(ctx, j.ID)
	if err != nil {
		t.Fatalf("LatestResult(%d) = %v", j.ID, err)
	}
	diff(t, "LatestResult", latest, r2)
}

func testCancelJob(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	start := at(time.Hour)
	running := f.job(t, "running", 0)
	runningLease := f.lease(t, f.agent.ID, start)
	if runningLease.ID != running.ID {
		t.Fatalf("LeaseJob = job %d, want %d", runningLease.ID, running.ID)
	}
	finished := f.job(t, "finished", 0)
	finishedLease := f.lease(t, f.agent.ID, start)
	if finishedLease.ID != finished.ID {
		t.Fatalf("LeaseJob = job %d, want %d", finishedLease.ID, finished.ID)
	}
	f.complete(t, result(finishedLease, dep8.VerdictPass), start)
	queued := f.job(t, "queued", 0)

	tests := []struct {
		name string
		id   int64
		want error
	}{
		{"queued", queued.ID, nil},
		{"running", running.ID, nil},
		{"cancelled", queued.ID, store.ErrConflict},
		{"done", finished.ID, store.ErrConflict},
		{"unknown", 9999, store.ErrNotFound},
	}
	now := start.Add(time.Minute)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before store.Job
			if tt.id != 9999 {
				before = f.mustJob(t, tt.id)
			}
			got, err := f.s.CancelJob(ctx, tt.id, now)
			checkErr(t, "CancelJob", err, tt.want)
			if err != nil {
				if tt.id != 9999 {
					diff(t, "Job after refused CancelJob", f.mustJob(t, tt.id), before)
				}
				return
			}
			want := before
			want.State = store.JobCancelled
			want.Verdict = dep8.VerdictCancelled
			want.LeaseExpires = nil
			want.FinishedAt = ptr(now)
			diff(t, "CancelJob", got, want)
		})
	}

	t.Run("cancelled lease is stale", func(t *testing.T) {
		_, err := f.s.CheckLease(ctx, ref(runningLease), start)
		checkErr(t, "CheckLease(cancelled)", err, store.ErrStaleLease)
		_, err = f.s.ExtendLease(ctx, ref(runningLease), start, start.Add(ttl), "")
		checkErr(t, "ExtendLease(cancelled)", err, store.ErrStaleLease)
		_, err = f.s.CompleteJob(ctx, result(runningLease, dep8.VerdictPass), start)
		checkErr(t, "CompleteJob(cancelled)", err, store.ErrStaleLease)
		if got, err := f.s.LeaseJob(ctx, store.LeaseParams{AgentID: f.agent.ID, Arch: "amd64", Releases: []string{"unstable"}, TTL: ttl, Now: start, Nonce: "x"}); err != nil || got != nil {
			t.Errorf("LeaseJob after cancelling every queued job = %v, %v; want nil, nil", got, err)
		}
	})
}

func testResults(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	j := f.job(t, "hello", 0)

	tests := []struct {
		name string
		id   int64
		err  error
	}{
		{"job without results", j.ID, nil},
		{"unknown job", 9999, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.Results(ctx, tt.id)
			checkErr(t, "Results", err, tt.err)
			if len(got) != 0 {
				t.Errorf("Results(%d) = %d results, want none", tt.id, len(got))
			}
			_, err = f.s.LatestResult(ctx, tt.id)
			checkErr(t, "LatestResult", err, store.ErrNotFound)
		})
	}
}
