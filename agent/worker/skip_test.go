package worker

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// TestSkippedTests checks that the tests the coordinator skips reach the
// runner, and that why they were skipped ends the run's log whether or
// not the run succeeded.
func TestSkippedTests(t *testing.T) {
	reasons := []string{
		"skipping test smoke: blocklist rule 3 (~admin): flaky everywhere",
		"skipping test upstream: blocklist rule 4 (~admin, until 2026-12-01): times out on slow disks",
	}
	notes := "sparegrid-agent: " + reasons[0] + "\nsparegrid-agent: " + reasons[1] + "\n"
	tests := []struct {
		name    string
		noImage bool
		wantLog string
	}{
		{name: "run passes", wantLog: "autopkgtest log\n" + notes},
		{name: "no testbed image", noImage: true, wantLog: notes + "sparegrid-agent: no testbed image: " + image.ErrNoImage.Error() + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var skipped []string
				run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
					skipped = spec.SkipTests
					writeOutput(t, spec.OutputDir, map[string]string{"summary": "unit PASS\n", "log": "autopkgtest log\n"})
					return runner.Outcome{ExitCode: 0, Verdict: dep8.VerdictPass, Tests: []dep8.Test{{Name: "unit", Result: dep8.Pass}}}, nil
				}
				job := testJob()
				job.SkipTests = []string{"smoke", "upstream"}
				job.SkipReasons = reasons
				r := newRig(t, run, job)
				if tt.noImage {
					r.w.LookupImage = func(_, _, _ string) (image.Image, error) { return image.Image{}, image.ErrNoImage }
				}
				if err := r.w.Run(t.Context()); err != nil {
					t.Fatalf("Run = %v", err)
				}
				var wantSkipped []string
				if !tt.noImage {
					wantSkipped = job.SkipTests
				}
				if d := cmp.Diff(wantSkipped, skipped); d != "" {
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
