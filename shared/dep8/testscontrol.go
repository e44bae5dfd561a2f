package dep8

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a debian/tests/control file. It comes from a source package
// anyone may upload and is read as untrusted input; real ones are a few
// kilobytes.
const (
	MaxControlSize     = 1 << 20
	MaxControlLine     = 64 << 10
	MaxControlTests    = 5000
	MaxControlTestName = 200
)

// ErrBadControl reports a debian/tests/control file that autopkgtest would
// refuse as a whole (it calls the package erroneous) or that breaks the
// deb822 structure or this package's size limits.
var ErrBadControl = errors.New("dep8: bad tests control")

// ControlError is the error ParseTestsControl returns for a bad file. It
// wraps ErrBadControl.
type ControlError struct {
	// Line is the line at fault, counting from 1; 0 when the fault is the
	// file's size.
	Line int
	Err  error
}

func (e *ControlError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%v: %v", ErrBadControl, e.Err)
	}
	return fmt.Sprintf("%v: line %d: %v", ErrBadControl, e.Line, e.Err)
}

// Unwrap returns ErrBadControl.
func (e *ControlError) Unwrap() error { return ErrBadControl }

func controlErr(line int, format string, args ...any) error {
	return &ControlError{Line: line, Err: fmt.Errorf(format, args...)}
}

// TestStanza is one test that debian/tests/control declares. A stanza
// naming several tests yields one TestStanza per name, in file order, each
// carrying the stanza's fields.
type TestStanza struct {
	// Name is the name autopkgtest gives the test in its summary and
	// matches with --test-name: an entry of Tests, the test-name feature
	// of a Test-Command stanza, or else "command1", "command2", ...
	// numbering the Test-Command stanzas without test-name in file order.
	Name string
	// Line is the line of the stanza's first field.
	Line int
	// Path is the test program, Tests-Directory (or debian/tests) joined
	// with Name; empty for a Test-Command test.
	Path string
	// Command is the Test-Command text; empty for a Tests test.
	Command string
	// Restrictions, Features, Classes and Architecture are the words of
	// their fields, in file order, duplicates removed.
	Restrictions []string
	Features     []string
	Classes      []string
	Architecture []string
	// Depends is the field's text, or "@" when the stanza has none, which
	// is what autopkgtest assumes.
	Depends string
	// UnknownFields names fields DEP-8 does not define, spelt as
	// autopkgtest reports them ("Foo-bar"); autopkgtest skips the
	// stanza's tests.
	UnknownFields []string
}

// Canonical spellings of the fields DEP-8 defines. Field names are
// case-insensitive.
const (
	fieldTests          = "Tests"
	fieldTestCommand    = "Test-Command"
	fieldRestrictions   = "Restrictions"
	fieldFeatures       = "Features"
	fieldDepends        = "Depends"
	fieldTestsDirectory = "Tests-Directory"
	fieldClasses        = "Classes"
	fieldArchitecture   = "Architecture"
)

func knownField(name string) (string, bool) {
	for _, f := range [...]string{fieldTests, fieldTestCommand, fieldRestrictions, fieldFeatures,
		fieldDepends, fieldTestsDirectory, fieldClasses, fieldArchitecture} {
		if strings.EqualFold(name, f) {
			return f, true
		}
	}
	return "", false
}

// field is one field of a stanza as read from the file.
type field struct {
	name  string // canonical for known fields, as written otherwise
	line  int
	value string
}

type stanza struct {
	line   int
	fields []field
}

