package server

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/dispatch"
	"github.com/sparegrid/sparegrid/coordinator/sched"
)

func TestDecision(t *testing.T) {
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	last := at.Add(-3 * time.Hour)
	tests := []struct {
		name string
		r    dispatch.Report
		want *apiv1.ScheduleDecision
	}{
		{"none yet", dispatch.Report{}, nil},
		{"change", dispatch.Report{At: at, Requests: 4, Jobs: 3, Reused: 1},
			&apiv1.ScheduleDecision{At: at, Requests: 4, Jobs: 3, Reused: 1}},
		{"sweep, oldest tested", dispatch.Report{At: at, Sweep: true, Requests: 2, Jobs: 1, Blocked: 1,
			OldestResult: &sched.Package{Package: "hello", Release: "trixie", Arch: "amd64", LastResult: last}, OldestResultAge: 3*time.Hour + 400*time.Millisecond},
			&apiv1.ScheduleDecision{At: at, Sweep: true, Requests: 2, Jobs: 1, Blocked: 1,
				OldestResult: &apiv1.ScheduleTarget{Package: "hello", Release: "trixie", Arch: "amd64", LastResult: &last}, OldestResultAgeSeconds: 3 * 3600}},
		{"sweep, oldest never tested", dispatch.Report{At: at, Sweep: true, OldestResult: &sched.Package{Package: "new", Release: "sid", Arch: "arm64"}},
			&apiv1.ScheduleDecision{At: at, Sweep: true, OldestResult: &apiv1.ScheduleTarget{Package: "new", Release: "sid", Arch: "arm64"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, decision(tt.r)); diff != "" {
				t.Errorf("decision(%+v) mismatch (-want +got):\n%s", tt.r, diff)
			}
		})
	}
}
