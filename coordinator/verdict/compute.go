package verdict

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// target is what one verdict is about; triggers and tests are normalised
// sets, space separated.
type target struct {
	pkg, version, triggers, release, arch, tests string
}

// platform is what one baseline is about.
type platform struct {
	pkg, release, arch, tests string
}

type targetState struct {
	runs       []Run // real results only, oldest first
	active     []Request
	unroutable []Unroutable
}

// Compute judges in; see the package documentation for the rules.
func Compute(in Input) Output {
	confirm := in.ConfirmingAgents
	if confirm <= 0 {
		confirm = DefaultConfirmingAgents
	}

	targets := map[target]*targetState{}
	baselineRuns := map[platform][]Run{}
	baselineActive := map[platform][]Request{}
	baselineUnroutable := map[platform][]Unroutable{}

	for _, r := range in.Runs {
		if _, ok := Outcome(r); !ok {
			continue
		}
		tests := joinTests(r.TestNames)
		p := platform{r.Package, r.Release, r.Arch, tests}
		if len(r.Triggers) == 0 {
			baselineRuns[p] = append(baselineRuns[p], r)
			continue
		}
		t := target{r.Package, r.Version, joinTriggers(r.Triggers), r.Release, r.Arch, tests}
		st := targets[t]
		if st == nil {
			st = &targetState{}
			targets[t] = st
		}
		st.runs = append(st.runs, r)
	}
	withRuns := slices.Collect(maps.Keys(targets))

	// attach adds a request to the targets with runs it belongs to, or to
	// a target of its own when there is none.
	attach := func(t target, add func(*targetState)) {
		matched := false
		for _, w := range withRuns {
			if w.pkg == t.pkg && w.triggers == t.triggers && w.release == t.release && w.arch == t.arch &&
				w.tests == t.tests && (t.version == "" || t.version == w.version) {
				add(targets[w])
				matched = true
			}
		}
		if matched {
			return
		}
		st := targets[t]
		if st == nil {
			st = &targetState{}
			targets[t] = st
		}
		add(st)
	}
	for _, q := range in.Active {
		tests := joinTests(q.Tests)
		if len(q.Triggers) == 0 {
			p := platform{q.Package, q.Release, q.Arch, tests}
			baselineActive[p] = append(baselineActive[p], q)
			continue
		}
		attach(target{q.Package, q.Version, joinTriggers(q.Triggers), q.Release, q.Arch, tests},
			func(st *targetState) { st.active = append(st.active, q) })
	}
	for _, u := range in.Unroutable {
		tests := joinTests(u.Tests)
		if len(u.Triggers) == 0 {
			p := platform{u.Package, u.Release, u.Arch, tests}
			baselineUnroutable[p] = append(baselineUnroutable[p], u)
			continue
		}
		attach(target{u.Package, u.Version, joinTriggers(u.Triggers), u.Release, u.Arch, tests},
			func(st *targetState) { st.unroutable = append(st.unroutable, u) })
	}

	for _, qs := range baselineActive {
		slices.SortFunc(qs, func(a, b Request) int { return cmp.Compare(a.JobID, b.JobID) })
	}
	for _, us := range baselineUnroutable {
		slices.SortFunc(us, func(a, b Unroutable) int { return strings.Compare(a.Reason, b.Reason) })
	}

	var out Output
	for _, t := range slices.SortedFunc(maps.Keys(targets), compareTargets) {
		st := targets[t]
		slices.SortFunc(st.runs, byTime)
		slices.SortFunc(st.active, func(a, b Request) int { return cmp.Compare(a.JobID, b.JobID) })
		slices.SortFunc(st.unroutable, func(a, b Unroutable) int { return strings.Compare(a.Reason, b.Reason) })
		p := platform{t.pkg, t.release, t.arch, t.tests}
		j := judge{
			t:                  t,
			st:                 st,
			confirm:            confirm,
			capable:            in.CapableAgents,
			baselineActive:     baselineActive[p],
			baselineUnroutable: baselineUnroutable[p],
		}
		if b, ok := BaselineOf(baselineRuns[p], t.pkg, t.release, t.arch, splitSet(t.tests)...); ok {
			j.baseline = &b
		} else if t.tests != "" {
			// No run of this selection alone: what the runs of every test
			// said of these tests is its baseline.
			names := splitSet(t.tests)
			whole := platform{t.pkg, t.release, t.arch, ""}
			if b, ok := BaselineOf(partOf(baselineRuns[whole], names), t.pkg, t.release, t.arch, names...); ok {
				j.baseline = &b
			}
		}
		v, retry := j.verdict()
		out.Verdicts = append(out.Verdicts, v)
		if retry != nil {
			out.Retries = append(out.Retries, *retry)
		}
	}
	return out
}