func (s stanza) get(name string) (field, bool) {
	for _, f := range s.fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// ParseTestsControl reads debian/tests/control the way autopkgtest
// (5.28, lib/testdesc.py) does, and returns its tests in file order.
//
// Like autopkgtest it drops every line starting with "#", cuts each other
// line at its first "#" and drops it when only white space is left; a
// blank line ends a stanza; field names are case-insensitive; Tests,
// Restrictions, Features, Classes and Architecture are lists separated by
// commas and/or white space.
//
// What autopkgtest refuses as a whole is an error: a stanza with neither
// or both of Tests and Test-Command, an empty Tests, a test-name feature
// without a name, twice, or in a Tests stanza. Where python-debian is
// lenient this parser is strict and fails too: a line that is neither a
// field nor a continuation, a continuation opening a stanza, a field given
// twice in one stanza, text that is not UTF-8 or has control characters,
// and anything over the Max* limits.
//
// What autopkgtest only skips is kept, so that the caller can say why:
// unknown fields (TestStanza.UnknownFields), unknown restrictions,
// "all" or mixed negation in Architecture and test names with "/" are
// reported by Requirements.Unsupported.
//
// Errors are *ControlError, naming the line; read errors are returned as
// they are.
func ParseTestsControl(r io.Reader) ([]TestStanza, error) {
	stanzas, err := readStanzas(r)
	if err != nil {
		return nil, err
	}
	var tests []TestStanza
	commands := 0
	for _, s := range stanzas {
		expanded, err := expandStanza(s, &commands)
		if err != nil {
			return nil, err
		}
		if len(tests)+len(expanded) > MaxControlTests {
			return nil, controlErr(s.line, "more than %d tests", MaxControlTests)
		}
		tests = append(tests, expanded...)
	}
	return tests, nil
}

// readStanzas splits the file into stanzas of fields.
func readStanzas(r io.Reader) ([]stanza, error) {
	lr := &io.LimitedReader{R: r, N: MaxControlSize + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), MaxControlLine+2)
	var (
		stanzas []stanza
		cur     *stanza
		cont    []string // continuation lines of the last field
	)
	flush := func() {
		if cur == nil {
			return
		}
		last := &cur.fields[len(cur.fields)-1]
		last.value = joinValue(last.value, cont)
		cont = nil
	}
	lineNo := 0
	for sc.Scan() {
		lineNo++
		if lr.N == 0 {
			return nil, controlErr(0, "larger than %d bytes", MaxControlSize)
		}
		line := strings.TrimSuffix(sc.Text(), "\r")
		if len(line) > MaxControlLine {
			return nil, controlErr(lineNo, "longer than %d bytes", MaxControlLine)
		}
		if err := checkText(line); err != nil {
			return nil, &ControlError{Line: lineNo, Err: err}
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		if before, _, found := strings.Cut(line, "#"); found {
			if strings.TrimSpace(before) == "" {
				continue
			}
			line = before
		}
		if strings.TrimSpace(line) == "" {
			flush()
			if cur != nil {
				stanzas = append(stanzas, *cur)
				cur = nil
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				return nil, controlErr(lineNo, "continuation line outside a field")
			}
			cont = append(cont, line)
			continue
		}
		name, value, err := splitField(line)
		if err != nil {
			return nil, &ControlError{Line: lineNo, Err: err}
		}
		canon, known := knownField(name)
		if !known {
			canon = name
		}
		if cur == nil {
			cur = &stanza{line: lineNo}
		} else {
			flush()
			for _, f := range cur.fields {
				if strings.EqualFold(f.name, canon) {
					return nil, controlErr(lineNo, "field %s repeats line %d", name, f.line)
				}
			}
		}
		cur.fields = append(cur.fields, field{name: canon, line: lineNo, value: value})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, controlErr(lineNo+1, "longer than %d bytes", MaxControlLine)
		}
		return nil, err
	}
	if lr.N == 0 {
		return nil, controlErr(0, "larger than %d bytes", MaxControlSize)
	}
	flush()
	if cur != nil {
		stanzas = append(stanzas, *cur)
	}
	return stanzas, nil
}

// checkText rejects what autopkgtest's UTF-8 reader would choke on and
// control characters other than tab, which have no business in a control
// file and would end up in logs and command lines.
func checkText(line string) error {
	if !utf8.ValidString(line) {
		return errors.New("not UTF-8")
	}
	if i := strings.IndexFunc(line, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(line[i:])
		return fmt.Errorf("control character %U", r)
	}
	return nil
}

// splitField reads "Name: value". Field names are ASCII letters, digits
// and "-", starting with a letter or digit, and end at the colon.
func splitField(line string) (name, value string, err error) {
	name, value, ok := strings.Cut(line, ":")
	if !ok {
		return "", "", fmt.Errorf("%q is neither a field nor a continuation line", truncate(line))
	}
	if !validFieldName(name) {
		return "", "", fmt.Errorf("bad field name %q", truncate(name))
	}
	return name, strings.TrimSpace(value), nil
}

func validFieldName(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return isLowerAlnum(c) || ('A' <= c && c <= 'Z') }

