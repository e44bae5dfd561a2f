// Package verdict owns the coordinator's judgement of finished test runs:
// the baseline of a package's tests on a release and architecture, and for
// every package, version, trigger set, release, architecture and test
// selection the britney-style verdict that maintainers read (PASS,
// REGRESSION, ALWAYSFAIL, NEUTRAL, RUNNING, PENDING), with a human reason,
// the jobs it rests on and the harness revisions involved. It also says
// which failures must be retried on another agent before a regression is
// declared.
//
// It is a pure computation: plain structs in, plain structs out. It must not
// touch the store, the HTTP API, the clock or the network, and it must not
// create jobs: the caller submits the RetryRequests it returns.
//
// # Contract
//
// Compute reads Input.Runs (finished jobs), Input.Active (requests queued
// or leased), Input.Unroutable (requests no capable agent can take) and
// Input.CapableAgents, and returns one Verdict per target (package, version,
// trigger set, release, arch, test selection) that has a run with triggers
// or a request with triggers. Runs and requests without triggers only feed
// baselines.
//
//   - The test selection is the set of tests a job runs (autopkgtest's
//     --test-name), empty for all of them; order and duplicates do not
//     matter. When the coordinator splits a package's tests between agents,
//     each part is judged on its own: it is a target with its own baseline,
//     results, confirmations and requests, and a pass of one part never
//     hides a failure of another. A request belongs only to targets with
//     its selection, a RetryRequest carries the selection of the failure it
//     confirms, and a Reason names the selection when it is not empty. The
//     rules below hold for each selection.
//   - Runs whose job verdict is tmpfail, error or cancelled are ignored:
//     infrastructure trouble is the admins' business, not a verdict. A run
//     that passed with every test skipped counts as neutral.
//   - The baseline of a package's test selection on (release, arch) is its
//     latest finished run without triggers and with that selection whose
//     result is pass, fail or neutral, whatever the version and harness.
//     EverPassed records whether any such run passed.
//   - Results are keyed by package, version, trigger set, release, arch,
//     test selection and harness revision. Within one key a pass is sticky:
//     a later failure never overwrites it. The key of a target's latest run
//     is its current key, so a newer harness revision starts afresh.
//   - A failure is a REGRESSION when the baseline passed or was neutral
//     (britney's reference rule, as Debian runs it), an ALWAYSFAIL when the
//     baseline failed too or there is none. A failure waits as RUNNING while
//     a baseline run is queued and no baseline exists yet.
//   - Before a REGRESSION is declared the failure must be seen on
//     Input.ConfirmingAgents distinct agents (default 2) since the target's
//     last pass. Until then the verdict is RUNNING and Output.Retries asks
//     for a run that avoids the agents that failed, unless a request for the
//     target is already active. When no other capable agent exists the
//     REGRESSION is declared unconfirmed and says so.
//   - PENDING (no capable agent) beats PASS and NEUTRAL: a target with any
//     request that cannot be routed is never reported as passing.
//
// Compute is deterministic: the same Input gives the same Output, whatever
// the order of its slices.
package verdict

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Status is britney's word for a package's tests against a trigger set.
type Status string

// Verdict statuses.
const (
	// Pass: the latest result with these triggers passed (sticky within a
	// harness revision).
	Pass Status = "PASS"
	// Regression: failed with these triggers while the baseline passed,
	// confirmed on enough agents or impossible to confirm.
	Regression Status = "REGRESSION"
	// AlwaysFail: failed with these triggers and the baseline failed too, or
	// there is no baseline.
	AlwaysFail Status = "ALWAYSFAIL"
	// Neutral: autopkgtest ran no test, or every test was skipped.
	Neutral Status = "NEUTRAL"
	// Running: a request is queued or leased and no result decides yet, or
	// a failure awaits its confirmation or baseline run.
	Running Status = "RUNNING"
	// Pending: no capable agent can take a request for the target. Never
	// reported as a pass, never skipped.
	Pending Status = "PENDING"
)

