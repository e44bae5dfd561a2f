package store

import (
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// PackageRunsLimit is the number of a package's newest jobs PackageRuns
// reads.
const PackageRunsLimit = 1000

// PackageRun is a done job of one package, with what its latest result
// said.
type PackageRun struct {
	JobID    int64
	Package  string
	Version  string
	Release  string
	Arch     string
	Triggers []string
	Verdict  dep8.Verdict
	// AgentID is the agent of the latest result; zero when the job ended
	// without one (an expired last lease).
	AgentID int64
	// Tests and Harness are those of the latest result.
	Tests    []dep8.Test
	Harness  dep8.Harness
	Finished time.Time
	// ReusedFrom names the job whose result this run reused; zero when it
	// ran. Agent, tests and harness are then that job's.
	ReusedFrom int64
	// TestNames are the only tests the job ran (Job.Tests), empty for all.
	TestNames []string
}

// TargetResult is when a package's newest run without triggers on a
// release and arch finished.
type TargetResult struct {
	Package  string
	Release  string
	Arch     string
	Finished time.Time
}

// ActiveJob is a job of one package that is still to run: queued, held or
// running.
type ActiveJob struct {
	JobID    int64
	Package  string
	Version  string
	Release  string
	Arch     string
	Triggers []string
	// Running reports that an agent holds its lease.
	Running bool
	// Tests, Needs and AvoidAgents are the job's (see Job).
	Tests       []string
	Needs       JobNeeds
	AvoidAgents []int64
}