// joinValue joins a field's first line with its continuation lines as
// autopkgtest does: newlines removed, then each double space made single.
func joinValue(first string, cont []string) string {
	if len(cont) == 0 {
		return first
	}
	return strings.ReplaceAll(first+strings.Join(cont, ""), "  ", " ")
}

// truncate shortens text quoted in error messages.
func truncate(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// words splits a list field as autopkgtest does: commas and white space
// both separate.
func words(s string) []string {
	return strings.Fields(strings.ReplaceAll(s, ",", " "))
}

func uniqueWords(s string) []string {
	var out []string
	for _, w := range words(s) {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// expandStanza checks one stanza and returns a TestStanza per test it
// declares. commands counts the unnamed Test-Command stanzas so far.
func expandStanza(s stanza, commands *int) ([]TestStanza, error) {
	base := TestStanza{Line: s.line, Depends: "@"}
	if f, ok := s.get(fieldRestrictions); ok {
		base.Restrictions = uniqueWords(f.value)
	}
	if f, ok := s.get(fieldClasses); ok {
		base.Classes = uniqueWords(f.value)
	}
	if f, ok := s.get(fieldArchitecture); ok {
		base.Architecture = uniqueWords(f.value)
	}
	if f, ok := s.get(fieldDepends); ok {
		base.Depends = f.value
	}
	for _, f := range s.fields {
		if _, known := knownField(f.name); !known {
			base.UnknownFields = append(base.UnknownFields, capWord(f.name))
		}
	}
	testName, hasTestName := "", false
	if f, ok := s.get(fieldFeatures); ok {
		base.Features = uniqueWords(f.value)
		for _, w := range words(f.value) {
			key, value, hasValue := strings.Cut(w, "=")
			if key != "test-name" {
				continue
			}
			switch {
			case !hasValue:
				return nil, controlErr(f.line, "test-name feature with no argument")
			case hasTestName:
				return nil, controlErr(f.line, "only one test-name feature allowed")
			case value == "":
				return nil, controlErr(f.line, "test-name feature with an empty name")
			}
			testName, hasTestName = value, true
		}
	}
	testsField, hasTests := s.get(fieldTests)
	cmdField, hasCmd := s.get(fieldTestCommand)
	switch {
	case hasTests && hasCmd:
		return nil, controlErr(s.line, "only one of \"Tests\" or \"Test-Command\" may be given")
	case !hasTests && !hasCmd:
		return nil, controlErr(s.line, "missing \"Tests\" or \"Test-Command\" field")
	case hasCmd:
		if !hasTestName {
			*commands++
			testName = fmt.Sprintf("command%d", *commands)
		}
		if err := checkTestName(testName); err != nil {
			return nil, &ControlError{Line: cmdField.line, Err: err}
		}
		t := base
		t.Name = testName
		t.Command = cmdField.value
		return []TestStanza{t}, nil
	}
	names := words(testsField.value)
	if len(names) == 0 {
		return nil, controlErr(testsField.line, "\"Tests\" field is empty")
	}
	if hasTestName {
		return nil, controlErr(s.line, "test-name feature incompatible with Tests")
	}
	if len(names) > MaxControlTests {
		return nil, controlErr(testsField.line, "more than %d tests", MaxControlTests)
	}
	dir := "debian/tests"
	if f, ok := s.get(fieldTestsDirectory); ok {
		dir = f.value
	}
	tests := make([]TestStanza, 0, len(names))
	for _, n := range names {
		if err := checkTestName(n); err != nil {
			return nil, &ControlError{Line: testsField.line, Err: err}
		}
		t := base
		t.Name = n
		t.Path = n
		if dir != "" {
			t.Path = strings.TrimSuffix(dir, "/") + "/" + n
		}
		tests = append(tests, t)
	}
	return tests, nil
}

// checkTestName bounds a test name. Names with "/" are kept: autopkgtest
// skips them, and Requirements says so.
func checkTestName(n string) error {
	if len(n) > MaxControlTestName {
		return fmt.Errorf("test name %q is longer than %d bytes", truncate(n), MaxControlTestName)
	}
	return nil
}

// capWord spells a field name the way autopkgtest reports it, as Python's
// string.capwords does: first letter upper case, the rest lower case.
func capWord(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}
