package notify

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func ptr[T any](v T) *T { return &v }

var finished = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func sampleLog() string {
	var b strings.Builder
	b.WriteString("autopkgtest [05:00:00]: starting date and time: 2025-03-04 05:00:00+0000\n")
	for i := range 30 {
		b.WriteString("setup line " + string(rune('a'+i%26)) + "\n")
	}
	b.WriteString("autopkgtest [05:01:00]: test upstream: [-----------------------\n")
	b.WriteString("running 12 checks\n")
	b.WriteString("check 7: expected 4, got 5\n")
	b.WriteString("autopkgtest [05:01:02]: test upstream: -----------------------]\n")
	b.WriteString("upstream             FAIL non-zero exit status 1\n")
	b.WriteString("autopkgtest [05:01:02]: test upstream:  - - - - - - - - - - stderr - - - - - - - - - -\n")
	b.WriteString("make: *** [check] Error 1\n")
	b.WriteString("autopkgtest [05:01:03]: @@@@@@@@@@@@@@@@@@@@ summary\n")
	b.WriteString("smoke                PASS\n")
	b.WriteString("upstream             FAIL non-zero exit status 1\n")
	return b.String()
}

func sampleRuns() []store.PackageRun {
	var runs []store.PackageRun
	for i := range 25 {
		v := dep8.VerdictPass
		switch {
		case i%5 == 0:
			v = dep8.VerdictFail
		case i%7 == 0:
			v = dep8.VerdictTmpfail
		}
		runs = append(runs, store.PackageRun{Release: "unstable", Arch: "amd64", Verdict: v, Finished: finished.Add(-time.Duration(i) * time.Hour)})
	}
	return append(runs, store.PackageRun{Release: "trixie", Arch: "amd64", Verdict: dep8.VerdictFail, Finished: finished})
}

func TestRenderGolden(t *testing.T) {
	v := verdict.Verdict{
		Package: "hello", Version: "2.10-3", Triggers: []string{"libc6/2.41-1"}, Release: "unstable", Arch: "amd64",
		Status: verdict.Regression, Reason: "failed on 2 agents; the baseline passed",
	}
	job := store.Job{ID: 42, Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64", FinishedAt: ptr(finished)}
	res := store.Result{
		Tests:   []dep8.Test{{Name: "smoke", Result: dep8.Pass}, {Name: "upstream", Result: dep8.Fail, Detail: "non-zero exit status 1"}},
		Harness: dep8.Harness{AgentVersion: "1.2.0", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:abc"},
	}
	fixedV := v
	fixedV.Status, fixedV.Reason = verdict.Pass, "passed with the triggers"
	passed := res
	passed.Tests = []dep8.Test{{Name: "smoke", Result: dep8.Pass}, {Name: "upstream", Result: dep8.Pass}}
	errJob := store.Job{ID: 43, Package: "zlib", Release: "trixie", Arch: "arm64", Attempt: 3, Reason: "testbed setup failed:\napt-get update: 503 Service Unavailable", AgentID: ptr(int64(7)), FinishedAt: ptr(finished)}

	tests := []struct {
		name string
		msg  Message
		base string
	}{
		{"regression", VerdictMessage(Regression, v, job, res, sampleLog(), sampleRuns()), "https://grid.example.org/"},
		{"fixed", VerdictMessage(Fixed, fixedV, job, passed, "", sampleRuns()), "https://grid.example.org"},
		{"regression without log or base", VerdictMessage(Regression, v, job, store.Result{}, "", nil), ""},
		{"job error", JobErrorMessage(errJob), "https://grid.example.org"},
		{"agent paused", AgentPausedMessage(store.Agent{ID: 7, Name: "box1"}, "disk full: /var/lib/sparegrid", finished), ""},
		{"check failed", CheckFailedMessage("mirror", "release:unstable", "HTTP 503 from http://mirror.example.org/", finished), ""},
		{"digest", Message{Kind: Digest, Summary: "3 mails to you were held back.", Held: []string{"[sparegrid] REGRESSION: a 1 on unstable/amd64", "[sparegrid] REGRESSION: b 1 on unstable/amd64", "[sparegrid] fixed: c 1 on unstable/amd64 passes again"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := Render(tt.msg, tt.base)
			if err != nil {
				t.Fatalf("Render = %v", err)
			}
			got := "Subject: " + tt.msg.Subject() + "\n\n" + body
			path := filepath.Join("testdata", strings.ReplaceAll(tt.name, " ", "-")+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file: %v (run with -update to create it)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("Render(%s) mismatch (-want +got):\n%s", tt.name, d)
			}
		})
	}
}

func TestFailureRate(t *testing.T) {
	tests := []struct {
		name          string
		runs          []store.PackageRun
		release, arch string
		want          Rate
	}{
		{"none", nil, "unstable", "amd64", Rate{}},
		{"newest twenty, infrastructure left out", sampleRuns(), "unstable", "amd64", Rate{Failed: 5, Runs: 20}},
		{"other target", sampleRuns(), "trixie", "amd64", Rate{Failed: 1, Runs: 1}},
		{"unknown arch", sampleRuns(), "unstable", "arm64", Rate{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FailureRate(tt.runs, tt.release, tt.arch); got != tt.want {
				t.Errorf("FailureRate = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSubjectBounded(t *testing.T) {
	m := Message{Kind: Regression, Package: strings.Repeat("p", 400), Release: "unstable", Arch: "amd64"}
	if s := m.Subject(); len(s) > store.MaxMailSubject || strings.ContainsAny(s, "\r\n") {
		t.Errorf("Subject() = %d bytes, want at most %d on one line", len(s), store.MaxMailSubject)
	}
	m = Message{Kind: AgentPaused, Agent: "evil\r\nBcc: x@example.org"}
	if s := m.Subject(); strings.ContainsAny(s, "\r\n") {
		t.Errorf("Subject() = %q, want one line", s)
	}
}