type judge struct {
	t                  target
	st                 *targetState
	baseline           *Baseline
	confirm            int
	capable            func(pkg, release, arch string) []int64
	baselineActive     []Request
	baselineUnroutable []Unroutable
}

func (j judge) verdict() (Verdict, *RetryRequest) {
	v := Verdict{
		Package:  j.t.pkg,
		Version:  j.t.version,
		Triggers: splitSet(j.t.triggers),
		Release:  j.t.release,
		Arch:     j.t.arch,
		Tests:    splitSet(j.t.tests),
		Baseline: j.baseline,
	}
	runs := j.st.runs
	if len(runs) == 0 {
		if len(j.st.unroutable) > 0 {
			v.Status = Pending
			v.Reason = fmt.Sprintf("%s waits for a capable agent: %s", j.with(), j.unroutableReasons())
			return v, nil
		}
		v.Status = Running
		v.Reason = j.activePhrase()
		v.Jobs = j.activeJobs()
		return v, nil
	}

	latest := runs[len(runs)-1]
	rev := latest.Harness.Rev()
	var keyRuns []Run
	for _, r := range runs {
		if r.Harness.Rev() == rev {
			keyRuns = append(keyRuns, r)
		}
	}
	lastPass := -1
	for i, r := range keyRuns {
		if out, _ := Outcome(r); out == dep8.VerdictPass {
			lastPass = i
		}
	}

	var retry *RetryRequest
	if lastPass >= 0 {
		j.pass(&v, keyRuns, lastPass)
	} else if out, _ := Outcome(latest); out == dep8.VerdictNeutral {
		v.Status = Neutral
		v.Reason = fmt.Sprintf("neutral %s in %s: %s", j.with(), jobOn(latest), neutralWhy(latest))
		v.Jobs = []int64{latest.JobID}
	} else {
		retry = j.fail(&v, latest)
	}

	if len(j.st.unroutable) > 0 && (v.Status == Pass || v.Status == Neutral) {
		v.Status = Pending
		v.Reason += "; but tests wait for a capable agent: " + j.unroutableReasons()
	} else if len(j.st.unroutable) > 0 {
		v.Reason += "; tests also wait for a capable agent: " + j.unroutableReasons()
	}
	if v.Status != Running && len(j.st.active) > 0 {
		v.Reason += "; a rerun is " + j.activeState()
		v.Jobs = append(v.Jobs, j.activeJobs()...)
	}
	v.HarnessRevs = j.revs(v.Jobs)
	return v, retry
}

func (j judge) pass(v *Verdict, keyRuns []Run, lastPass int) {
	p := keyRuns[lastPass]
	v.Status = Pass
	v.Reason = fmt.Sprintf("passed %s in %s", j.with(), jobOn(p))
	v.Jobs = []int64{p.JobID}
	var laterFails []Run
	for _, r := range keyRuns[lastPass+1:] {
		if out, _ := Outcome(r); out == dep8.VerdictFail {
			laterFails = append(laterFails, r)
		}
	}
	if len(laterFails) > 0 {
		v.Reason += fmt.Sprintf("; the later failure in %s with the same harness does not overwrite the pass", jobsOn(laterFails))
		v.Jobs = append(v.Jobs, jobIDs(laterFails)...)
	}
	var fails []Run
	for _, r := range j.st.runs {
		if out, _ := Outcome(r); out == dep8.VerdictFail && !slices.ContainsFunc(laterFails, func(l Run) bool { return l.JobID == r.JobID }) {
			fails = append(fails, r)
		}
	}
	v.Flaky = len(fails)+len(laterFails) > 0
	if len(fails) > 0 {
		v.Reason += fmt.Sprintf("; it failed in %s, so the test may be flaky", jobsOn(fails))
		v.Jobs = append(v.Jobs, jobIDs(fails)...)
	} else if v.Flaky {
		v.Reason += ", so the test may be flaky"
	}
}

