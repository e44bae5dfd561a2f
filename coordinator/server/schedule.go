package server

import (
	"time"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/dispatch"
)

// scheduleStatus reports what d did last, for GET /api/v1/schedule.
func scheduleStatus(d *dispatch.Dispatcher) func() apiv1.Schedule {
	return func() apiv1.Schedule {
		s := apiv1.Schedule{Running: true, Last: decision(d.LastReport()), LastSweep: decision(d.LastSweep())}
		if every := d.SweepEvery(); every > 0 {
			s.SweepEverySeconds = int64(every / time.Second)
		}
		return s
	}
}

// decision turns a report into its API shape; nil for the zero report.
func decision(r dispatch.Report) *apiv1.ScheduleDecision {
	if r.At.IsZero() {
		return nil
	}
	d := &apiv1.ScheduleDecision{At: r.At, Sweep: r.Sweep, Requests: r.Requests, Jobs: r.Jobs, Reused: r.Reused, Blocked: r.Blocked,
		OldestResultAgeSeconds: int64(r.OldestResultAge / time.Second)}
	if o := r.OldestResult; o != nil {
		d.OldestResult = &apiv1.ScheduleTarget{Package: o.Package, Release: o.Release, Arch: o.Arch}
		if !o.LastResult.IsZero() {
			t := o.LastResult
			d.OldestResult.LastResult = &t
		}
	}
	return d
}
