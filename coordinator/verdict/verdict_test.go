package verdict

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

const trig = "glibc/2.36-9"

var (
	t0       = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	harnessA = dep8.Harness{AgentVersion: "1.0", AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:aa"}
	harnessB = dep8.Harness{AgentVersion: "1.1", AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:bb"}
)

// run is a finished job of hello 2.10-3 on bookworm/amd64 with harness A,
// hour hours after t0; no triggers makes it a baseline run.
func run(job, agent int64, v dep8.Verdict, hour int, triggers ...string) Run {
	return Run{
		JobID:    job,
		Package:  "hello",
		Version:  "2.10-3",
		Release:  "bookworm",
		Arch:     "amd64",
		Triggers: triggers,
		Verdict:  v,
		Tests:    []dep8.Test{{Name: "smoke", Result: resultFor(v)}},
		Harness:  harnessA,
		AgentID:  agent,
		Finished: t0.Add(time.Duration(hour) * time.Hour),
	}
}

func resultFor(v dep8.Verdict) dep8.Result {
	switch v {
	case dep8.VerdictPass:
		return dep8.Pass
	case dep8.VerdictFail:
		return dep8.Fail
	case dep8.VerdictNeutral:
		return dep8.Neutral
	}
	return ""
}

func withHarness(r Run, h dep8.Harness) Run { r.Harness = h; return r }

// only makes r a run of the test selection tests.
func only(r Run, tests ...string) Run { r.TestNames = tests; return r }

const reboot = "reboot-test"

func allSkippedRun(r Run) Run {
	r.Tests = []dep8.Test{{Name: "smoke", Result: dep8.Skip}, {Name: "unit", Result: dep8.Skip}}
	return r
}

func active(job int64, running bool, triggers ...string) Request {
	return Request{Package: "hello", Release: "bookworm", Arch: "amd64", Triggers: triggers, JobID: job, Running: running}
}

func unroutable(reason string, triggers ...string) Unroutable {
	return Unroutable{Package: "hello", Release: "bookworm", Arch: "amd64", Triggers: triggers, Reason: reason}
}

func agents(ids ...int64) func(string, string, string) []int64 {
	return func(string, string, string) []int64 { return ids }
}

// got is the part of a Verdict the table checks.
type got struct {
	Tests       []string
	Status      Status
	Reason      string
	Jobs        []int64
	FailedOn    []int64
	Flaky       bool
	Unconfirmed bool
}

func project(vs []Verdict) []got {
	var gs []got
	for _, v := range vs {
		gs = append(gs, got{v.Tests, v.Status, v.Reason, v.Jobs, v.FailedOn, v.Flaky, v.Unconfirmed})
	}
	return gs
}

func retry(avoid ...int64) RetryRequest {
	return RetryRequest{
		Package: "hello", Version: "2.10-3", Release: "bookworm", Arch: "amd64",
		Triggers: []string{trig}, AvoidAgents: avoid,
	}
}

func TestCompute(t *testing.T) {
	const (
		pass    = dep8.VerdictPass
		fail    = dep8.VerdictFail
		neutral = dep8.VerdictNeutral
	)
	tests := []struct {
		name        string
		in          Input
		want        []got
		wantRetries []RetryRequest
	}{
		{
			name: "empty history",
			in:   Input{},
		},
		{
			name: "baseline runs alone give no verdict",
			in:   Input{Runs: []Run{run(1, 1, pass, 0), run(2, 1, fail, 1)}},
		},
		{
			name: "pass",
			in:   Input{Runs: []Run{run(1, 1, pass, 0), run(2, 1, pass, 1, trig)}},
			want: []got{{Status: Pass, Reason: "passed with trigger glibc/2.36-9 in job 2 (agent 1)", Jobs: []int64{2}}},
		},
		{
			name: "pass without any baseline",
			in:   Input{Runs: []Run{run(2, 1, pass, 1, trig)}},
			want: []got{{Status: Pass, Reason: "passed with trigger glibc/2.36-9 in job 2 (agent 1)", Jobs: []int64{2}}},
		},
		{
			name: "failure on one agent waits for confirmation",
			in:   Input{Runs: []Run{run(1, 1, pass, 0), run(2, 1, fail, 1, trig)}},
			want: []got{{
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 in job 2 (agent 1); passed on baseline job 1 (2026-11-20); it needs a confirmation run on another agent",
				Jobs:     []int64{2, 1},
				FailedOn: []int64{1},
			}},
			wantRetries: []RetryRequest{retry(1)},
		},
		{
			name: "failing twice on the same agent is not a confirmation",
			in:   Input{Runs: []Run{run(1, 1, pass, 0), run(2, 1, fail, 1, trig), run(3, 1, fail, 2, trig)}},
			want: []got{{
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 in job 2 (agent 1) and job 3 (agent 1); passed on baseline job 1 (2026-11-20); it needs a confirmation run on another agent",
				Jobs:     []int64{2, 3, 1},
				FailedOn: []int64{1},
			}},
			wantRetries: []RetryRequest{retry(1)},
		},
		{
			name: "second agent fails: regression",
			in:   Input{Runs: []Run{run(1, 1, pass, 0), run(2, 1, fail, 1, trig), run(3, 2, fail, 2, trig)}},
			want: []got{{
				Status:   Regression,
				Reason:   "failed with trigger glibc/2.36-9 in job 2 (agent 1) and job 3 (agent 2); passed on baseline job 1 (2026-11-20)",
				Jobs:     []int64{2, 3, 1},
				FailedOn: []int64{1, 2},
			}},
		},
		{
			name: "second agent passes: pass, flaky noted",
			in:   Input{Runs: []Run{run(1, 1, pass, 0), run(2, 1, fail, 1, trig), run(3, 2, pass, 2, trig)}},
			want: []got{{
				Status: Pass,
				Reason: "passed with trigger glibc/2.36-9 in job 3 (agent 2); it failed in job 2 (agent 1), so the test may be flaky",
				Jobs:   []int64{3, 2},
				Flaky:  true,
			}},
		},
		{
			name: "confirmation already queued is not requested again",
			in: Input{
				Runs:   []Run{run(1, 1, pass, 0), run(2, 1, fail, 1, trig)},
				Active: []Request{active(9, false, trig)},
			},
			want: []got{{
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 in job 2 (agent 1); passed on baseline job 1 (2026-11-20); a confirmation run is queued as job 9",
				Jobs:     []int64{2, 1, 9},
				FailedOn: []int64{1},
			}},
		},
		{
			name: "confirmation running",
			in: Input{
				Runs:   []Run{run(1, 1, pass, 0), run(2, 1, fail, 1, trig)},
				Active: []Request{active(9, true, trig)},
			},
			want: []got{{
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 in job 2 (agent 1); passed on baseline job 1 (2026-11-20); a confirmation run is running as job 9",
				Jobs:     []int64{2, 1, 9},
				FailedOn: []int64{1},
			}},
		},
		{
			name: "no other capable agent: unconfirmed regression",
			in: Input{
				Runs:          []Run{run(1, 1, pass, 0), run(2, 1, fail, 1, trig)},
				CapableAgents: agents(1),
			},
			want: []got{{
				Status:      Regression,
				Reason:      "failed with trigger glibc/2.36-9 in job 2 (agent 1); passed on baseline job 1 (2026-11-20); not confirmed on another agent: no other capable agent",
				Jobs:        []int64{2, 1},
				FailedOn:    []int64{1},
				Unconfirmed: true,
			}},
		},
		{
			name: "another capable agent exists",
			in: Input{
				Runs:          []Run{run(1, 1, pass, 0), run(2, 1, fail, 1, trig)},
				CapableAgents: agents(1, 2),
			},
			want: []got{{
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 in job 2 (agent 1); passed on baseline job 1 (2026-11-20); it needs a confirmation run on another agent",
				Jobs:     []int64{2, 1},
				FailedOn: []int64{1},
			}},
			wantRetries: []RetryRequest{retry(1)},
		},
		{
			name: "one confirming agent declares at once",
			in: Input{
				Runs:             []Run{run(1, 1, pass, 0), run(2, 1, fail, 1, trig)},
				ConfirmingAgents: 1,
			},
			want: []got{{
				Status:   Regression,
				Reason:   "failed with trigger glibc/2.36-9 in job 2 (agent 1); passed on baseline job 1 (2026-11-20)",
				Jobs:     []int64{2, 1},
				FailedOn: []int64{1},
			}},
		},
		{
			name: "three confirming agents avoid both that failed",
			in: Input{
				Runs:             []Run{run(1, 1, pass, 0), run(2, 5, fail, 1, trig), run(3, 2, fail, 2, trig)},
				ConfirmingAgents: 3,
			},
			want: []got{{
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 in job 2 (agent 5) and job 3 (agent 2); passed on baseline job 1 (2026-11-20); it needs a confirmation run on another agent",
				Jobs:     []int64{2, 3, 1},
				FailedOn: []int64{5, 2},
			}},
			wantRetries: []RetryRequest{retry(2, 5)},
		},
		{
			name: "only failures since the last pass count as confirmations",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0),
				run(2, 1, fail, 1, trig),
				withHarness(run(3, 2, pass, 2, trig), harnessB),
				run(4, 3, fail, 3, trig),
			}},
			want: []got{{
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 in job 4 (agent 3); passed on baseline job 1 (2026-11-20); it needs a confirmation run on another agent",
				Jobs:     []int64{4, 1},
				FailedOn: []int64{3},
			}},
			wantRetries: []RetryRequest{retry(3)},
		},
		{
			name: "regression against a neutral baseline",
			in: Input{Runs: []Run{
				run(1, 1, neutral, 0), run(2, 1, fail, 1, trig), run(3, 2, fail, 2, trig),
			}},
			want: []got{{
				Status:   Regression,
				Reason:   "failed with trigger glibc/2.36-9 in job 2 (agent 1) and job 3 (agent 2); was neutral on baseline job 1 (2026-11-20)",
				Jobs:     []int64{2, 3, 1},
				FailedOn: []int64{1, 2},
			}},
		},
		{
			name: "always failed",
			in:   Input{Runs: []Run{run(1, 1, fail, 0), run(2, 1, fail, 1, trig)}},
			want: []got{{
				Status: AlwaysFail,
				Reason: "failed with trigger glibc/2.36-9 in job 2 (agent 1); baseline job 1 (2026-11-20) failed too; it never passed without triggers on bookworm/amd64",
				Jobs:   []int64{2, 1},
			}},
		},
		{
			name: "baseline broke on its own: the latest baseline decides",
			in: Input{Runs: []Run{
				run(1, 1, pass, -48), run(2, 1, fail, 0), run(3, 1, fail, 1, trig),
			}},
			want: []got{{
				Status: AlwaysFail,
				Reason: "failed with trigger glibc/2.36-9 in job 3 (agent 1); baseline job 2 (2026-11-20) failed too; it last passed without triggers in job 1 (2026-11-18)",
				Jobs:   []int64{3, 2},
			}},
		},
		{
			name: "no baseline at all",
			in:   Input{Runs: []Run{run(2, 1, fail, 1, trig)}},
			want: []got{{
				Status: AlwaysFail,
				Reason: "failed with trigger glibc/2.36-9 in job 2 (agent 1); no run without triggers on bookworm/amd64 to compare with",
				Jobs:   []int64{2},
			}},
		},
		{
			name: "no baseline and none can run",
			in: Input{
				Runs:       []Run{run(2, 1, fail, 1, trig)},
				Unroutable: []Unroutable{unroutable("no agent for arm64")},
			},
			want: []got{{
				Status: AlwaysFail,
				Reason: "failed with trigger glibc/2.36-9 in job 2 (agent 1); no run without triggers on bookworm/amd64 to compare with (it waits for a capable agent: no agent for arm64)",
				Jobs:   []int64{2},
			}},
		},
		{
			name: "failure waits for its baseline run",
			in: Input{
				Runs:   []Run{run(2, 1, fail, 1, trig)},
				Active: []Request{active(3, false)},
			},
			want: []got{{
				Status: Running,
				Reason: "failed with trigger glibc/2.36-9 in job 2 (agent 1); waiting for a run without triggers on bookworm/amd64 to tell a regression from a test that always fails",
				Jobs:   []int64{2, 3},
			}},
		},
		{
			name: "neutral result",
			in:   Input{Runs: []Run{run(1, 1, pass, 0), run(2, 1, neutral, 1, trig)}},
			want: []got{{Status: Neutral, Reason: "neutral with trigger glibc/2.36-9 in job 2 (agent 1): no test ran", Jobs: []int64{2}}},
		},
		{
			name: "all tests skipped",
			in:   Input{Runs: []Run{run(1, 1, pass, 0), allSkippedRun(run(2, 1, pass, 1, trig))}},
			want: []got{{Status: Neutral, Reason: "neutral with trigger glibc/2.36-9 in job 2 (agent 1): all tests skipped", Jobs: []int64{2}}},
		},
		{
			name: "queued",
			in:   Input{Active: []Request{active(7, false, trig)}},
			want: []got{{Status: Running, Reason: "with trigger glibc/2.36-9: queued as job 7", Jobs: []int64{7}}},
		},
		{
			name: "running",
			in:   Input{Active: []Request{active(7, true, trig)}},
			want: []got{{Status: Running, Reason: "with trigger glibc/2.36-9: running as job 7", Jobs: []int64{7}}},
		},
		{
			name: "pending",
			in:   Input{Unroutable: []Unroutable{unroutable("needs isolation-machine; no agent offers it", trig)}},
			want: []got{{Status: Pending, Reason: "with trigger glibc/2.36-9 waits for a capable agent: needs isolation-machine; no agent offers it"}},
		},
		{
			name: "pending beats a pass",
			in: Input{
				Runs:       []Run{run(1, 1, pass, 0), run(2, 1, pass, 1, trig)},
				Unroutable: []Unroutable{unroutable("test reboot needs needs-reboot", trig)},
			},
			want: []got{{
				Status: Pending,
				Reason: "passed with trigger glibc/2.36-9 in job 2 (agent 1); but tests wait for a capable agent: test reboot needs needs-reboot",
				Jobs:   []int64{2},
			}},
		},
		{
			name: "pending does not hide a failure",
			in: Input{
				Runs:       []Run{run(1, 1, fail, 0), run(2, 1, fail, 1, trig)},
				Unroutable: []Unroutable{unroutable("test reboot needs needs-reboot", trig)},
			},
			want: []got{{
				Status: AlwaysFail,
				Reason: "failed with trigger glibc/2.36-9 in job 2 (agent 1); baseline job 1 (2026-11-20) failed too; it never passed without triggers on bookworm/amd64; tests also wait for a capable agent: test reboot needs needs-reboot",
				Jobs:   []int64{2, 1},
			}},
		},
		{
			name: "a later failure with the same key does not overwrite a pass",
			in:   Input{Runs: []Run{run(1, 1, pass, 0), run(2, 1, pass, 1, trig), run(3, 2, fail, 2, trig)}},
			want: []got{{
				Status: Pass,
				Reason: "passed with trigger glibc/2.36-9 in job 2 (agent 1); the later failure in job 3 (agent 2) with the same harness does not overwrite the pass, so the test may be flaky",
				Jobs:   []int64{2, 3},
				Flaky:  true,
			}},
		},
		{
			name: "a later failure with another harness is another key",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0), run(2, 1, pass, 1, trig), withHarness(run(3, 2, fail, 2, trig), harnessB),
			}},
			want: []got{{
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 in job 3 (agent 2); passed on baseline job 1 (2026-11-20); it needs a confirmation run on another agent",
				Jobs:     []int64{3, 1},
				FailedOn: []int64{2},
			}},
			wantRetries: []RetryRequest{retry(2)},
		},
		{
			name: "the key of the latest run decides",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0),
				run(2, 1, pass, 1, trig),
				withHarness(run(3, 2, fail, 2, trig), harnessB),
				run(4, 1, fail, 3, trig),
			}},
			want: []got{{
				Status: Pass,
				Reason: "passed with trigger glibc/2.36-9 in job 2 (agent 1); the later failure in job 4 (agent 1) with the same harness does not overwrite the pass; it failed in job 3 (agent 2), so the test may be flaky",
				Jobs:   []int64{2, 4, 3},
				Flaky:  true,
			}},
		},
		{
			name: "confirmation across agents with another harness",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0),
				run(2, 1, pass, 1, trig),
				withHarness(run(3, 2, fail, 2, trig), harnessB),
				withHarness(run(4, 1, fail, 3, trig), harnessB),
			}},
			want: []got{{
				Status:   Regression,
				Reason:   "failed with trigger glibc/2.36-9 in job 3 (agent 2) and job 4 (agent 1); passed on baseline job 1 (2026-11-20)",
				Jobs:     []int64{3, 4, 1},
				FailedOn: []int64{2, 1},
			}},
		},
		{
			name: "infrastructure outcomes are ignored",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0),
				run(2, 1, dep8.VerdictTmpfail, 1),
				run(3, 1, dep8.VerdictFail, 2, trig),
				run(4, 2, dep8.VerdictTmpfail, 3, trig),
				run(5, 3, dep8.VerdictError, 4, trig),
				run(6, 4, dep8.VerdictCancelled, 5, trig),
			}},
			want: []got{{
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 in job 3 (agent 1); passed on baseline job 1 (2026-11-20); it needs a confirmation run on another agent",
				Jobs:     []int64{3, 1},
				FailedOn: []int64{1},
			}},
			wantRetries: []RetryRequest{retry(1)},
		},
		{
			name: "only infrastructure outcomes give no verdict",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0), run(2, 1, dep8.VerdictError, 1, trig),
			}},
		},
		{
			name: "a rerun after a pass keeps the pass",
			in: Input{
				Runs:   []Run{run(1, 1, pass, 0), run(2, 1, pass, 1, trig)},
				Active: []Request{active(9, false, trig)},
			},
			want: []got{{
				Status: Pass,
				Reason: "passed with trigger glibc/2.36-9 in job 2 (agent 1); a rerun is queued as job 9",
				Jobs:   []int64{2, 9},
			}},
		},
		{
			name: "a pass of one selection does not hide a regression of another",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0),
				only(run(2, 3, pass, 0), reboot),
				only(run(3, 3, fail, 1, trig), reboot),
				only(run(4, 4, fail, 2, trig), reboot),
				run(5, 1, pass, 3, trig),
			}},
			want: []got{
				{Status: Pass, Reason: "passed with trigger glibc/2.36-9 in job 5 (agent 1)", Jobs: []int64{5}},
				{
					Tests:    []string{reboot},
					Status:   Regression,
					Reason:   "failed with trigger glibc/2.36-9 (test reboot-test only) in job 3 (agent 3) and job 4 (agent 4); passed on baseline job 2 (2026-11-20)",
					Jobs:     []int64{3, 4, 2},
					FailedOn: []int64{3, 4},
				},
			},
		},
		{
			name: "each selection has its own baseline",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0),
				only(run(2, 3, fail, 1), reboot),
				run(3, 1, fail, 2, trig),
				run(4, 2, fail, 3, trig),
				only(run(5, 3, fail, 4, trig), reboot),
			}},
			want: []got{
				{
					Status:   Regression,
					Reason:   "failed with trigger glibc/2.36-9 in job 3 (agent 1) and job 4 (agent 2); passed on baseline job 1 (2026-11-20)",
					Jobs:     []int64{3, 4, 1},
					FailedOn: []int64{1, 2},
				},
				{
					Tests:  []string{reboot},
					Status: AlwaysFail,
					Reason: "failed with trigger glibc/2.36-9 (test reboot-test only) in job 5 (agent 3); baseline job 2 (2026-11-20) failed too; it never passed without triggers on bookworm/amd64",
					Jobs:   []int64{5, 2},
				},
			},
		},
		{
			name: "the baseline of all tests is not the baseline of a selection",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0),
				only(run(2, 3, fail, 1, trig), reboot),
			}},
			want: []got{{
				Tests:  []string{reboot},
				Status: AlwaysFail,
				Reason: "failed with trigger glibc/2.36-9 (test reboot-test only) in job 2 (agent 3); no run without triggers on bookworm/amd64 to compare with",
				Jobs:   []int64{2},
			}},
		},
		{
			name: "a selection's failure waits for the baseline run of that selection",
			in: Input{
				Runs:   []Run{only(run(2, 3, fail, 1, trig), reboot)},
				Active: []Request{active(7, false), {Package: "hello", Release: "bookworm", Arch: "amd64", JobID: 8, Tests: []string{reboot}}},
			},
			want: []got{{
				Tests:  []string{reboot},
				Status: Running,
				Reason: "failed with trigger glibc/2.36-9 (test reboot-test only) in job 2 (agent 3); waiting for a run without triggers on bookworm/amd64 to tell a regression from a test that always fails",
				Jobs:   []int64{2, 8},
			}},
		},
		{
			name: "a retry keeps its selection",
			in: Input{
				Runs: []Run{
					run(1, 1, pass, 0),
					only(run(2, 3, pass, 0), reboot),
					only(run(3, 3, fail, 1, trig), reboot),
				},
				Active: []Request{active(9, false, trig)},
			},
			want: []got{
				{Status: Running, Reason: "with trigger glibc/2.36-9: queued as job 9", Jobs: []int64{9}},
				{
					Tests:    []string{reboot},
					Status:   Running,
					Reason:   "failed with trigger glibc/2.36-9 (test reboot-test only) in job 3 (agent 3); passed on baseline job 2 (2026-11-20); it needs a confirmation run on another agent",
					Jobs:     []int64{3, 2},
					FailedOn: []int64{3},
				},
			},
			wantRetries: []RetryRequest{{
				Package: "hello", Version: "2.10-3", Release: "bookworm", Arch: "amd64",
				Triggers: []string{trig}, Tests: []string{reboot}, AvoidAgents: []int64{3},
			}},
		},
		{
			name: "a confirmation run of the same selection is not requested again",
			in: Input{
				Runs: []Run{
					only(run(2, 3, pass, 0), reboot),
					only(run(3, 3, fail, 1, trig), reboot),
				},
				Active: []Request{{Package: "hello", Release: "bookworm", Arch: "amd64", Triggers: []string{trig}, JobID: 9, Tests: []string{reboot, reboot}}},
			},
			want: []got{{
				Tests:    []string{reboot},
				Status:   Running,
				Reason:   "failed with trigger glibc/2.36-9 (test reboot-test only) in job 3 (agent 3); passed on baseline job 2 (2026-11-20); a confirmation run is queued as job 9",
				Jobs:     []int64{3, 2, 9},
				FailedOn: []int64{3},
			}},
		},
		{
			name: "a selection's failure with no other capable agent is an unconfirmed regression",
			in: Input{
				Runs: []Run{
					only(run(2, 3, pass, 0), reboot),
					only(run(4, 3, fail, 1, trig), reboot),
				},
				CapableAgents: agents(3),
			},
			want: []got{{
				Tests:       []string{reboot},
				Status:      Regression,
				Reason:      "failed with trigger glibc/2.36-9 (test reboot-test only) in job 4 (agent 3); passed on baseline job 2 (2026-11-20); not confirmed on another agent: no other capable agent",
				Jobs:        []int64{4, 2},
				FailedOn:    []int64{3},
				Unconfirmed: true,
			}},
		},
		{
			name: "an unroutable selection makes only its line pending",
			in: Input{
				Runs: []Run{
					run(1, 1, pass, 0),
					run(2, 1, pass, 1, trig),
					only(run(3, 3, pass, 1, trig), "smoke", "unit"),
				},
				Unroutable: []Unroutable{
					{Package: "hello", Release: "bookworm", Arch: "amd64", Triggers: []string{trig}, Tests: []string{reboot}, Reason: "test reboot-test needs needs-reboot"},
				},
			},
			want: []got{
				{
					Tests:  []string{reboot},
					Status: Pending,
					Reason: "with trigger glibc/2.36-9 (test reboot-test only) waits for a capable agent: test reboot-test needs needs-reboot",
				},
				{Status: Pass, Reason: "passed with trigger glibc/2.36-9 in job 2 (agent 1)", Jobs: []int64{2}},
				{
					Tests:  []string{"smoke", "unit"},
					Status: Pass,
					Reason: "passed with trigger glibc/2.36-9 (tests smoke unit only) in job 3 (agent 3)",
					Jobs:   []int64{3},
				},
			},
		},
		{
			name: "an unroutable selection beats that selection's pass",
			in: Input{
				Runs: []Run{
					run(2, 1, pass, 1, trig),
					only(run(3, 3, pass, 1, trig), reboot),
				},
				Unroutable: []Unroutable{
					{Package: "hello", Release: "bookworm", Arch: "amd64", Triggers: []string{trig}, Tests: []string{reboot}, Reason: "agent 3 is gone"},
				},
			},
			want: []got{
				{Status: Pass, Reason: "passed with trigger glibc/2.36-9 in job 2 (agent 1)", Jobs: []int64{2}},
				{
					Tests:  []string{reboot},
					Status: Pending,
					Reason: "passed with trigger glibc/2.36-9 (test reboot-test only) in job 3 (agent 3); but tests wait for a capable agent: agent 3 is gone",
					Jobs:   []int64{3},
				},
			},
		},
		{
			name: "selection order and duplicates do not matter",
			in: Input{Runs: []Run{
				only(run(1, 1, pass, 0, trig), "unit", "smoke"),
				only(run(2, 2, fail, 1, trig), "smoke", "unit", "smoke"),
			}},
			want: []got{{
				Tests:  []string{"smoke", "unit"},
				Status: Pass,
				Reason: "passed with trigger glibc/2.36-9 (tests smoke unit only) in job 1 (agent 1); the later failure in job 2 (agent 2) with the same harness does not overwrite the pass, so the test may be flaky",
				Jobs:   []int64{1, 2},
				Flaky:  true,
			}},
		},
		{
			name: "trigger order does not matter",
			in: Input{Runs: []Run{
				run(1, 1, pass, 0, "zlib/1:1.3-1", trig),
				run(2, 2, pass, 1, trig, "zlib/1:1.3-1", trig),
			}},
			want: []got{{
				Status: Pass,
				Reason: "passed with triggers glibc/2.36-9 zlib/1:1.3-1 in job 2 (agent 2)",
				Jobs:   []int64{2},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Compute(tt.in)
			if diff := cmp.Diff(tt.want, project(out.Verdicts)); diff != "" {
				t.Errorf("Compute(%s) verdicts mismatch (-want +got):\n%s", tt.name, diff)
			}
			var retries []RetryRequest
			for _, r := range out.Retries {
				r.Reason = ""
				retries = append(retries, r)
			}
			if diff := cmp.Diff(tt.wantRetries, retries); diff != "" {
				t.Errorf("Compute(%s) retries mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestComputeHarnessRevs(t *testing.T) {
	in := Input{Runs: []Run{
		run(1, 1, dep8.VerdictPass, 0),
		withHarness(run(2, 1, dep8.VerdictFail, 1, trig), harnessB),
		run(3, 2, dep8.VerdictFail, 2, trig),
	}}
	out := Compute(in)
	if len(out.Verdicts) != 1 {
		t.Fatalf("Compute() = %d verdicts, want 1", len(out.Verdicts))
	}
	want := []string{harnessA.Rev(), harnessB.Rev()}
	if diff := cmp.Diff(want, out.Verdicts[0].HarnessRevs); diff != "" {
		t.Errorf("HarnessRevs mismatch (-want +got):\n%s", diff)
	}
	wantBase := &Baseline{
		JobID: 1, Result: dep8.VerdictPass, Version: "2.10-3", Finished: t0,
		HarnessRev: harnessA.Rev(), EverPassed: true, LastPassJob: 1, LastPassFinished: t0,
	}
	if diff := cmp.Diff(wantBase, out.Verdicts[0].Baseline); diff != "" {
		t.Errorf("Baseline mismatch (-want +got):\n%s", diff)
	}
}

func TestComputeRetryReason(t *testing.T) {
	out := Compute(Input{Runs: []Run{run(1, 1, dep8.VerdictPass, 0), run(2, 4, dep8.VerdictFail, 1, trig)}})
	want := "confirm the failure with trigger glibc/2.36-9 in job 2 (agent 4) on another agent before declaring a regression"
	if len(out.Retries) != 1 || out.Retries[0].Reason != want {
		t.Errorf("Compute().Retries = %+v, want one with reason %q", out.Retries, want)
	}
	out = Compute(Input{Runs: []Run{only(run(1, 1, dep8.VerdictPass, 0), reboot), only(run(2, 4, dep8.VerdictFail, 1, trig), reboot)}})
	want = "confirm the failure with trigger glibc/2.36-9 (test reboot-test only) in job 2 (agent 4) on another agent before declaring a regression"
	if len(out.Retries) != 1 || out.Retries[0].Reason != want {
		t.Errorf("Compute().Retries = %+v, want one with reason %q", out.Retries, want)
	}
}

func TestComputeOrderAndForPackage(t *testing.T) {
	mk := func(job int64, pkg, version, release, arch string, triggers ...string) Run {
		r := run(job, 1, dep8.VerdictPass, int(job), triggers...)
		r.Package, r.Version, r.Release, r.Arch = pkg, version, release, arch
		return r
	}
	in := Input{
		Runs: []Run{
			mk(1, "zlib", "1.3-1", "trixie", "amd64", "glibc/2.41-1"),
			mk(2, "hello", "2.10-3", "trixie", "arm64", "glibc/2.41-1"),
			mk(3, "hello", "2.10-3", "bookworm", "amd64", "glibc/2.41-1"),
			mk(4, "hello", "2.10-2", "bookworm", "amd64", "glibc/2.41-1"),
			mk(5, "hello", "2.10-3", "bookworm", "amd64", "dpkg/1.22.1"),
		},
		Active: []Request{{Package: "hello", Version: "2.10-4", Release: "bookworm", Arch: "amd64", Triggers: []string{"hello/2.10-4"}}},
	}
	type id struct{ Pkg, Version, Triggers, Release, Arch string }
	ids := func(vs []Verdict) []id {
		var out []id
		for _, v := range vs {
			out = append(out, id{v.Package, v.Version, joinTriggers(v.Triggers), v.Release, v.Arch})
		}
		return out
	}
	out := Compute(in)
	want := []id{
		{"hello", "2.10-2", "glibc/2.41-1", "bookworm", "amd64"},
		{"hello", "2.10-3", "dpkg/1.22.1", "bookworm", "amd64"},
		{"hello", "2.10-3", "glibc/2.41-1", "bookworm", "amd64"},
		{"hello", "2.10-3", "glibc/2.41-1", "trixie", "arm64"},
		{"hello", "2.10-4", "hello/2.10-4", "bookworm", "amd64"},
		{"zlib", "1.3-1", "glibc/2.41-1", "trixie", "amd64"},
	}
	if diff := cmp.Diff(want, ids(out.Verdicts)); diff != "" {
		t.Errorf("Compute() order mismatch (-want +got):\n%s", diff)
	}
	forTests := []struct {
		name, pkg, version string
		want               []id
	}{
		{"one version", "hello", "2.10-3", want[1:4]},
		{"every version", "hello", "", want[:5]},
		{"unknown package", "nope", "", nil},
		{"unknown version", "zlib", "9", nil},
	}
	for _, tt := range forTests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ids(ForPackage(out, tt.pkg, tt.version))); diff != "" {
				t.Errorf("ForPackage(%q, %q) mismatch (-want +got):\n%s", tt.pkg, tt.version, diff)
			}
		})
	}
}

