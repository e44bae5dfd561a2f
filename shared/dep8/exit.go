package dep8

import (
	"errors"
	"fmt"
)

// ErrUnknownExit reports an autopkgtest exit code outside the documented
// set.
var ErrUnknownExit = errors.New("dep8: unknown autopkgtest exit code")

// VerdictForExit maps autopkgtest's exit code to the verdict of the job:
//
//	code  autopkgtest's meaning                         verdict
//	0     all tests passed                              pass
//	2     passed, some skipped or only flaky failures   pass
//	4     at least one test failed                      fail
//	6     failed, and some skipped (4|2)                fail
//	8     no tests ran (none, or all skipped)           neutral
//	12    erroneous package                             fail
//	14    erroneous package, some skipped (12|2)        fail
//	16    testbed failure                               tmpfail
//	20    unexpected autopkgtest failure                tmpfail
//
// A test marked flaky that fails sets only bit 2, so a run whose only
// failures are flaky exits 2 and passes: flaky failures never fail a job.
// An erroneous package (such as unsatisfiable test dependencies) is the
// package's problem and fails the job; testbed and runner failures are the
// grid's and are retried.
//
// Any other code (1 from a crashed interpreter, a negative code from a
// signal, 255, ...) gives VerdictTmpfail together with an error wrapping
// ErrUnknownExit that callers should log; the verdict is still usable.
func VerdictForExit(code int) (Verdict, error) {
	switch code {
	case 0, 2:
		return VerdictPass, nil
	case 4, 6, 12, 14:
		return VerdictFail, nil
	case 8:
		return VerdictNeutral, nil
	case 16, 20:
		return VerdictTmpfail, nil
	}
	return VerdictTmpfail, fmt.Errorf("%w: %d", ErrUnknownExit, code)
}