func (j judge) fail(v *Verdict, latest Run) *RetryRequest {
	// Failures since the target's last pass, whatever the harness: a
	// confirmation run may well land on an agent with another image.
	var fails []Run
	for _, r := range slices.Backward(j.st.runs) {
		out, _ := Outcome(r)
		if out == dep8.VerdictPass {
			break
		}
		if out == dep8.VerdictFail {
			fails = append(fails, r)
		}
	}
	slices.Reverse(fails)
	var agents []int64
	for _, r := range fails {
		if !slices.Contains(agents, r.AgentID) {
			agents = append(agents, r.AgentID)
		}
	}
	failed := fmt.Sprintf("failed %s in %s", j.with(), jobsOn(fails))
	v.Jobs = jobIDs(fails)
	b := j.baseline
	if b == nil {
		if len(j.baselineActive) > 0 {
			v.Status = Running
			v.Reason = fmt.Sprintf("%s; waiting for a run without triggers on %s/%s to tell a regression from a test that always fails",
				failed, j.t.release, j.t.arch)
			for _, q := range j.baselineActive {
				if q.JobID != 0 {
					v.Jobs = append(v.Jobs, q.JobID)
				}
			}
			return nil
		}
		v.Status = AlwaysFail
		v.Reason = fmt.Sprintf("%s; no run without triggers on %s/%s to compare with", failed, j.t.release, j.t.arch)
		if len(j.baselineUnroutable) > 0 {
			v.Reason += " (it waits for a capable agent: " + reasons(j.baselineUnroutable) + ")"
		}
		return nil
	}
	v.Jobs = append(v.Jobs, b.JobID)
	if b.Result == dep8.VerdictFail {
		v.Status = AlwaysFail
		v.Reason = fmt.Sprintf("%s; baseline job %d (%s) failed too", failed, b.JobID, day(b))
		if b.EverPassed {
			v.Reason += fmt.Sprintf("; it last passed without triggers in job %d (%s)", b.LastPassJob, b.LastPassFinished.UTC().Format("2006-01-02"))
		} else {
			v.Reason += fmt.Sprintf("; it never passed without triggers on %s/%s", j.t.release, j.t.arch)
		}
		return nil
	}
	word := "passed"
	if b.Result == dep8.VerdictNeutral {
		word = "was neutral"
	}
	base := fmt.Sprintf("%s; %s on baseline job %d (%s)", failed, word, b.JobID, day(b))
	v.FailedOn = agents
	if len(agents) >= j.confirm {
		v.Status = Regression
		v.Reason = base
		return nil
	}
	if len(j.st.active) > 0 {
		v.Status = Running
		v.Reason = base + "; a confirmation run is " + j.activeState()
		v.Jobs = append(v.Jobs, j.activeJobs()...)
		return nil
	}
	if j.capable != nil {
		others := slices.DeleteFunc(slices.Clone(j.capable(j.t.pkg, j.t.release, j.t.arch)),
			func(a int64) bool { return slices.Contains(agents, a) })
		if len(others) == 0 {
			v.Status = Regression
			v.Unconfirmed = true
			v.Reason = base + "; not confirmed on another agent: no other capable agent"
			return nil
		}
	}
	v.Status = Running
	v.Reason = base + "; it needs a confirmation run on another agent"
	avoid := slices.Clone(agents)
	slices.Sort(avoid)
	return &RetryRequest{
		Package:     j.t.pkg,
		Version:     j.t.version,
		Release:     j.t.release,
		Arch:        j.t.arch,
		Triggers:    splitSet(j.t.triggers),
		Tests:       splitSet(j.t.tests),
		AvoidAgents: avoid,
		Reason:      fmt.Sprintf("confirm the failure %s in %s on another agent before declaring a regression", j.with(), jobsOn(fails)),
	}
}