func TestBaselineOf(t *testing.T) {
	other := run(9, 1, dep8.VerdictPass, 9)
	other.Arch = "arm64"
	tests := []struct {
		name   string
		runs   []Run
		tests  []string
		want   Baseline
		wantOK bool
	}{
		{"none", nil, nil, Baseline{}, false},
		{"only triggered runs", []Run{run(1, 1, dep8.VerdictPass, 0, trig)}, nil, Baseline{}, false},
		{"only infrastructure outcomes", []Run{run(1, 1, dep8.VerdictTmpfail, 0), run(2, 1, dep8.VerdictError, 1), run(3, 1, dep8.VerdictCancelled, 2)}, nil, Baseline{}, false},
		{"other arch ignored", []Run{other}, nil, Baseline{}, false},
		{"other selection ignored", []Run{only(run(1, 1, dep8.VerdictPass, 0), reboot)}, nil, Baseline{}, false},
		{"all tests are not a selection", []Run{run(1, 1, dep8.VerdictPass, 0)}, []string{reboot}, Baseline{}, false},
		{
			"the selection's runs only",
			[]Run{run(1, 1, dep8.VerdictPass, 0), only(run(2, 3, dep8.VerdictFail, 1), "unit", "smoke"), run(3, 1, dep8.VerdictPass, 2)},
			[]string{"smoke", "unit", "smoke"},
			Baseline{JobID: 2, Result: dep8.VerdictFail, Version: "2.10-3", Finished: t0.Add(time.Hour), HarnessRev: harnessA.Rev()},
			true,
		},
		{
			"latest wins over an earlier pass",
			[]Run{run(1, 1, dep8.VerdictPass, 0), run(2, 1, dep8.VerdictFail, 1), run(3, 1, dep8.VerdictTmpfail, 2)},
			nil,
			Baseline{JobID: 2, Result: dep8.VerdictFail, Version: "2.10-3", Finished: t0.Add(time.Hour), HarnessRev: harnessA.Rev(), EverPassed: true, LastPassJob: 1, LastPassFinished: t0},
			true,
		},
		{
			"never passed",
			[]Run{run(2, 1, dep8.VerdictFail, 1), run(1, 1, dep8.VerdictNeutral, 0)},
			nil,
			Baseline{JobID: 2, Result: dep8.VerdictFail, Version: "2.10-3", Finished: t0.Add(time.Hour), HarnessRev: harnessA.Rev()},
			true,
		},
		{
			"all skipped is neutral",
			[]Run{allSkippedRun(run(1, 1, dep8.VerdictPass, 0))},
			nil,
			Baseline{JobID: 1, Result: dep8.VerdictNeutral, Version: "2.10-3", Finished: t0, HarnessRev: harnessA.Rev()},
			true,
		},
		{
			"same time, higher job wins",
			[]Run{run(5, 1, dep8.VerdictPass, 0), run(4, 1, dep8.VerdictFail, 0)},
			nil,
			Baseline{JobID: 5, Result: dep8.VerdictPass, Version: "2.10-3", Finished: t0, HarnessRev: harnessA.Rev(), EverPassed: true, LastPassJob: 5, LastPassFinished: t0},
			true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := BaselineOf(tt.runs, "hello", "bookworm", "amd64", tt.tests...)
			if ok != tt.wantOK {
				t.Errorf("BaselineOf(%q) ok = %v, want %v", tt.tests, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("BaselineOf(%q) mismatch (-want +got):\n%s", tt.tests, diff)
			}
		})
	}
}

