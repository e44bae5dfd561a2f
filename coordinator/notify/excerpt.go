package notify

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Excerpt bounds.
const (
	ExcerptLines   = 20
	MaxExcerptLine = 240
	excerptBefore  = 14
)

// Excerpt is a few lines of a test log.
type Excerpt struct {
	// First is the line number of Lines[0] in the log, counting from 1.
	First int
	Lines []string
}

// LogExcerpt picks at most ExcerptLines lines of an autopkgtest log around
// the failure of the test named test: the lines before and after
// autopkgtest's "TEST FAIL ..." result line, or, when there is none, the
// end of the test's output section ("test TEST: [----" to "test TEST:
// ----]"), or else the end of the log. A window that would cross the
// start or end of the log is moved inside it. Each line is cut at MaxExcerptLine
// bytes and stripped of control characters. A log with no lines gives an
// empty Excerpt.
func LogExcerpt(log, test string) Excerpt {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return Excerpt{}
	}
	from, to := len(lines)-ExcerptLines, len(lines)
	if i := resultLine(lines, test); i >= 0 {
		from = min(max(i-excerptBefore, 0), len(lines)-ExcerptLines)
		to = from + ExcerptLines
	} else if start, end := outputSection(lines, test); start >= 0 {
		from, to = max(start, end-ExcerptLines), end
	}
	from, to = max(from, 0), min(to, len(lines))
	out := make([]string, 0, to-from)
	for _, l := range lines[from:to] {
		out = append(out, clean(l))
	}
	return Excerpt{First: from + 1, Lines: out}
}

// resultLine returns the index of the first line that reports test
// failing, or -1.
func resultLine(lines []string, test string) int {
	if test == "" {
		return -1
	}
	for i, l := range lines {
		rest, ok := strings.CutPrefix(l, test)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		if f := strings.Fields(rest); len(f) > 0 && f[0] == "FAIL" {
			return i
		}
	}
	return -1
}

// outputSection returns the first and one past the last line of test's
// output section, or -1, -1.
func outputSection(lines []string, test string) (int, int) {
	if test == "" {
		return -1, -1
	}
	open, close := "test "+test+": [-", "test "+test+": -"
	start := -1
	for i, l := range lines {
		switch {
		case start < 0 && strings.Contains(l, open):
			start = i
		case start >= 0 && strings.Contains(l, close) && strings.HasSuffix(strings.TrimSpace(l), "]"):
			return start, i + 1
		}
	}
	if start >= 0 {
		return start, len(lines)
	}
	return -1, -1
}

// clean cuts l at MaxExcerptLine bytes on a rune boundary and replaces
// invalid UTF-8 and control characters other than tab.
func clean(l string) string {
	l = strings.TrimRight(l, "\r")
	if len(l) > MaxExcerptLine {
		cut := MaxExcerptLine
		for cut > 0 && !utf8.RuneStart(l[cut]) {
			cut--
		}
		l = l[:cut] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\t') {
			return '?'
		}
		return r
	}, l)
}
