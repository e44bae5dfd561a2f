package worker

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// TestOnlyTests checks that the tests the coordinator gave this agent
// reach the runner, and that the run's log says the others went
// elsewhere, before any reasons for skipped tests.
func TestOnlyTests(t *testing.T) {
	const split = "sparegrid-agent: running only tests smoke, unit: the coordinator sent the package's other tests to agents that can run them\n"
	tests := []struct {
		name        string
		tests       []string
		skipTests   []string
		skipReasons []string
		wantLog     string
	}{
		{name: "all tests", wantLog: "autopkgtest log\n"},
		{name: "some tests", tests: []string{"smoke", "unit"}, wantLog: "autopkgtest log\n" + split},
		{
			name: "some tests, one skipped", tests: []string{"smoke", "unit"},
			skipTests: []string{"unit"}, skipReasons: []string{"skipping test unit: blocklist rule 3 (~admin): flaky everywhere"},
			wantLog: "autopkgtest log\n" + split + "sparegrid-agent: skipping test unit: blocklist rule 3 (~admin): flaky everywhere\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var got runner.Spec
				run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
					got = spec
					writeOutput(t, spec.OutputDir, map[string]string{"summary": "smoke PASS\n", "log": "autopkgtest log\n"})
					return runner.Outcome{ExitCode: 0, Verdict: dep8.VerdictPass, Tests: []dep8.Test{{Name: "smoke", Result: dep8.Pass}}}, nil
				}
				job := testJob()
				job.Tests, job.SkipTests, job.SkipReasons = tt.tests, tt.skipTests, tt.skipReasons
				r := newRig(t, run, job)
				if err := r.w.Run(t.Context()); err != nil {
					t.Fatalf("Run = %v", err)
				}
				if d := cmp.Diff(tt.tests, got.Tests); d != "" {
					t.Errorf("runner spec Tests mismatch (-want +got):\n%s", d)
				}
				if d := cmp.Diff(tt.skipTests, got.SkipTests); d != "" {
					t.Errorf("runner spec SkipTests mismatch (-want +got):\n%s", d)
				}
				r.verified(t)
				if d := cmp.Diff(tt.wantLog, string(r.fake.uploaded["log"])); d != "" {
					t.Errorf("uploaded log mismatch (-want +got):\n%s", d)
				}
			})
		})
	}
}
