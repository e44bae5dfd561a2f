package notify

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func numbered(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

func TestLogExcerpt(t *testing.T) {
	with := func(lines []string, at int, l string) []string {
		out := append([]string(nil), lines...)
		out[at-1] = l
		return out
	}
	long := strings.Repeat("é", MaxExcerptLine)
	tests := []struct {
		name      string
		log       []string
		test      string
		wantFirst int
		wantLen   int
		wantLine  map[int]string // line number in the log -> expected text
	}{
		{name: "empty log", log: nil, test: "smoke"},
		{name: "result line in the middle", log: with(numbered(100), 50, "smoke  FAIL non-zero exit status 1"), test: "smoke",
			wantFirst: 36, wantLen: 20, wantLine: map[int]string{50: "smoke  FAIL non-zero exit status 1"}},
		{name: "result line near the start", log: with(numbered(100), 3, "smoke FAIL"), test: "smoke", wantFirst: 1, wantLen: 20},
		{name: "result line at the end", log: with(numbered(30), 30, "smoke\tFAIL stderr: x"), test: "smoke", wantFirst: 11, wantLen: 20},
		{name: "other test's failure is not it", log: with(with(numbered(100), 20, "smoke-extra FAIL"), 80, "smoke FAIL"), test: "smoke", wantFirst: 66, wantLen: 20},
		{name: "a pass is not it", log: with(numbered(100), 20, "smoke PASS"), test: "smoke", wantFirst: 81, wantLen: 20},
		{name: "output section without result line",
			log:  with(with(numbered(100), 10, "autopkgtest [05:01:00]: test smoke: [-----------------------"), 60, "autopkgtest [05:01:02]: test smoke: -----------------------]"),
			test: "smoke", wantFirst: 41, wantLen: 20},
		{name: "short output section",
			log:  with(with(numbered(100), 10, "autopkgtest [05:01:00]: test smoke: [-----------------------"), 15, "autopkgtest [05:01:02]: test smoke: -----------------------]"),
			test: "smoke", wantFirst: 10, wantLen: 6},
		{name: "unterminated output section",
			log:  with(numbered(100), 90, "autopkgtest [05:01:00]: test smoke: [-----------------------"),
			test: "smoke", wantFirst: 90, wantLen: 11},
		{name: "no test name: end of the log", log: numbered(100), test: "", wantFirst: 81, wantLen: 20},
		{name: "short log", log: numbered(5), test: "smoke", wantFirst: 1, wantLen: 5},
		{name: "control characters and a long line", log: []string{"a\x1b[31mred\x00", long, "x\r"}, test: "",
			wantFirst: 1, wantLen: 3, wantLine: map[int]string{1: "a?[31mred?", 2: strings.Repeat("é", MaxExcerptLine/2) + "…", 3: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := strings.Join(tt.log, "\n")
			if len(tt.log) > 0 {
				log += "\n"
			}
			got := LogExcerpt(log, tt.test)
			if got.First != tt.wantFirst || len(got.Lines) != tt.wantLen {
				t.Fatalf("LogExcerpt = first %d, %d lines, want first %d, %d lines", got.First, len(got.Lines), tt.wantFirst, tt.wantLen)
			}
			for n, want := range tt.wantLine {
				if d := cmp.Diff(want, got.Lines[n-got.First]); d != "" {
					t.Errorf("LogExcerpt line %d mismatch (-want +got):\n%s", n, d)
				}
			}
		})
	}
}

func FuzzLogExcerpt(f *testing.F) {
	f.Add(sampleLog(), "upstream")
	f.Add("smoke FAIL\n", "smoke")
	f.Add("test x: [-\n\xff\xfe\n", "x")
	f.Fuzz(func(t *testing.T, log, test string) {
		got := LogExcerpt(log, test)
		if len(got.Lines) > ExcerptLines {
			t.Errorf("LogExcerpt = %d lines, want at most %d", len(got.Lines), ExcerptLines)
		}
		if len(got.Lines) > 0 && got.First < 1 {
			t.Errorf("LogExcerpt = first line %d, want at least 1", got.First)
		}
		for _, l := range got.Lines {
			if len(l) > MaxExcerptLine+len("…") || !utf8.ValidString(l) || strings.ContainsAny(l, "\r\n\x00") {
				t.Errorf("LogExcerpt line %q is not a clean, bounded line", l)
			}
		}
	})
}
