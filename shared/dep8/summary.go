package dep8

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on an autopkgtest summary file. The file comes from a test run and
// is read as untrusted input.
const (
	MaxSummaryTests = 10000
	MaxSummaryNotes = 10000
	MaxSummaryLine  = 64 << 10
	MaxSummarySize  = 8 << 20
)

// ErrBadSummary reports a summary file that cannot be read as autopkgtest's.
var ErrBadSummary = errors.New("dep8: bad summary")

// Summary is the content of autopkgtest's summary file.
type Summary struct {
	// Tests holds one entry per result line, in file order. The name "*"
	// stands for the whole package, as in "* SKIP no tests in this package".
	Tests []Test
	// Notes holds the other non-empty lines, in file order, such as
	// "blame: arg:foo_1.0.dsc", "badpkg: ...", "erroneous package: ...",
	// "testbed failure: ..." and autopkgtest's own error messages.
	Notes []string
}

// reportWidth is the width autopkgtest pads test names to ('%-20s %s').
const reportWidth = 20

// ParseSummary reads autopkgtest's summary file.
//
// A line whose second field is a per-test result word is a Test: the first
// field is its name and the text after the result word, trimmed, its
// Detail. A line laid out like a result line ("name", padded to 20
// columns, a space, an upper-case word) whose word is not a known result is
// an error, so that a new word in a later autopkgtest is noticed rather than
// dropped. A line that starts with white space is never a result. Every
// other non-empty line is a note: autopkgtest writes the blame, badpkg and
// error lines, and the continuation lines of multi-line messages, that way.
//
// Errors wrap ErrBadSummary and name the line; read errors are returned as
// they are.
func ParseSummary(r io.Reader) (Summary, error) {
	var s Summary
	lr := &io.LimitedReader{R: r, N: MaxSummarySize + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), MaxSummaryLine+2)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		if lr.N == 0 {
			return Summary{}, fmt.Errorf("%w: larger than %d bytes", ErrBadSummary, MaxSummarySize)
		}
		line := strings.TrimSuffix(sc.Text(), "\r")
		if len(line) > MaxSummaryLine {
			return Summary{}, fmt.Errorf("%w: line %d: longer than %d bytes", ErrBadSummary, lineNo, MaxSummaryLine)
		}
		if !utf8.ValidString(line) {
			return Summary{}, fmt.Errorf("%w: line %d: not UTF-8", ErrBadSummary, lineNo)
		}
		t, note, err := parseSummaryLine(line)
		if err != nil {
			return Summary{}, fmt.Errorf("%w: line %d: %w", ErrBadSummary, lineNo, err)
		}
		switch {
		case t != nil:
			if len(s.Tests) == MaxSummaryTests {
				return Summary{}, fmt.Errorf("%w: line %d: more than %d tests", ErrBadSummary, lineNo, MaxSummaryTests)
			}
			s.Tests = append(s.Tests, *t)
		case note != "":
			if len(s.Notes) == MaxSummaryNotes {
				return Summary{}, fmt.Errorf("%w: line %d: more than %d notes", ErrBadSummary, lineNo, MaxSummaryNotes)
			}
			s.Notes = append(s.Notes, note)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Summary{}, fmt.Errorf("%w: line %d: longer than %d bytes", ErrBadSummary, lineNo+1, MaxSummaryLine)
		}
		return Summary{}, err
	}
	if lr.N == 0 {
		return Summary{}, fmt.Errorf("%w: larger than %d bytes", ErrBadSummary, MaxSummarySize)
	}
	return s, nil
}

// parseSummaryLine returns a test, a note, or neither for a blank line.
func parseSummaryLine(line string) (*Test, string, error) {
	trimmed := strings.TrimRightFunc(line, unicode.IsSpace)
	if strings.TrimSpace(trimmed) == "" {
		return nil, "", nil
	}
	if first, _ := utf8.DecodeRuneInString(trimmed); unicode.IsSpace(first) {
		return nil, trimmed, nil
	}
	for _, p := range [...]string{"blame: ", "badpkg: ", "erroneous package: ", "testbed failure: ", "quitting: "} {
		if strings.HasPrefix(trimmed, p) {
			return nil, trimmed, nil
		}
	}
	name, rest, ok := cutField(trimmed)
	if !ok {
		return nil, trimmed, nil
	}
	word, detail, _ := cutField(rest)
	if res := Result(word); res.Valid() {
		if strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return nil, "", fmt.Errorf("test name %q has control characters", name)
		}
		return &Test{Name: name, Result: res, Detail: strings.TrimSpace(detail)}, "", nil
	}
	if isUpperWord(word) && reportLayout(trimmed, name) {
		return nil, "", fmt.Errorf("unknown result %q for test %q", word, name)
	}
	return nil, trimmed, nil
}

// cutField returns the first white-space separated field of s and what
// follows it. ok is false when s has a single field.
func cutField(s string) (field, rest string, ok bool) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, "", false
	}
	return s[:i], strings.TrimLeftFunc(s[i:], unicode.IsSpace), true
}

// reportLayout reports whether line starts the way autopkgtest's
// '%-20s %s' formats a test name.
func reportLayout(line, name string) bool {
	if !strings.HasPrefix(line, name) {
		return false
	}
	pad := reportWidth - utf8.RuneCountInString(name)
	if pad < 0 {
		pad = 0
	}
	pad++
	after := line[len(name):]
	if len(after) <= pad {
		return false
	}
	next, _ := utf8.DecodeRuneInString(after[pad:])
	return strings.Count(after[:pad], " ") == pad && !unicode.IsSpace(next)
}

func isUpperWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
