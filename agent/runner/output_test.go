package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// writeOutputDir makes an autopkgtest output directory from file names
// and contents.
func writeOutputDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const testinfoJSON = `{"virt_server": "autopkgtest-virt-unshare --release bookworm", "kernel_version": "Linux 6.1", "nproc": "2", "cpu_model": "x", "cpu_flags": "fpu"}`

func TestReadOutput(t *testing.T) {
	tests := []struct {
		name  string
		code  int
		files map[string]string
		want  Outcome
	}{
		{
			name: "pass",
			code: 0,
			files: map[string]string{
				"summary":         "command1             PASS\n",
				"testpkg-version": "hello 2.10-3\n",
				"testinfo.json":   testinfoJSON,
			},
			want: Outcome{
				ExitCode:       0,
				Verdict:        dep8.VerdictPass,
				Tests:          []dep8.Test{{Name: "command1", Result: dep8.Pass}},
				TestpkgVersion: "hello 2.10-3",
				Testinfo: dep8.Testinfo{VirtServer: "autopkgtest-virt-unshare --release bookworm",
					KernelVersion: "Linux 6.1", NProc: "2", CPUModel: "x", CPUFlags: "fpu"},
			},
		},
		{
			name: "pass with a skip and a flaky failure",
			code: 2,
			files: map[string]string{
				"summary": "a                    PASS\nb                    SKIP exit status 77 and marked as skippable\nc                    FLAKY non-zero exit status 1\n",
			},
			want: Outcome{
				ExitCode: 2,
				Verdict:  dep8.VerdictPass,
				Tests: []dep8.Test{
					{Name: "a", Result: dep8.Pass},
					{Name: "b", Result: dep8.Skip, Detail: "exit status 77 and marked as skippable"},
					{Name: "c", Result: dep8.Flaky, Detail: "non-zero exit status 1"},
				},
			},
		},
		{
			name: "fail, as the fixture gives",
			code: 6,
			files: map[string]string{
				"summary":         "passes               PASS\nfails                FAIL non-zero exit status 1\nskippable            SKIP exit status 77 and marked as skippable\nflaky                FLAKY non-zero exit status 1\n",
				"testpkg-version": "sparegrid-fixture 1.0\n",
			},
			want: Outcome{
				ExitCode: 6,
				Verdict:  dep8.VerdictFail,
				Tests: []dep8.Test{
					{Name: "passes", Result: dep8.Pass},
					{Name: "fails", Result: dep8.Fail, Detail: "non-zero exit status 1"},
					{Name: "skippable", Result: dep8.Skip, Detail: "exit status 77 and marked as skippable"},
					{Name: "flaky", Result: dep8.Flaky, Detail: "non-zero exit status 1"},
				},
				TestpkgVersion: "sparegrid-fixture 1.0",
			},
		},
		{
			name: "erroneous package",
			code: 12,
			files: map[string]string{
				"summary": "blame: hello\nbadpkg: Test dependencies are unsatisfiable. A common reason is that your testbed is out of date with respect to the archive, and you need to use a current testbed or run apt-get update or use -U.\n",
			},
			want: Outcome{
				ExitCode: 12,
				Verdict:  dep8.VerdictFail,
				Notes: []string{
					"blame: hello",
					"badpkg: Test dependencies are unsatisfiable. A common reason is that your testbed is out of date with respect to the archive, and you need to use a current testbed or run apt-get update or use -U.",
				},
			},
		},
		{
			name:  "skip only",
			code:  8,
			files: map[string]string{"summary": "skippable            SKIP exit status 77 and marked as skippable\n"},
			want: Outcome{
				ExitCode: 8,
				Verdict:  dep8.VerdictNeutral,
				Tests:    []dep8.Test{{Name: "skippable", Result: dep8.Skip, Detail: "exit status 77 and marked as skippable"}},
			},
		},
		{
			name:  "neutral, no tests",
			code:  8,
			files: map[string]string{"summary": "*                    SKIP no tests in this package\n"},
			want: Outcome{
				ExitCode: 8,
				Verdict:  dep8.VerdictNeutral,
				Tests:    []dep8.Test{{Name: "*", Result: dep8.Skip, Detail: "no tests in this package"}},
			},
		},
		{
			name:  "missing summary",
			code:  0,
			files: map[string]string{"log": "something\n"},
			want: Outcome{
				ExitCode: 0,
				Verdict:  dep8.VerdictTmpfail,
				Notes:    []string{"runner: exit code 0 says pass but the summary cannot be read: open …/summary: no such file or directory"},
			},
		},
		{
			name:  "unparsable summary",
			code:  4,
			files: map[string]string{"summary": "t                    WEIRD something\n"},
			want: Outcome{
				ExitCode: 4,
				Verdict:  dep8.VerdictTmpfail,
				Notes:    []string{`runner: exit code 4 says fail but the summary cannot be read: dep8: bad summary: line 1: unknown result "WEIRD" for test "t"`},
			},
		},
		{
			name:  "exit 16 with a summary",
			code:  16,
			files: map[string]string{"summary": "t                    PASS\ntestbed failure: unexpected eof from the testbed\n"},
			want: Outcome{
				ExitCode: 16,
				Verdict:  dep8.VerdictTmpfail,
				Tests:    []dep8.Test{{Name: "t", Result: dep8.Pass}},
				Notes:    []string{"testbed failure: unexpected eof from the testbed"},
			},
		},
		{
			name:  "exit 20 with a failed test",
			code:  20,
			files: map[string]string{"summary": "t                    FAIL non-zero exit status 1\n"},
			want: Outcome{
				ExitCode: 20,
				Verdict:  dep8.VerdictTmpfail,
				Tests:    []dep8.Test{{Name: "t", Result: dep8.Fail, Detail: "non-zero exit status 1"}},
			},
		},
		{
			name:  "fail without a failed test",
			code:  4,
			files: map[string]string{"summary": "t                    PASS\n"},
			want: Outcome{
				ExitCode: 4,
				Verdict:  dep8.VerdictTmpfail,
				Tests:    []dep8.Test{{Name: "t", Result: dep8.Pass}},
				Notes:    []string{"runner: exit code 4 says fail but the summary has neither a failed test nor an erroneous package"},
			},
		},
		{
			name:  "pass with a failed test",
			code:  0,
			files: map[string]string{"summary": "t                    FAIL non-zero exit status 1\n"},
			want: Outcome{
				ExitCode: 0,
				Verdict:  dep8.VerdictTmpfail,
				Tests:    []dep8.Test{{Name: "t", Result: dep8.Fail, Detail: "non-zero exit status 1"}},
				Notes:    []string{"runner: exit code 0 says pass but the summary has 1 failed tests"},
			},
		},
		{
			name:  "pass without tests",
			code:  0,
			files: map[string]string{"summary": ""},
			want: Outcome{
				ExitCode: 0,
				Verdict:  dep8.VerdictTmpfail,
				Notes:    []string{"runner: exit code 0 says pass but the summary has no tests"},
			},
		},
		{
			name:  "unknown exit code",
			code:  1,
			files: map[string]string{"summary": "t                    PASS\n"},
			want: Outcome{
				ExitCode: 1,
				Verdict:  dep8.VerdictTmpfail,
				Tests:    []dep8.Test{{Name: "t", Result: dep8.Pass}},
				Notes:    []string{"runner: dep8: unknown autopkgtest exit code: 1"},
			},
		},
		{
			name: "bad testpkg-version and testinfo are noted, not fatal",
			code: 0,
			files: map[string]string{
				"summary":         "t                    PASS\n",
				"testpkg-version": "hello\n",
				"testinfo.json":   "[]",
			},
			want: Outcome{
				ExitCode: 0,
				Verdict:  dep8.VerdictPass,
				Tests:    []dep8.Test{{Name: "t", Result: dep8.Pass}},
				Notes: []string{
					`runner: bad testpkg-version: "hello" is not "package version"`,
					"runner: dep8: bad testinfo: not a JSON object",
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeOutputDir(t, tt.files)
			got := ReadOutput(dir, tt.code)
			for i, n := range got.Notes {
				got.Notes[i] = strings.ReplaceAll(n, dir, "…")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadOutput(%d) mismatch (-want +got):\n%s", tt.code, diff)
			}
		})
	}
}

func TestParseTestpkgVersion(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"archive package", "hello 2.10-3\n", "hello 2.10-3", false},
		{"no newline", "hello 2.10-3", "hello 2.10-3", false},
		{"epoch", "sparegrid-fixture 1:1.0~rc1\n", "sparegrid-fixture 1:1.0~rc1", false},
		{"empty", "", "", true},
		{"name only", "hello\n", "", true},
		{"two lines", "hello 1\nbye 2\n", "", true},
		{"three fields", "hello 1 2\n", "", true},
		{"control character", "hello 1\x1b[2J\n", "", true},
		{"not UTF-8", "hello \xff\n", "", true},
		{"too long", "hello " + strings.Repeat("1", 2000), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTestpkgVersion(strings.NewReader(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrBadTestpkgVersion) {
					t.Errorf("ParseTestpkgVersion(%q) = %q, %v, want %v", tt.in, got, err, ErrBadTestpkgVersion)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseTestpkgVersion(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseTestpkgVersion(f *testing.F) {
	f.Add("hello 2.10-3\n")
	f.Add("sparegrid-fixture 1.0\n")
	f.Add("")
	f.Add("a b c\n")
	f.Add("\n\nx 1\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseTestpkgVersion(strings.NewReader(in))
		if err != nil {
			return
		}
		name, version, ok := strings.Cut(got, " ")
		if !ok || name == "" || version == "" || strings.ContainsAny(got, "\n\r\t") || strings.Contains(version, " ") {
			t.Fatalf("ParseTestpkgVersion(%q) = %q, not one \"package version\" line", in, got)
		}
	})
}

// FuzzReadOutput checks that whatever autopkgtest wrote, the verdict is
// one sparegrid knows and is backed up by the summary.
func FuzzReadOutput(f *testing.F) {
	f.Add(0, "t                    PASS\n")
	f.Add(4, "t                    FAIL non-zero exit status 1\n")
	f.Add(6, "a                    PASS\nb                    FAIL x\nc                    SKIP y\n")
	f.Add(8, "*                    SKIP no tests in this package\n")
	f.Add(12, "blame: x\nbadpkg: y\n")
	f.Add(16, "testbed failure: z\n")
	f.Add(4, "t                    PASS\n")
	f.Add(-1, "")
	f.Fuzz(func(t *testing.T, code int, summary string) {
		dir := writeOutputDir(t, map[string]string{"summary": summary})
		got := ReadOutput(dir, code)
		if !got.Verdict.Valid() || got.Verdict == dep8.VerdictCancelled || got.Verdict == dep8.VerdictError {
			t.Fatalf("ReadOutput(%d, %q).Verdict = %q", code, summary, got.Verdict)
		}
		fails := 0
		for _, tt := range got.Tests {
			if tt.Result == dep8.Fail {
				fails++
			}
		}
		switch got.Verdict {
		case dep8.VerdictPass:
			if fails > 0 || len(got.Tests) == 0 {
				t.Fatalf("ReadOutput(%d, %q) = pass with %d tests, %d failed", code, summary, len(got.Tests), fails)
			}
		case dep8.VerdictFail:
			if fails == 0 && !hasErroneousNote(got.Notes) {
				t.Fatalf("ReadOutput(%d, %q) = fail without a failed test or erroneous package", code, summary)
			}
		}
		if (code == 16 || code == 20) && got.Verdict != dep8.VerdictTmpfail {
			t.Fatalf("ReadOutput(%d, %q).Verdict = %q, want tmpfail", code, summary, got.Verdict)
		}
	})
}
