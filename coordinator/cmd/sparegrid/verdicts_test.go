package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/client"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func TestVerdicts(t *testing.T) {
	c := newCLI(t)
	glibc := []string{"bash/5.2-1", "glibc/2.41-1"}
	pass := client.Verdict{Package: "hello", Version: "2.10-3", Triggers: glibc, Release: "trixie", Arch: "amd64",
		Status: client.StatusPass, Reason: "passed with triggers bash/5.2-1 glibc/2.41-1 in job 52 (agent 3)",
		Jobs: []int64{52}, HarnessRevisions: []string{"rev"}, FailedOn: []int64{},
		Baseline: &client.VerdictBaseline{JobID: 41, Result: dep8.VerdictPass, Version: "2.10-2", Finished: testNow}}
	regression := client.Verdict{Package: "hello", Version: "2.11-1", Triggers: []string{"glibc/2.41-1"}, Release: "trixie", Arch: "arm64",
		Status: client.StatusRegression, Reason: "failed\x1b[2J in job 60 (agent 3) and job 61 (agent 4)",
		Jobs: []int64{60, 61}, HarnessRevisions: []string{"rev"}, FailedOn: []int64{3, 4}}
	pending := client.Verdict{Package: "hello", Triggers: []string{"glibc/2.41-1"}, Release: "sid", Arch: "riscv64",
		Status: client.StatusPending, Reason: "waits for a capable agent", Jobs: []int64{}, HarnessRevisions: []string{}, FailedOn: []int64{}}
	all := client.VerdictList{Package: "hello", Verdicts: []client.Verdict{pass, regression, pending}, Retries: []client.VerdictRetry{}}
	c.fake.PutVerdicts(all)

	r := c.ok("verdicts", "hello")
	want := "STATUS      PACKAGE  VERSION  TRIGGERS                 RELEASE/ARCH  REASON\n" +
		"PASS        hello    2.10-3   bash/5.2-1 glibc/2.41-1  trixie/amd64  passed with triggers bash/5.2-1 glibc/2.41-1 in job 52 (agent 3)\n" +
		"REGRESSION  hello    2.11-1   glibc/2.41-1             trixie/arm64  failed?[2J in job 60 (agent 3) and job 61 (agent 4)\n" +
		"PENDING     hello    -        glibc/2.41-1             sid/riscv64   waits for a capable agent\n"
	if r.stdout != want || r.stderr != "" {
		t.Errorf("verdicts hello =\n%s\nwant\n%s\nstderr: %q", r.stdout, want, r.stderr)
	}

	r = c.ok("verdicts", "hello/2.11-1")
	want = "STATUS      PACKAGE  VERSION  TRIGGERS      RELEASE/ARCH  REASON\n" +
		"REGRESSION  hello    2.11-1   glibc/2.41-1  trixie/arm64  failed?[2J in job 60 (agent 3) and job 61 (agent 4)\n"
	if r.stdout != want {
		t.Errorf("verdicts hello/2.11-1 =\n%s\nwant\n%s", r.stdout, want)
	}

	r = c.ok("verdicts", "hello", "--json")
	var got client.VerdictList
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("verdicts --json printed %q: %v", r.stdout, err)
	}
	if diff := cmp.Diff(all, got); diff != "" {
		t.Errorf("verdicts --json mismatch (-want +got):\n%s", diff)
	}

	r = c.ok("verdicts", "nothing")
	if r.stdout != "" || r.stderr != "no verdicts for nothing: no test with triggers has run or been queued\n" {
		t.Errorf("verdicts nothing = %q, %q; want no table and a note on stderr", r.stdout, r.stderr)
	}
	r = c.ok("verdicts", "nothing", "--json")
	if r.stdout != "{\n  \"package\": \"nothing\",\n  \"verdicts\": [],\n  \"retries\": []\n}\n" {
		t.Errorf("verdicts nothing --json = %q, want empty lists", r.stdout)
	}
}

func TestVerdictsUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{name: "no package", args: []string{"verdicts"}, want: "accepts 1 arg"},
		{name: "empty version", args: []string{"verdicts", "hello/"}, want: `"hello/": want PACKAGE or PACKAGE/VERSION`},
		{name: "empty package", args: []string{"verdicts", "/1.0"}, want: `"/1.0": want PACKAGE or PACKAGE/VERSION`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCLI(t).run(tt.args...)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("sparegrid %v = %d, %q, %q; want 1 and %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	c := newCLI(t)
	r := c.ok("schedule")
	if r.stdout != "the coordinator runs no selection policy (serve --config with an [[archive]] starts it)\n" {
		t.Errorf("schedule without a policy = %q", r.stdout)
	}

	old := testNow.Add(-72 * time.Hour)
	sweep := &client.ScheduleDecision{At: testNow.Add(-2 * time.Minute), Sweep: true, Requests: 3, Jobs: 2, Reused: 0, Blocked: 1,
		OldestResult: &client.ScheduleTarget{Package: "hello", Release: "trixie", Arch: "amd64", LastResult: &old}, OldestResultAgeSeconds: 72 * 3600}
	change := &client.ScheduleDecision{At: testNow.Add(-time.Minute), Requests: 5, Jobs: 4, Reused: 1}
	c.fake.PutSchedule(client.Schedule{Running: true, SweepEverySeconds: 600, Last: change, LastSweep: sweep})
	r = c.ok("schedule")
	for _, want := range []string{
		"sweep          every 10m0s",
		"last decision  2026-",
		"5 requests, 4 jobs, 1 reused, 0 blocked",
		"3 requests, 2 jobs, 0 reused, 1 blocked",
		"oldest result  hello on trixie/amd64, last result 72h0m0s old",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("schedule output lacks %q:\n%s", want, r.stdout)
		}
	}

	c.fake.PutSchedule(client.Schedule{Running: true, LastSweep: &client.ScheduleDecision{At: testNow,
		OldestResult: &client.ScheduleTarget{Package: "new", Release: "sid", Arch: "arm64"}}})
	r = c.ok("schedule")
	for _, want := range []string{"sweep          off", "last decision  none yet", "new on sid/arm64, never tested"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("schedule output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = c.ok("schedule", "--json")
	var got client.Schedule
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || !got.Running || got.LastSweep.OldestResult.Package != "new" {
		t.Errorf("schedule --json = %q (%v)", r.stdout, err)
	}
}
