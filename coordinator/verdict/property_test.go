package verdict

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// randomInput builds a history from seed: a few packages, versions,
// trigger sets, test selections, harnesses and agents, every job verdict,
// ties in time.
func randomInput(seed uint64) Input {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	triggerSets := [][]string{nil, {"a/1"}, {"a/1", "b/2"}, {"b/2", "a/1"}, {"b/2"}}
	selections := [][]string{nil, nil, {}, {"reboot"}, {"a", "b"}, {"b", "a", "b"}}
	selection := func() []string { return selections[rng.IntN(len(selections))] }
	verdicts := []dep8.Verdict{
		dep8.VerdictPass, dep8.VerdictFail, dep8.VerdictNeutral,
		dep8.VerdictTmpfail, dep8.VerdictError, dep8.VerdictCancelled,
	}
	results := []dep8.Result{dep8.Pass, dep8.Fail, dep8.Skip, dep8.Flaky, dep8.Neutral}
	var in Input
	for job := range int64(rng.IntN(30)) {
		r := Run{
			JobID:     job + 1,
			Package:   pick("hello", "zlib"),
			Version:   pick("1", "2"),
			Release:   "bookworm",
			Arch:      pick("amd64", "arm64"),
			Triggers:  triggerSets[rng.IntN(len(triggerSets))],
			Verdict:   verdicts[rng.IntN(len(verdicts))],
			Harness:   []dep8.Harness{harnessA, harnessB}[rng.IntN(2)],
			AgentID:   int64(rng.IntN(3) + 1),
			Finished:  t0.Add(time.Duration(rng.IntN(10)) * time.Hour),
			TestNames: selection(),
		}
		for i := range rng.IntN(3) {
			r.Tests = append(r.Tests, dep8.Test{Name: string(rune('a' + i)), Result: results[rng.IntN(len(results))]})
		}
		in.Runs = append(in.Runs, r)
	}
	for i := range rng.IntN(4) {
		in.Active = append(in.Active, Request{
			Package: pick("hello", "zlib"), Version: pick("", "1", "2"), Release: "bookworm", Arch: pick("amd64", "arm64"),
			Triggers: triggerSets[rng.IntN(len(triggerSets))], JobID: int64(100 + i), Running: rng.IntN(2) == 0,
			Tests: selection(),
		})
	}
	for range rng.IntN(3) {
		in.Unroutable = append(in.Unroutable, Unroutable{
			Package: pick("hello", "zlib"), Version: pick("", "1", "2"), Release: "bookworm", Arch: pick("amd64", "arm64"),
			Triggers: triggerSets[rng.IntN(len(triggerSets))], Reason: pick("needs isolation-machine", "needs-reboot"),
			Tests: selection(),
		})
	}
	switch rng.IntN(3) {
	case 1:
		in.CapableAgents = agents(1)
	case 2:
		in.CapableAgents = agents(1, 2, 3)
	}
	in.ConfirmingAgents = rng.IntN(4)
	return in
}

func sameTarget(v Verdict, pkg, version string, triggers []string, release, arch string, tests []string) bool {
	return v.Package == pkg && v.Version == version && v.Release == release && v.Arch == arch &&
		slices.Equal(v.Triggers, NormalizeTriggers(triggers)) && slices.Equal(v.Tests, NormalizeTests(tests))
}

func targetOf(v Verdict) target {
	return target{v.Package, v.Version, joinTriggers(v.Triggers), v.Release, v.Arch, joinTests(v.Tests)}
}

// onlySelection keeps the runs and requests of in whose test selection is
// tests (space separated).
func onlySelection(in Input, tests string) Input {
	// Runs of every test without triggers stay: they are the baseline of
	// a selection that has none of its own.
	in.Runs = slices.DeleteFunc(slices.Clone(in.Runs), func(r Run) bool {
		return joinTests(r.TestNames) != tests && !(len(r.TestNames) == 0 && len(r.Triggers) == 0)
	})
	in.Active = slices.DeleteFunc(slices.Clone(in.Active), func(q Request) bool { return joinTests(q.Tests) != tests })
	in.Unroutable = slices.DeleteFunc(slices.Clone(in.Unroutable), func(u Unroutable) bool { return joinTests(u.Tests) != tests })
	return in
}