func TestKeyOf(t *testing.T) {
	a := run(1, 1, dep8.VerdictPass, 0, "b/1", "a/1")
	b := run(2, 2, dep8.VerdictFail, 5, "a/1", "b/1", "a/1")
	if KeyOf(a) != KeyOf(b) {
		t.Errorf("KeyOf(%v) = %+v, want %+v", b.Triggers, KeyOf(b), KeyOf(a))
	}
	c := withHarness(a, harnessB)
	if KeyOf(a) == KeyOf(c) {
		t.Errorf("KeyOf() equal across harness revisions: %+v", KeyOf(c))
	}
	d, e := only(a, "unit", "smoke"), only(b, "smoke", "unit", "unit")
	if KeyOf(d) != KeyOf(e) {
		t.Errorf("KeyOf(%v) = %+v, want %+v", e.TestNames, KeyOf(e), KeyOf(d))
	}
	if KeyOf(a) == KeyOf(d) {
		t.Errorf("KeyOf() equal across test selections: %+v", KeyOf(d))
	}
}

func TestNormalizeTests(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nil is all tests", nil, nil},
		{"empty is all tests", []string{}, nil},
		{"sorted and deduplicated", []string{"unit", reboot, "unit"}, []string{reboot, "unit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormalizeTests(tt.in); !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("NormalizeTests(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestComputeOrdersSelectionsAfterArch(t *testing.T) {
	mk := func(job int64, arch string, tests ...string) Run {
		r := only(run(job, 1, dep8.VerdictPass, int(job), trig), tests...)
		r.Arch = arch
		return r
	}
	in := Input{Runs: []Run{mk(1, "arm64"), mk(2, "amd64", "unit"), mk(3, "amd64", reboot), mk(4, "amd64")}}
	type id struct {
		Arch  string
		Tests []string
	}
	var got []id
	for _, v := range Compute(in).Verdicts {
		got = append(got, id{v.Arch, v.Tests})
	}
	want := []id{{"amd64", nil}, {"amd64", []string{reboot}}, {"amd64", []string{"unit"}}, {"arm64", nil}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Compute() order mismatch (-want +got):\n%s", diff)
	}
}

// TestComputePartJudgedAgainstWholeRuns checks that a test selection with
// no baseline run of its own takes its baseline from what runs of every
// test said of its tests.
func TestComputePartJudgedAgainstWholeRuns(t *testing.T) {
	whole := func(job int64, smoke, rb dep8.Result) Run {
		r := run(job, 1, dep8.VerdictFail, 0)
		if smoke != dep8.Fail && rb != dep8.Fail {
			r.Verdict = dep8.VerdictPass
		}
		r.Tests = []dep8.Test{{Name: "smoke", Result: smoke}, {Name: reboot, Result: rb}}
		return r
	}
	failed := only(run(2, 4, dep8.VerdictFail, 1, trig), reboot)
	failed.Tests = []dep8.Test{{Name: reboot, Result: dep8.Fail}}
	tests := []struct {
		name       string
		baseline   Run
		wantStatus Status
		wantResult dep8.Verdict
	}{
		{"part passed in the whole run", whole(1, dep8.Pass, dep8.Pass), Running, dep8.VerdictPass},
		{"part passed, another test failed", whole(1, dep8.Fail, dep8.Pass), Running, dep8.VerdictPass},
		{"part failed in the whole run", whole(1, dep8.Pass, dep8.Fail), AlwaysFail, dep8.VerdictFail},
		{"part skipped in the whole run", whole(1, dep8.Pass, dep8.Skip), Running, dep8.VerdictNeutral},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Compute(Input{Runs: []Run{tt.baseline, failed}})
			if len(out.Verdicts) != 1 {
				t.Fatalf("Compute() = %+v, want one verdict", out.Verdicts)
			}
			v := out.Verdicts[0]
			if v.Status != tt.wantStatus || v.Baseline == nil || v.Baseline.JobID != 1 || v.Baseline.Result != tt.wantResult {
				t.Errorf("verdict = %s, baseline %+v; want %s on baseline job 1 (%s)", v.Status, v.Baseline, tt.wantStatus, tt.wantResult)
			}
		})
	}
	// A run of the selection alone is preferred over the whole runs.
	own := only(run(3, 1, dep8.VerdictFail, 0), reboot)
	own.Tests = []dep8.Test{{Name: reboot, Result: dep8.Fail}}
	out := Compute(Input{Runs: []Run{whole(1, dep8.Pass, dep8.Pass), own, failed}})
	if v := out.Verdicts[0]; v.Baseline == nil || v.Baseline.JobID != 3 || v.Status != AlwaysFail {
		t.Errorf("verdict with the selection's own baseline = %s on %+v, want ALWAYSFAIL on job 3", v.Status, v.Baseline)
	}
}
