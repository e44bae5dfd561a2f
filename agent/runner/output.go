package runner

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Files autopkgtest writes into its output directory.
const (
	LogFile            = "log"
	SummaryFile        = "summary"
	TestinfoFile       = "testinfo.json"
	TestpkgVersionFile = "testpkg-version"
)

// ErrBadTestpkgVersion reports a testpkg-version file that is not one
// "package version" line.
var ErrBadTestpkgVersion = errors.New("runner: bad testpkg-version")

// maxTestpkgVersion bounds the testpkg-version file.
const maxTestpkgVersion = 1024

// ReadOutput reads the output directory of an autopkgtest run that exited
// with code and decides the run's verdict. It fills everything but
// AutopkgtestVersion, Args and Duration.
//
// The exit code gives the verdict (dep8.VerdictForExit), and the summary
// must back it up; otherwise the run is a tmpfail, because the runner
// cannot vouch for it:
//   - an unknown exit code, 16 (testbed failure) or 20 (runner failure) is
//     a tmpfail whatever the summary says;
//   - pass, fail and neutral need a summary that parses;
//   - pass needs at least one test and no FAIL;
//   - fail needs a FAIL test or an erroneous-package note.
//
// Each reason for a tmpfail is added to Notes.
func ReadOutput(dir string, code int) Outcome {
	out := Outcome{ExitCode: code}
	verdict, err := dep8.VerdictForExit(code)
	if err != nil {
		out.Notes = append(out.Notes, runnerNote(err))
	}
	sum, sumErr := readSummary(dir)
	out.Tests = sum.Tests
	out.Notes = append(sum.Notes, out.Notes...)

	if v, err := readTestpkgVersion(filepath.Join(dir, TestpkgVersionFile)); err == nil {
		out.TestpkgVersion = v
	} else if !errors.Is(err, os.ErrNotExist) {
		out.Notes = append(out.Notes, runnerNote(err))
	}
	if ti, err := readTestinfo(filepath.Join(dir, TestinfoFile)); err == nil {
		out.Testinfo = ti
	} else if !errors.Is(err, os.ErrNotExist) {
		out.Notes = append(out.Notes, runnerNote(err))
	}

	out.Verdict, out.Notes = backVerdict(verdict, code, sum, sumErr, out.Notes)
	return out
}

// runnerNote turns err into a note of the runner's own.
func runnerNote(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "runner: ") {
		return msg
	}
	return "runner: " + msg
}

// backVerdict checks the verdict the exit code gives against the summary.
func backVerdict(v dep8.Verdict, code int, sum dep8.Summary, sumErr error, notes []string) (dep8.Verdict, []string) {
	tmpfail := func(format string, args ...any) (dep8.Verdict, []string) {
		return dep8.VerdictTmpfail, append(notes, "runner: "+fmt.Sprintf(format, args...))
	}
	if v == dep8.VerdictTmpfail {
		return v, notes
	}
	if sumErr != nil {
		return tmpfail("exit code %d says %s but the summary cannot be read: %v", code, v, sumErr)
	}
	fails := 0
	for _, t := range sum.Tests {
		if t.Result == dep8.Fail {
			fails++
		}
	}
	switch v {
	case dep8.VerdictPass:
		if len(sum.Tests) == 0 {
			return tmpfail("exit code %d says pass but the summary has no tests", code)
		}
		if fails > 0 {
			return tmpfail("exit code %d says pass but the summary has %d failed tests", code, fails)
		}
	case dep8.VerdictFail:
		if fails == 0 && !hasErroneousNote(sum.Notes) {
			return tmpfail("exit code %d says fail but the summary has neither a failed test nor an erroneous package", code)
		}
	}
	return v, notes
}

func hasErroneousNote(notes []string) bool {
	for _, n := range notes {
		if strings.HasPrefix(n, "erroneous package") || strings.HasPrefix(n, "badpkg:") {
			return true
		}
	}
	return false
}

func readSummary(dir string) (dep8.Summary, error) {
	f, err := os.Open(filepath.Join(dir, SummaryFile))
	if err != nil {
		return dep8.Summary{}, err
	}
	defer f.Close()
	return dep8.ParseSummary(f)
}

func readTestinfo(path string) (dep8.Testinfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return dep8.Testinfo{}, err
	}
	defer f.Close()
	return dep8.ReadTestinfo(f)
}

func readTestpkgVersion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ParseTestpkgVersion(f)
}

// ParseTestpkgVersion reads autopkgtest's testpkg-version file: one line,
// "package version", such as "hello 2.10-3". It returns the line without
// its newline.
func ParseTestpkgVersion(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxTestpkgVersion+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxTestpkgVersion {
		return "", fmt.Errorf("%w: larger than %d bytes", ErrBadTestpkgVersion, maxTestpkgVersion)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		return "", fmt.Errorf("%w: %d lines, want 1", ErrBadTestpkgVersion, len(lines))
	}
	line := lines[0]
	if !utf8.ValidString(line) {
		return "", fmt.Errorf("%w: not UTF-8", ErrBadTestpkgVersion)
	}
	for _, r := range line {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("%w: control character", ErrBadTestpkgVersion)
		}
	}
	name, version, ok := strings.Cut(line, " ")
	if !ok || name == "" || version == "" || strings.ContainsAny(version, " \t") {
		return "", fmt.Errorf("%w: %q is not \"package version\"", ErrBadTestpkgVersion, line)
	}
	return line, nil
}