func checkProperties(t *testing.T, in Input) {
	t.Helper()
	out := Compute(in)
	confirm := in.ConfirmingAgents
	if confirm <= 0 {
		confirm = DefaultConfirmingAgents
	}
	for _, v := range out.Verdicts {
		hasRun := func(want dep8.Verdict) bool {
			return slices.ContainsFunc(in.Runs, func(r Run) bool {
				out, ok := Outcome(r)
				return ok && out == want && sameTarget(v, r.Package, r.Version, r.Triggers, r.Release, r.Arch, r.TestNames)
			})
		}
		if v.Reason == "" {
			t.Errorf("Compute() verdict %+v has no reason", v)
		}
		if len(v.Triggers) == 0 {
			t.Errorf("Compute() verdict %+v has no triggers; baselines get no verdict", v)
		}
		if !slices.Equal(v.Tests, NormalizeTests(v.Tests)) {
			t.Errorf("Compute() verdict tests = %q, want a normalised selection", v.Tests)
		}
		if len(v.Tests) > 0 && !strings.Contains(v.Reason, " only)") {
			t.Errorf("Compute() reason %q does not name the selection %q", v.Reason, v.Tests)
		}
		switch v.Status {
		case Pass:
			if !hasRun(dep8.VerdictPass) {
				t.Errorf("Compute() = PASS for %s %s %v %s/%s without a passing run", v.Package, v.Version, v.Triggers, v.Release, v.Arch)
			}
			unroutable := slices.ContainsFunc(in.Unroutable, func(u Unroutable) bool {
				return (u.Version == "" || u.Version == v.Version) &&
					sameTarget(v, u.Package, v.Version, u.Triggers, u.Release, u.Arch, u.Tests)
			})
			if unroutable {
				t.Errorf("Compute() = PASS for %s %s %v %s/%s while a request waits for a capable agent", v.Package, v.Version, v.Triggers, v.Release, v.Arch)
			}
		case Regression:
			if !hasRun(dep8.VerdictFail) {
				t.Errorf("Compute() = REGRESSION without a failing run: %+v", v)
			}
			if v.Baseline == nil || v.Baseline.Result == dep8.VerdictFail {
				t.Errorf("Compute() = REGRESSION without a passing or neutral baseline: %+v", v)
			}
			if len(v.FailedOn) < confirm && !v.Unconfirmed {
				t.Errorf("Compute() = REGRESSION seen on %v, want %d agents or Unconfirmed", v.FailedOn, confirm)
			}
		case AlwaysFail:
			if !hasRun(dep8.VerdictFail) {
				t.Errorf("Compute() = ALWAYSFAIL without a failing run: %+v", v)
			}
		case Neutral, Running, Pending:
		default:
			t.Errorf("Compute() status %q is not in the vocabulary", v.Status)
		}
	}
	if !slices.IsSortedFunc(out.Verdicts, func(a, b Verdict) int { return compareTargets(targetOf(a), targetOf(b)) }) {
		t.Errorf("Compute() verdicts are not sorted")
	}
	for _, r := range out.Retries {
		i := slices.IndexFunc(out.Verdicts, func(v Verdict) bool {
			return sameTarget(v, r.Package, r.Version, r.Triggers, r.Release, r.Arch, r.Tests)
		})
		if i < 0 || out.Verdicts[i].Status != Running {
			t.Errorf("Compute() retry %+v has no RUNNING verdict", r)
		}
		if len(r.AvoidAgents) == 0 {
			t.Errorf("Compute() retry %+v avoids no agent", r)
		}
	}

	// Each test selection is judged on its own: the runs and requests of
	// other selections change none of its verdicts and retries.
	keep := func(o Output, tests string) Output {
		var k Output
		for _, v := range o.Verdicts {
			if joinTests(v.Tests) == tests {
				k.Verdicts = append(k.Verdicts, v)
			}
		}
		for _, r := range o.Retries {
			if joinTests(r.Tests) == tests {
				k.Retries = append(k.Retries, r)
			}
		}
		return k
	}
	selections := map[string]bool{}
	for _, v := range out.Verdicts {
		selections[joinTests(v.Tests)] = true
	}
	for tests := range selections {
		alone := Compute(onlySelection(in, tests))
		if diff := cmp.Diff(keep(out, tests), keep(alone, tests)); diff != "" {
			t.Errorf("Compute() verdicts of selection %q depend on other selections (-all +alone):\n%s", tests, diff)
		}
	}

	// The order of the input does not matter.
	shuffled := in
	rng := rand.New(rand.NewPCG(uint64(len(in.Runs)), 7))
	shuffled.Runs = slices.Clone(in.Runs)
	rng.Shuffle(len(shuffled.Runs), func(i, j int) { shuffled.Runs[i], shuffled.Runs[j] = shuffled.Runs[j], shuffled.Runs[i] })
	shuffled.Unroutable = slices.Clone(in.Unroutable)
	slices.Reverse(shuffled.Unroutable)
	if diff := cmp.Diff(out, Compute(shuffled)); diff != "" {
		t.Errorf("Compute() depends on input order (-in order +shuffled):\n%s", diff)
	}
}

// FuzzComputeProperties checks, over random histories, that a verdict is
// never PASS for a target without a passing run, and the other invariants
// of the vocabulary.
func FuzzComputeProperties(f *testing.F) {
	for seed := range uint64(300) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkProperties(t, randomInput(seed))
	})
}

func TestNeverPassWithoutPassingRun(t *testing.T) {
	// Histories built only from failures, neutral results and
	// infrastructure outcomes, plus every kind of request, never PASS.
	for seed := range uint64(300) {
		in := randomInput(seed)
		in.Runs = slices.DeleteFunc(in.Runs, func(r Run) bool {
			out, _ := Outcome(r)
			return out == dep8.VerdictPass
		})
		for _, v := range Compute(in).Verdicts {
			if v.Status == Pass {
				t.Errorf("seed %d: Compute() = PASS for %s %s %s without a passing run", seed, v.Package, v.Version, strings.Join(v.Triggers, " "))
			}
		}
	}
}
