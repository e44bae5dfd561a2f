package dep8

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func parseString(t *testing.T, s string) []TestStanza {
	t.Helper()
	got, err := ParseTestsControl(strings.NewReader(s))
	if err != nil {
		t.Fatalf("ParseTestsControl(%q) error = %v", s, err)
	}
	return got
}

func parseFile(t *testing.T, path string) []TestStanza {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ParseTestsControl(f)
	if err != nil {
		t.Fatalf("ParseTestsControl(%s) error = %v", path, err)
	}
	return got
}

var ignoreEmpty = cmpopts.EquateEmpty()

func TestParseTestsControlE2EFixtures(t *testing.T) {
	tests := []struct {
		name string
		path string
		want []TestStanza
	}{
		{
			name: "fixture",
			path: "../../e2e/testdata/fixture/debian/tests/control",
			want: []TestStanza{
				{Name: "passes", Line: 1, Path: "debian/tests/passes", Depends: "dash"},
				{Name: "fails", Line: 4, Path: "debian/tests/fails", Depends: "dash"},
				{Name: "skippable", Line: 7, Path: "debian/tests/skippable", Depends: "dash", Restrictions: []string{"skippable"}},
				{Name: "flaky", Line: 11, Path: "debian/tests/flaky", Depends: "dash", Restrictions: []string{"flaky"}},
			},
		},
		{
			name: "slow",
			path: "../../e2e/testdata/slow/debian/tests/control",
			want: []TestStanza{{
				Name:     "sleeps",
				Line:     1,
				Command:  "sleep 47 && echo slow test finished",
				Features: []string{"test-name=sleeps"},
				Depends:  "dash",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseFile(t, tt.path)
			if diff := cmp.Diff(tt.want, got, ignoreEmpty); diff != "" {
				t.Errorf("ParseTestsControl(%s) mismatch (-want +got):\n%s", tt.path, diff)
			}
		})
	}
}

// sampleTest is what the sample tests check of each parsed test.
type sampleTest struct {
	Name         string
	Where        string // Path, or "$ " and the Command
	Restrictions string
	Unsupported  string
}

func summarise(tests []TestStanza) []sampleTest {
	var out []sampleTest
	for _, t := range tests {
		where := t.Path
		if t.Command != "" {
			where = "$ " + t.Command
		}
		req := t.Requirements()
		out = append(out, sampleTest{t.Name, where, strings.Join(req.Restrictions, " "), req.Unsupported})
	}
	return out
}

// The expectations agree with autopkgtest 5.28's own parser
// (lib/testdesc.py) on the same files, apart from the wording for
// hint-testsuite-triggers, which autopkgtest 5.28 reports as an unknown
// restriction.
func TestParseTestsControlSamples(t *testing.T) {
	tests := []struct {
		file string
		want []sampleTest
	}{
		{"initsystem", []sampleTest{
			{"timedated", "debian/tests/timedated", "breaks-testbed isolation-container needs-root", ""},
			{"hostnamed", "debian/tests/hostnamed", "breaks-testbed isolation-container needs-root", ""},
			{"localed-locale", "debian/tests/localed-locale", "breaks-testbed isolation-container needs-root", ""},
			{"localed-x11-keymap", "debian/tests/localed-x11-keymap", "breaks-testbed isolation-container needs-root", ""},
			{"logind", "debian/tests/logind", "breaks-testbed isolation-machine needs-reboot needs-root", ""},
			{"unit-config", "debian/tests/unit-config", "allow-stderr needs-root", ""},
			{"boot-and-services", "debian/tests/boot-and-services", "breaks-testbed isolation-machine needs-reboot needs-root", ""},
			{"upstream", "debian/tests/upstream", "allow-stderr flaky isolation-machine needs-root", ""},
			{"build-login", "debian/tests/build-login", "isolation-container superficial", ""},
			{"boot-smoke", "debian/tests/boot-smoke", "breaks-testbed isolation-container needs-reboot needs-root", ""},
		}},
		{"glib", []sampleTest{
			{"build", "debian/tests/build", "superficial", ""},
			{"installed-tests", "debian/tests/installed-tests", "allow-stderr isolation-container needs-root", ""},
			{"unprivileged-installed-tests", "debian/tests/unprivileged-installed-tests", "allow-stderr", ""},
			{"network-monitor", "debian/tests/network/network-monitor", "allow-stderr flaky needs-internet skippable", ""},
			{"python3-gi", "debian/tests/python3-gi", "skip-not-installable superficial", ""},
			{"hint-triggers", "debian/tests/hint-triggers", "hint-testsuite-triggers",
				"restriction hint-testsuite-triggers: the test only names Testsuite-Triggers and is not run"},
		}},
		{"netclient", []sampleTest{
			{"command1", "$ curl --version", "superficial", ""},
			{"https-download", "$ curl --fail --silent --show-error --output /dev/null https://deb.debian.org/debian/README", "allow-stderr flaky needs-internet", ""},
			{"command2", "$ debian/tests/upstream-suite", "allow-stderr build-needed rw-build-tree", ""},
			{"command3", `$ python3 -c "import pycurl; print(pycurl.version)"`, "superficial", ""},
		}},
		{"kernel", []sampleTest{
			{"selftests", "debian/tests/selftests", "allow-stderr breaks-testbed isolation-machine needs-reboot needs-root", ""},
			{"boot-check", "debian/tests/boot-check", "isolation-machine needs-reboot needs-root", ""},
			{"module-signing", "debian/tests/module-signing", "isolation-machine needs-root needs-sudo", ""},
		}},
		{"interpreters", []sampleTest{
			{"python3", "debian/tests/python3", "allow-stderr", ""},
			{"command1", "$ python3 -m unittest discover -s debian/tests/unit", "", ""},
			{"all-versions", "$ for py in $(py3versions -s); do $py -c 'import sys; print(sys.version)'; done", "superficial", ""},
			{"command2", "$ python3 debian/tests/venv.py", "allow-stderr needs-internet", ""},
			{"command3", "$ python3 -X dev debian/tests/dev-mode.py", "Needs-Root", "unknown restriction Needs-Root"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := summarise(parseFile(t, filepath.Join("testdata", "control", tt.file)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseTestsControl(%s) mismatch (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestParseTestsControlFields(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []TestStanza
	}{
		{
			name: "lists split on commas and white space, duplicates dropped",
			in:   "Tests: a,b  c,\tb\nRestrictions: needs-root,allow-stderr needs-root\nClasses: desktop, graphics-driver\nArchitecture: amd64,arm64\n",
			want: []TestStanza{
				{Name: "a", Line: 1, Path: "debian/tests/a", Depends: "@", Restrictions: []string{"needs-root", "allow-stderr"}, Classes: []string{"desktop", "graphics-driver"}, Architecture: []string{"amd64", "arm64"}},
				{Name: "b", Line: 1, Path: "debian/tests/b", Depends: "@", Restrictions: []string{"needs-root", "allow-stderr"}, Classes: []string{"desktop", "graphics-driver"}, Architecture: []string{"amd64", "arm64"}},
				{Name: "c", Line: 1, Path: "debian/tests/c", Depends: "@", Restrictions: []string{"needs-root", "allow-stderr"}, Classes: []string{"desktop", "graphics-driver"}, Architecture: []string{"amd64", "arm64"}},
				{Name: "b", Line: 1, Path: "debian/tests/b", Depends: "@", Restrictions: []string{"needs-root", "allow-stderr"}, Classes: []string{"desktop", "graphics-driver"}, Architecture: []string{"amd64", "arm64"}},
			},
		},
		{
			name: "field names are case-insensitive",
			in:   "TESTS: a\ntests-directory: t\nDEPENDS: foo\n",
			want: []TestStanza{{Name: "a", Line: 1, Path: "t/a", Depends: "foo"}},
		},
		{
			name: "continuation lines join as autopkgtest joins them",
			in:   "Tests: a,\n  b\nDepends: foo,\n         bar (>= 1),\n\nTest-Command: echo a  \n    b \t\n",
			want: []TestStanza{
				{Name: "a", Line: 1, Path: "debian/tests/a", Depends: "foo,     bar (>= 1),"},
				{Name: "b", Line: 1, Path: "debian/tests/b", Depends: "foo,     bar (>= 1),"},
				{Name: "command1", Line: 6, Command: "echo a  b \t", Depends: "@"},
			},
		},
		{
			name: "comments are dropped without ending the stanza",
			in:   "# leading\nTests: a # trailing\n# between fields\n  # indented\nRestrictions: needs-root\n",
			want: []TestStanza{{Name: "a", Line: 2, Path: "debian/tests/a", Depends: "@", Restrictions: []string{"needs-root"}}},
		},
		{
			name: "a comment inside a Test-Command cuts it, as in autopkgtest",
			in:   "Test-Command: echo ok # not run\n",
			want: []TestStanza{{Name: "command1", Line: 1, Command: "echo ok", Depends: "@"}},
		},
		{
			name: "white-space lines separate stanzas",
			in:   "\n\nTests: a\n \t\nTests: b\n\n\n",
			want: []TestStanza{
				{Name: "a", Line: 3, Path: "debian/tests/a", Depends: "@"},
				{Name: "b", Line: 5, Path: "debian/tests/b", Depends: "@"},
			},
		},
		{
			name: "CRLF line ends",
			in:   "Tests: a\r\nDepends: foo\r\n\r\nTests: b\r\n",
			want: []TestStanza{
				{Name: "a", Line: 1, Path: "debian/tests/a", Depends: "foo"},
				{Name: "b", Line: 4, Path: "debian/tests/b", Depends: "@"},
			},
		},
		{
			name: "an empty Depends stays empty",
			in:   "Tests: a\nDepends:\n",
			want: []TestStanza{{Name: "a", Line: 1, Path: "debian/tests/a"}},
		},
		{
			name: "an empty Tests-Directory means the source root",
			in:   "Tests: a\nTests-Directory:\n",
			want: []TestStanza{{Name: "a", Line: 1, Path: "a", Depends: "@"}},
		},
		{
			name: "Tests-Directory with a trailing slash",
			in:   "Tests: a\nTests-Directory: tests/\n",
			want: []TestStanza{{Name: "a", Line: 1, Path: "tests/a", Depends: "@"}},
		},
		{
			name: "unknown fields are kept, spelt as autopkgtest reports them",
			in:   "Tests: a\nX-Custom-FIELD: 1\nfoo: 2\n",
			want: []TestStanza{{Name: "a", Line: 1, Path: "debian/tests/a", Depends: "@", UnknownFields: []string{"X-custom-field", "Foo"}}},
		},
		{
			name: "other features are kept",
			in:   "Test-Command: true\nFeatures: test-name=t, something-else\n",
			want: []TestStanza{{Name: "t", Line: 1, Command: "true", Depends: "@", Features: []string{"test-name=t", "something-else"}}},
		},
		{
			name: "empty file",
			in:   "",
			want: nil,
		},
		{
			name: "only comments",
			in:   "# nothing here\n#\n",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseString(t, tt.in)
			if diff := cmp.Diff(tt.want, got, ignoreEmpty); diff != "" {
				t.Errorf("ParseTestsControl(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// Test-Command tests are numbered command1, command2, ... over the
// Test-Command stanzas without test-name, in file order, as autopkgtest's
// parse_debian_source numbers them; Tests stanzas and named commands do
// not count, stanzas autopkgtest skips do.
func TestParseTestsControlCommandNames(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one command", "Test-Command: true\n", []string{"command1"}},
		{"Tests stanzas do not count", "Tests: a\n\nTest-Command: true\n\nTests: b\n\nTest-Command: false\n", []string{"a", "command1", "b", "command2"}},
		{"named commands do not count", "Test-Command: true\n\nTest-Command: x\nFeatures: test-name=named\n\nTest-Command: false\n", []string{"command1", "named", "command2"}},
		{"skipped stanzas count", "Test-Command: true\nX-Unknown: 1\n\nTest-Command: false\nRestrictions: unheard-of\n\nTest-Command: :\n", []string{"command1", "command2", "command3"}},
		{"lower-case field name", "test-command: true\n", []string{"command1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, ts := range parseString(t, tt.in) {
				got = append(got, ts.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("names of ParseTestsControl(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseTestsControlErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLine int
	}{
		{"neither Tests nor Test-Command", "Tests: a\n\nDepends: foo\nRestrictions: needs-root\n", 3},
		{"both Tests and Test-Command", "Tests: a\nTest-Command: true\n", 1},
		{"empty Tests", "Depends: foo\nTests: ,\n", 2},
		{"test-name without a value", "Test-Command: true\nFeatures: test-name\n", 2},
		{"test-name empty", "Test-Command: true\nFeatures: test-name=\n", 2},
		{"test-name twice", "Test-Command: true\nFeatures: test-name=a test-name=b\n", 2},
		{"test-name with Tests", "\nTests: a\nFeatures: test-name=b\n", 2},
		{"field repeated", "Tests: a\nDepends: x\ndepends: y\n", 3},
		{"junk line", "Tests: a\nthis is not a field\n", 2},
		{"space before the colon", "Tests : a\n", 1},
		{"field name with an odd character", "Tests: a\nDe_pends: x\n", 2},
		{"empty field name", ": a\n", 1},
		{"continuation first", "  a\nTests: b\n", 1},
		{"continuation after a blank line", "Tests: a\n\n  b\n", 3},
		{"not UTF-8", "Tests: a\nDepends: \xff\n", 2},
		{"control character", "Tests: a\x01b\n", 1},
		{"bare carriage return", "Tests: a\rb\n", 1},
		{"test name too long", "Tests: " + strings.Repeat("a", MaxControlTestName+1) + "\n", 1},
		{"command name too long", "Test-Command: true\nFeatures: test-name=" + strings.Repeat("a", MaxControlTestName+1) + "\n", 1},
		{"line too long", "Tests: a\nDepends: " + strings.Repeat("a", MaxControlLine) + "\n", 2},
		{"too many tests in one stanza", "Tests:" + strings.Repeat(" t", MaxControlTests+1) + "\n", 1},
		{"too many tests in all", strings.Repeat("Tests: a b c d e f g h i j\n\n", MaxControlTests/10) + "Tests: z\n", 2*(MaxControlTests/10) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTestsControl(strings.NewReader(tt.in))
			if !errors.Is(err, ErrBadControl) {
				t.Fatalf("ParseTestsControl(%.40q) = %v, %v; want an error wrapping ErrBadControl", tt.in, got, err)
			}
			var ce *ControlError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseTestsControl(%.40q) error = %T, want *ControlError", tt.in, err)
			}
			if ce.Line != tt.wantLine {
				t.Errorf("ParseTestsControl(%.40q) error line = %d (%v), want %d", tt.in, ce.Line, err, tt.wantLine)
			}
		})
	}
}

func TestParseTestsControlTooLarge(t *testing.T) {
	in := bytes.Repeat([]byte("# a comment line that fills the file up\n"), MaxControlSize/40+1)
	_, err := ParseTestsControl(bytes.NewReader(in))
	var ce *ControlError
	if !errors.As(err, &ce) || ce.Line != 0 {
		t.Fatalf("ParseTestsControl(%d bytes) error = %v, want a *ControlError for the size", len(in), err)
	}
}

func TestParseTestsControlReadError(t *testing.T) {
	errRead := errors.New("read failed")
	_, err := ParseTestsControl(io.MultiReader(strings.NewReader("Tests: a\n"), failingReader{errRead}))
	if !errors.Is(err, errRead) || errors.Is(err, ErrBadControl) {
		t.Errorf("ParseTestsControl(failing reader) error = %v, want the read error as it is", err)
	}
}

func FuzzParseTestsControl(f *testing.F) {
	for _, p := range []string{
		"../../e2e/testdata/fixture/debian/tests/control",
		"../../e2e/testdata/slow/debian/tests/control",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	samples, err := filepath.Glob(filepath.Join("testdata", "control", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range samples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Test-Command: true\nFeatures: test-name=a/b\nArchitecture: !amd64 arm64 all\n"))
	f.Add([]byte("Tests: a\n  # c\n b\r\n\nx: y\n"))
	caps := []AgentCaps{
		{ID: 1, Arch: "amd64", Backend: "overlay", Isolation: IsolationContainer, Root: true, RevertFullSystem: true, Internet: true},
		{ID: 2, Arch: "arm64", Backend: "qemu", Isolation: IsolationMachine, Root: true, RevertFullSystem: true, Reboot: true},
		{},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tests, err := ParseTestsControl(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadControl) {
				t.Fatalf("ParseTestsControl error = %v, want one wrapping ErrBadControl", err)
			}
			return
		}
		if len(tests) > MaxControlTests {
			t.Fatalf("ParseTestsControl returned %d tests, more than %d", len(tests), MaxControlTests)
		}
		for _, ts := range tests {
			if ts.Name == "" || len(ts.Name) > MaxControlTestName || strings.ContainsFunc(ts.Name, isSpaceOrComma) {
				t.Fatalf("ParseTestsControl returned test name %q", ts.Name)
			}
			if ts.Path != "" && ts.Command != "" || ts.Line < 1 {
				t.Fatalf("ParseTestsControl returned %+v", ts)
			}
			req := ts.Requirements()
			req.Applies("amd64")
			for _, c := range caps {
				if ok, reason := Capable(c, req, RequestNeeds{}); ok == (reason != "") {
					t.Fatalf("Capable(%v, %+v) = %v, %q", c, req, ok, reason)
				}
			}
		}
		for _, c := range caps {
			here, away := Split(tests, c)
			for _, n := range here {
				if _, both := away[n]; both {
					t.Fatalf("Split put %q both here and elsewhere", n)
				}
			}
		}
	})
}

func isSpaceOrComma(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }
