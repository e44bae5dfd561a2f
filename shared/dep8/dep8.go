// Package dep8 owns the vocabulary of package test results that both the
// agent and the coordinator speak: autopkgtest's per-test results, the job
// verdicts sparegrid derives from autopkgtest's exit code, the harness
// revision that a result was produced with, and the names (source
// packages, versions, triggers, releases, architectures) that jobs carry.
//
// It parses autopkgtest's output but never runs anything, and it must not
// re-implement DEP-8 semantics: autopkgtest decides, this package reads.
//
// It also reads debian/tests/control (ParseTestsControl) and matches each
// test's requirements against what an agent's testbeds can do (Capable,
// Split, Candidates), so that the coordinator sends a test only where it
// can run. That reading follows autopkgtest's own parser and predicts its
// decisions; it never replaces them: the agent still runs the real
// autopkgtest, which decides what runs and what is skipped.
package dep8

import (
	"fmt"
	"strings"
)

// Result is autopkgtest's own word for one test's outcome.
type Result string

// Per-test results, as autopkgtest writes them in its summary file.
const (
	Pass    Result = "PASS"
	Fail    Result = "FAIL"
	Skip    Result = "SKIP"
	Flaky   Result = "FLAKY"
	Neutral Result = "NEUTRAL"
)

// Valid reports whether r is one of autopkgtest's per-test results.
func (r Result) Valid() bool {
	switch r {
	case Pass, Fail, Skip, Flaky, Neutral:
		return true
	}
	return false
}

// Verdict is sparegrid's word for the outcome of a whole job.
type Verdict string

// Job verdicts. Tmpfail and Error are infrastructure outcomes and are never
// blamed on the package under test.
const (
	VerdictPass      Verdict = "pass"
	VerdictFail      Verdict = "fail"
	VerdictNeutral   Verdict = "neutral"
	VerdictTmpfail   Verdict = "tmpfail"
	VerdictError     Verdict = "error"
	VerdictCancelled Verdict = "cancelled"
)

// Valid reports whether v is a known job verdict.
func (v Verdict) Valid() bool {
	switch v {
	case VerdictPass, VerdictFail, VerdictNeutral, VerdictTmpfail, VerdictError, VerdictCancelled:
		return true
	}
	return false
}

// Infrastructure reports whether v describes trouble with the grid rather
// than with the package under test.
func (v Verdict) Infrastructure() bool {
	return v == VerdictTmpfail || v == VerdictError
}

// Test is the result of one test of a package.
type Test struct {
	Name   string `json:"name"`
	Result Result `json:"result"`
	// Detail is autopkgtest's free text after the result word, such as
	// "non-zero exit status 1" or "all tests skipped"; empty when none.
	Detail string `json:"detail"`
}

// Harness identifies everything that produced a result besides the package
// itself. Two results may be compared, or one reused for the other, only
// when their harness revisions match.
type Harness struct {
	AgentVersion       string `json:"agent_version"`
	AutopkgtestVersion string `json:"autopkgtest_version"`
	Backend            string `json:"backend"`
	ImageDigest        string `json:"image_digest"`
}

// Rev returns the harness revision as one comparable string.
func (h Harness) Rev() string {
	return strings.Join([]string{
		"agent=" + h.AgentVersion,
		"autopkgtest=" + h.AutopkgtestVersion,
		"backend=" + h.Backend,
		"image=" + h.ImageDigest,
	}, ";")
}

// Validate reports a missing field.
func (h Harness) Validate() error {
	for name, v := range map[string]string{
		"agent_version":       h.AgentVersion,
		"autopkgtest_version": h.AutopkgtestVersion,
		"backend":             h.Backend,
		"image_digest":        h.ImageDigest,
	} {
		if v == "" {
			return fmt.Errorf("dep8: harness %s is empty", name)
		}
	}
	return nil
}
