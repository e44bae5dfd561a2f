package dep8

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseSummary(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Summary
	}{
		{
			name: "all pass",
			in: "command1             PASS\n" +
				"smoke                PASS (superficial)\n",
			want: Summary{Tests: []Test{
				{Name: "command1", Result: Pass},
				{Name: "smoke", Result: Pass, Detail: "(superficial)"},
			}},
		},
		{
			name: "mixed",
			in: "command1             PASS\n" +
				"upstream-tests       FAIL non-zero exit status 1\n" +
				"skippy               SKIP exit status 77 and marked as skippable\n" +
				"flaky-test           FLAKY non-zero exit status 1\n" +
				"needs-root           SKIP Test needs to run as root on testbed which is not available\n" +
				"stderr-test          FAIL stderr: warning: deprecated option\n" +
				"a-test-name-longer-than-twenty PASS\n",
			want: Summary{Tests: []Test{
				{Name: "command1", Result: Pass},
				{Name: "upstream-tests", Result: Fail, Detail: "non-zero exit status 1"},
				{Name: "skippy", Result: Skip, Detail: "exit status 77 and marked as skippable"},
				{Name: "flaky-test", Result: Flaky, Detail: "non-zero exit status 1"},
				{Name: "needs-root", Result: Skip, Detail: "Test needs to run as root on testbed which is not available"},
				{Name: "stderr-test", Result: Fail, Detail: "stderr: warning: deprecated option"},
				{Name: "a-test-name-longer-than-twenty", Result: Pass},
			}},
		},
		{
			name: "no tests",
			in:   "*                    SKIP no tests in this package\n",
			want: Summary{Tests: []Test{{Name: "*", Result: Skip, Detail: "no tests in this package"}}},
		},
		{
			name: "neutral",
			in:   "*                    NEUTRAL all tests were superficial\n",
			want: Summary{Tests: []Test{{Name: "*", Result: Neutral, Detail: "all tests were superficial"}}},
		},
		{
			name: "badpkg before tests",
			in: "blame: arg:hello_2.10-3.dsc dsc:hello\n" +
				"badpkg: Test dependencies are unsatisfiable. A common reason is that your testbed is out of date with respect to the archive, and you need to use a current testbed or run apt-get update or use -U.\n" +
				"erroneous package: Test dependencies are unsatisfiable. A common reason is that your testbed is out of date with respect to the archive, and you need to use a current testbed or run apt-get update or use -U.\n",
			want: Summary{Notes: []string{
				"blame: arg:hello_2.10-3.dsc dsc:hello",
				"badpkg: Test dependencies are unsatisfiable. A common reason is that your testbed is out of date with respect to the archive, and you need to use a current testbed or run apt-get update or use -U.",
				"erroneous package: Test dependencies are unsatisfiable. A common reason is that your testbed is out of date with respect to the archive, and you need to use a current testbed or run apt-get update or use -U.",
			}},
		},
		{
			name: "badpkg for one test",
			in: "command1             PASS\n" +
				"heavy                FAIL badpkg\n" +
				"blame: arg:hello_2.10-3.dsc dsc:hello\n" +
				"badpkg: Test dependencies are unsatisfiable. A common reason is that your testbed is out of date.\n" +
				"light                SKIP installation fails and skip-not-installable set\n",
			want: Summary{
				Tests: []Test{
					{Name: "command1", Result: Pass},
					{Name: "heavy", Result: Fail, Detail: "badpkg"},
					{Name: "light", Result: Skip, Detail: "installation fails and skip-not-installable set"},
				},
				Notes: []string{
					"blame: arg:hello_2.10-3.dsc dsc:hello",
					"badpkg: Test dependencies are unsatisfiable. A common reason is that your testbed is out of date.",
				},
			},
		},
		{
			name: "multi-line badpkg",
			in: "blame: arg:/srv/tree\n" +
				"badpkg: Failed to run dpkg-query: dpkg-query: error: something\n" +
				"W: GPG error: http://deb.debian.org unstable InRelease\n" +
				" (exit code 2)\n" +
				"  dpkg                 PASS\n",
			want: Summary{Notes: []string{
				"blame: arg:/srv/tree",
				"badpkg: Failed to run dpkg-query: dpkg-query: error: something",
				"W: GPG error: http://deb.debian.org unstable InRelease",
				" (exit code 2)",
				"  dpkg                 PASS",
			}},
		},
		{
			name: "testbed failure",
			in:   "testbed failure: unexpected eof from the testbed\n",
			want: Summary{Notes: []string{"testbed failure: unexpected eof from the testbed"}},
		},
		{
			name: "runner error",
			in:   "--output-dir \"/srv/autopkgtest-out\" is not empty\n",
			want: Summary{Notes: []string{"--output-dir \"/srv/autopkgtest-out\" is not empty"}},
		},
		{
			name: "quitting",
			in:   "command1             PASS\nquitting: unexpected error, see log\n",
			want: Summary{
				Tests: []Test{{Name: "command1", Result: Pass}},
				Notes: []string{"quitting: unexpected error, see log"},
			},
		},
		{
			name: "blank lines, CRLF and trailing space",
			in:   "\n  \ncommand1             PASS  \r\nupstream             FAIL  non-zero exit status 2\r\n\n",
			want: Summary{Tests: []Test{
				{Name: "command1", Result: Pass},
				{Name: "upstream", Result: Fail, Detail: "non-zero exit status 2"},
			}},
		},
		{
			name: "no trailing newline",
			in:   "command1             PASS",
			want: Summary{Tests: []Test{{Name: "command1", Result: Pass}}},
		},
		{
			name: "lower-case word is not a result",
			in:   "command1             pass\n",
			want: Summary{Notes: []string{"command1             pass"}},
		},
		{
			name: "empty",
			in:   "",
			want: Summary{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSummary(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseSummary(%q) error = %v, want nil", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSummary(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseSummaryErrors(t *testing.T) {
	manyTests := strings.Repeat("t                    PASS\n", MaxSummaryTests+1)
	tests := []struct {
		name     string
		in       string
		wantLine string
	}{
		{
			name:     "unknown result word",
			in:       "command1             PASS\nbad-control          BROKEN Test must have either path or command\n",
			wantLine: "line 2",
		},
		{
			name:     "unknown word after long name",
			in:       "a-test-name-longer-than-twenty TMPFAIL\n",
			wantLine: "line 1",
		},
		{
			name:     "too many tests",
			in:       manyTests,
			wantLine: "line 10001",
		},
		{
			name:     "line too long",
			in:       "command1             PASS\ncommand2             FAIL " + strings.Repeat("x", MaxSummaryLine) + "\n",
			wantLine: "line 2",
		},
		{
			name:     "line too long without newline",
			in:       strings.Repeat("x", 3*MaxSummaryLine),
			wantLine: "line 1",
		},
		{
			name:     "not UTF-8",
			in:       "command1             FAIL \xff\xfe\n",
			wantLine: "line 1",
		},
		{
			name:     "control character in name",
			in:       "bad\x00name          PASS\n",
			wantLine: "line 1",
		},
		{
			name: "too large",
			in:   strings.Repeat(strings.Repeat("n", 1000)+"\n", MaxSummarySize/1000+1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSummary(strings.NewReader(tt.in))
			if !errors.Is(err, ErrBadSummary) {
				t.Fatalf("ParseSummary() error = %v, want %v", err, ErrBadSummary)
			}
			if tt.wantLine != "" && !strings.Contains(err.Error(), tt.wantLine+":") {
				t.Errorf("ParseSummary() error = %q, want it to name %s", err, tt.wantLine)
			}
		})
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestParseSummaryReadError(t *testing.T) {
	want := errors.New("disk on fire")
	_, err := ParseSummary(failingReader{want})
	if !errors.Is(err, want) || errors.Is(err, ErrBadSummary) {
		t.Errorf("ParseSummary(failing reader) error = %v, want %v unwrapped from %v", err, want, ErrBadSummary)
	}
}

func FuzzParseSummary(f *testing.F) {
	for _, s := range []string{
		"command1             PASS\n",
		"upstream-tests       FAIL non-zero exit status 1\n",
		"skippy               SKIP exit status 77 and marked as skippable\n",
		"flaky-test           FLAKY non-zero exit status 1\n",
		"*                    SKIP no tests in this package\n",
		"*                    NEUTRAL\n",
		"blame: arg:foo.dsc\nbadpkg: Test dependencies are unsatisfiable\n",
		"bad-control          BROKEN oops\n",
		"a-test-name-longer-than-twenty TMPFAIL\r\n",
		"\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSummary(strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, ErrBadSummary) {
				t.Fatalf("ParseSummary() error = %v, want it to wrap %v", err, ErrBadSummary)
			}
			return
		}
		if len(s.Tests) > MaxSummaryTests || len(s.Notes) > MaxSummaryNotes {
			t.Fatalf("ParseSummary() = %d tests, %d notes, want at most %d, %d", len(s.Tests), len(s.Notes), MaxSummaryTests, MaxSummaryNotes)
		}
		for _, tc := range s.Tests {
			if !tc.Result.Valid() {
				t.Errorf("ParseSummary() test %q result %q, want a valid result", tc.Name, tc.Result)
			}
			if tc.Name == "" || strings.IndexFunc(tc.Name, unicode.IsSpace) >= 0 || !utf8.ValidString(tc.Name) {
				t.Errorf("ParseSummary() test name %q, want one UTF-8 word", tc.Name)
			}
			if !utf8.ValidString(tc.Detail) || strings.TrimSpace(tc.Detail) != tc.Detail {
				t.Errorf("ParseSummary() test %q detail %q, want trimmed UTF-8", tc.Name, tc.Detail)
			}
		}
		for _, n := range s.Notes {
			if strings.TrimSpace(n) == "" || !utf8.ValidString(n) {
				t.Errorf("ParseSummary() note %q, want non-empty UTF-8", n)
			}
		}
	})
}
