package intake

import (
	"context"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
)

// Judge computes the verdicts of pkg from what the store holds, with rt
// saying which queued jobs no agent can take (PENDING) and which agents
// could confirm a failure.
func Judge(ctx context.Context, s store.Store, rt *Router, pkg string) (verdict.Output, error) {
	runs, active, err := s.PackageRuns(ctx, pkg)
	if err != nil {
		return verdict.Output{}, err
	}
	in := verdict.Input{
		Runs:          make([]verdict.Run, 0, len(runs)),
		Active:        make([]verdict.Request, 0, len(active)),
		CapableAgents: rt.Capable,
	}
	for _, r := range runs {
		in.Runs = append(in.Runs, verdict.Run{
			JobID: r.JobID, Package: r.Package, Version: r.Version, Release: r.Release, Arch: r.Arch,
			Triggers: r.Triggers, Verdict: r.Verdict, Tests: r.Tests, Harness: r.Harness,
			AgentID: r.AgentID, Finished: r.Finished, TestNames: r.TestNames,
		})
	}
	for _, j := range active {
		if !j.Running {
			if why := rt.Unroutable(j.Release, j.Arch, j.Needs, j.AvoidAgents); why != "" {
				in.Unroutable = append(in.Unroutable, verdict.Unroutable{
					Package: j.Package, Version: j.Version, Release: j.Release, Arch: j.Arch,
					Triggers: j.Triggers, Reason: why, Tests: j.Tests,
				})
				continue
			}
		}
		in.Active = append(in.Active, verdict.Request{
			Package: j.Package, Version: j.Version, Release: j.Release, Arch: j.Arch,
			Triggers: j.Triggers, JobID: j.JobID, Running: j.Running, Tests: j.Tests,
		})
	}
	return verdict.Compute(in), nil
}