// DefaultConfirmingAgents is the number of distinct agents that must see a
// failure before it is declared a REGRESSION.
const DefaultConfirmingAgents = 2

// Run is one finished job.
type Run struct {
	JobID   int64
	Package string
	Version string
	Release string
	Arch    string
	// Triggers are "source/version" items; none for a baseline run.
	Triggers []string
	Verdict  dep8.Verdict
	// Tests are the per-test results.
	Tests    []dep8.Test
	Harness  dep8.Harness
	AgentID  int64
	Finished time.Time
	// TestNames are the only tests the job ran (its test selection), empty
	// for all of them.
	TestNames []string
}

// Request is a test request that is queued or leased to an agent.
type Request struct {
	Package string
	// Version is the version to test; empty when the testbed decides, in
	// which case the request belongs to every version with the same
	// package, trigger set, release, arch and test selection.
	Version  string
	Release  string
	Arch     string
	Triggers []string
	// JobID names the job, zero when there is none yet.
	JobID   int64
	Running bool
	// Tests are the only tests to run (the test selection), empty for all.
	Tests []string
}

// Unroutable is a request that no capable agent can take.
type Unroutable struct {
	Package  string
	Version  string
	Release  string
	Arch     string
	Triggers []string
	// Reason says why, such as "needs isolation-machine on arm64".
	Reason string
	// Tests are the only tests to run (the test selection), empty for all.
	Tests []string
}

// Input is everything Compute judges.
type Input struct {
	Runs       []Run
	Active     []Request
	Unroutable []Unroutable
	// CapableAgents lists the agents that could run a package's tests on a
	// release and arch. When nil every confirmation run is assumed to be
	// possible.
	CapableAgents func(pkg, release, arch string) []int64
	// ConfirmingAgents is the number of distinct agents that must see a
	// failure before REGRESSION; DefaultConfirmingAgents when not positive.
	ConfirmingAgents int
}

// Baseline is what a package's tests, or one selection of them, do without
// triggers on one release and arch.
type Baseline struct {
	// JobID is the latest run without triggers that has a pass, fail or
	// neutral result; zero when there is none.
	JobID int64
	// Result is that run's result: pass, fail or neutral.
	Result     dep8.Verdict
	Version    string
	Finished   time.Time
	HarnessRev string
	// EverPassed reports whether any run without triggers passed.
	EverPassed bool
	// LastPassJob is the latest passing run without triggers, zero when none.
	LastPassJob      int64
	LastPassFinished time.Time
}

// Verdict is the judgement of one target.
type Verdict struct {
	Package  string
	Version  string
	Triggers []string
	Release  string
	Arch     string
	// Tests is the normalised test selection the verdict judges, nil for
	// runs of all tests.
	Tests  []string
	Status Status
	// Reason is the sentence users see.
	Reason string
	// Jobs are the jobs the verdict rests on: results with the triggers,
	// then the baseline, then active requests.
	Jobs []int64
	// HarnessRevs are the harness revisions of the results in Jobs.
	HarnessRevs []string
	// Baseline is nil when the package's test selection has no baseline on
	// the release and arch.
	Baseline *Baseline
	// FailedOn lists the agents that saw the failure since the last pass,
	// for REGRESSION and for RUNNING while a confirmation is awaited.
	FailedOn []int64
	// Unconfirmed marks a REGRESSION no other capable agent could confirm.
	Unconfirmed bool
	// Flaky marks a PASS of a target that also failed.
	Flaky bool
}

// RetryRequest asks the caller to run a target again on an agent other than
// AvoidAgents, to confirm a failure before it is declared a REGRESSION.
type RetryRequest struct {
	Package  string
	Version  string
	Release  string
	Arch     string
	Triggers []string
	// Tests is the test selection of the failure to confirm, nil for all
	// tests.
	Tests       []string
	AvoidAgents []int64
	Reason      string
}

// Output is what Compute returns.
type Output struct {
	// Verdicts are sorted by package, version, trigger set, release, arch
	// and test selection.
	Verdicts []Verdict
	// Retries are the confirmation runs to submit, in the same order.
	Retries []RetryRequest
}