// with names the target's trigger set and, when not all tests run, its
// test selection.
func (j judge) with() string {
	w := "with triggers " + j.t.triggers
	if !strings.Contains(j.t.triggers, " ") {
		w = "with trigger " + j.t.triggers
	}
	switch {
	case j.t.tests == "":
		return w
	case !strings.Contains(j.t.tests, " "):
		return w + " (test " + j.t.tests + " only)"
	}
	return w + " (tests " + j.t.tests + " only)"
}

func (j judge) activeState() string {
	var running, queued []string
	for _, q := range j.st.active {
		id := ""
		if q.JobID != 0 {
			id = fmt.Sprintf(" as job %d", q.JobID)
		}
		if q.Running {
			running = append(running, "running"+id)
		} else {
			queued = append(queued, "queued"+id)
		}
	}
	return strings.Join(append(running, queued...), ", ")
}

func (j judge) activePhrase() string {
	return j.with() + ": " + j.activeState()
}

func (j judge) activeJobs() []int64 {
	var ids []int64
	for _, q := range j.st.active {
		if q.JobID != 0 {
			ids = append(ids, q.JobID)
		}
	}
	return ids
}

func (j judge) unroutableReasons() string { return reasons(j.st.unroutable) }

func reasons(us []Unroutable) string {
	var rs []string
	for _, u := range us {
		if !slices.Contains(rs, u.Reason) {
			rs = append(rs, u.Reason)
		}
	}
	return strings.Join(rs, "; ")
}

// revs returns the harness revisions of the results among jobs.
func (j judge) revs(jobs []int64) []string {
	var rs []string
	for _, r := range j.st.runs {
		if slices.Contains(jobs, r.JobID) {
			rs = append(rs, r.Harness.Rev())
		}
	}
	if j.baseline != nil && slices.Contains(jobs, j.baseline.JobID) {
		rs = append(rs, j.baseline.HarnessRev)
	}
	slices.Sort(rs)
	return slices.Compact(rs)
}

func neutralWhy(r Run) string {
	if allSkipped(r.Tests) {
		return "all tests skipped"
	}
	return "no test ran"
}

func jobOn(r Run) string { return fmt.Sprintf("job %d (agent %d)", r.JobID, r.AgentID) }

func jobsOn(rs []Run) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = jobOn(r)
	}
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func jobIDs(rs []Run) []int64 {
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = r.JobID
	}
	return ids
}

func day(b *Baseline) string { return b.Finished.UTC().Format("2006-01-02") }

func joinTriggers(ts []string) string { return strings.Join(NormalizeTriggers(ts), " ") }

func joinTests(ts []string) string { return strings.Join(NormalizeTests(ts), " ") }

// splitSet undoes joinTriggers and joinTests.
func splitSet(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

func compareTargets(a, b target) int {
	return cmp.Or(
		strings.Compare(a.pkg, b.pkg),
		strings.Compare(a.version, b.version),
		strings.Compare(a.triggers, b.triggers),
		strings.Compare(a.release, b.release),
		strings.Compare(a.arch, b.arch),
		strings.Compare(a.tests, b.tests),
	)
}

// partOf returns runs of every test as runs of the test selection names:
// only those tests' results, with the verdict they make (fail when one
// failed, else pass when one passed or was flaky, else neutral). Runs with
// no result for any of the names are left out.
func partOf(runs []Run, names []string) []Run {
	var out []Run
	for _, r := range runs {
		var tests []dep8.Test
		for _, t := range r.Tests {
			if slices.Contains(names, t.Name) {
				tests = append(tests, t)
			}
		}
		if len(tests) == 0 {
			continue
		}
		v := dep8.VerdictNeutral
		for _, t := range tests {
			switch {
			case t.Result == dep8.Fail:
				v = dep8.VerdictFail
			case (t.Result == dep8.Pass || t.Result == dep8.Flaky) && v != dep8.VerdictFail:
				v = dep8.VerdictPass
			}
		}
		part := r
		part.Tests, part.TestNames, part.Verdict = tests, names, v
		out = append(out, part)
	}
	return out
}