// ForPackage returns the verdicts for pkg, for every version when version
// is empty.
func ForPackage(out Output, pkg, version string) []Verdict {
	var vs []Verdict
	for _, v := range out.Verdicts {
		if v.Package == pkg && (version == "" || v.Version == version) {
			vs = append(vs, v)
		}
	}
	return vs
}

// NormalizeTriggers returns triggers sorted and without duplicates: the
// trigger set as keys and verdicts carry it.
func NormalizeTriggers(triggers []string) []string { return normalize(triggers) }

// NormalizeTests returns a test selection sorted and without duplicates:
// the selection as keys and verdicts carry it, nil for all tests.
func NormalizeTests(tests []string) []string { return normalize(tests) }

func normalize(set []string) []string {
	if len(set) == 0 {
		return nil
	}
	s := slices.Clone(set)
	slices.Sort(s)
	return slices.Compact(s)
}

// Key identifies results that may stand for each other: a pass for a key is
// never overwritten by a later failure for the same key.
type Key struct {
	Package  string
	Version  string
	Triggers string // the normalised trigger set, space separated
	Release  string
	Arch     string
	Tests    string // the normalised test selection, space separated
	Harness  string // dep8.Harness.Rev
}

// KeyOf returns the key of a run.
func KeyOf(r Run) Key {
	return Key{
		Package:  r.Package,
		Version:  r.Version,
		Triggers: strings.Join(NormalizeTriggers(r.Triggers), " "),
		Release:  r.Release,
		Arch:     r.Arch,
		Tests:    joinTests(r.TestNames),
		Harness:  r.Harness.Rev(),
	}
}

// Outcome returns what a run counts as: pass, fail or neutral, and false
// for infrastructure outcomes and cancelled jobs, which count as nothing.
// A pass whose every test was skipped is neutral.
func Outcome(r Run) (dep8.Verdict, bool) {
	switch r.Verdict {
	case dep8.VerdictFail, dep8.VerdictNeutral:
		return r.Verdict, true
	case dep8.VerdictPass:
		if allSkipped(r.Tests) {
			return dep8.VerdictNeutral, true
		}
		return dep8.VerdictPass, true
	}
	return "", false
}

func allSkipped(tests []dep8.Test) bool {
	if len(tests) == 0 {
		return false
	}
	for _, t := range tests {
		if t.Result != dep8.Skip {
			return false
		}
	}
	return true
}

// BaselineOf returns the baseline of pkg's test selection tests (all tests
// when there are none) on release and arch, and false when it has no run
// without triggers of that selection that counts.
func BaselineOf(runs []Run, pkg, release, arch string, tests ...string) (Baseline, bool) {
	var b Baseline
	var found bool
	var latest Run
	selection := joinTests(tests)
	for _, r := range runs {
		if r.Package != pkg || r.Release != release || r.Arch != arch || len(r.Triggers) != 0 ||
			joinTests(r.TestNames) != selection {
			continue
		}
		out, ok := Outcome(r)
		if !ok {
			continue
		}
		if !found || later(r, latest) {
			latest, found = r, true
			b.JobID, b.Result, b.Version = r.JobID, out, r.Version
			b.Finished, b.HarnessRev = r.Finished, r.Harness.Rev()
		}
		if out == dep8.VerdictPass {
			if !b.EverPassed || r.Finished.After(b.LastPassFinished) ||
				(r.Finished.Equal(b.LastPassFinished) && r.JobID > b.LastPassJob) {
				b.LastPassJob, b.LastPassFinished = r.JobID, r.Finished
			}
			b.EverPassed = true
		}
	}
	return b, found
}

func later(a, b Run) bool {
	if c := a.Finished.Compare(b.Finished); c != 0 {
		return c > 0
	}
	return a.JobID > b.JobID
}

func byTime(a, b Run) int {
	if c := a.Finished.Compare(b.Finished); c != 0 {
		return c
	}
	return cmp.Compare(a.JobID, b.JobID)
}
