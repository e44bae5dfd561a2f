package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sparegrid/sparegrid/agent/internal/procgroup"
	"github.com/sparegrid/sparegrid/agent/internal/proctest"
	"github.com/sparegrid/sparegrid/agent/recovery"
)

// fakeAutopkgtest puts an autopkgtest on PATH that waits for the run
// record at record, copies it and its own pid into its output directory,
// and exits 0. It gives up after a bounded number of checks. The test
// must not be parallel.
func fakeAutopkgtest(t *testing.T, record string) {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
out=$3
mkdir -p "$out"
i=0
while [ ! -e '%[1]s' ]; do
	i=$((i+1))
	[ $i -gt 1000 ] && exit 99
	sleep 0.01
done
cp '%[1]s' "$out/record-seen"
echo $$ > "$out/pid"
echo 'passes PASS' > "$out/summary"
`, record)
	if err := os.WriteFile(filepath.Join(dir, "autopkgtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestRunRecord(t *testing.T) {
	if _, err := AutopkgtestVersion(t.Context()); err != nil {
		t.Skipf("autopkgtest is not installed: %v", err)
	}
	work := t.TempDir()
	record := filepath.Join(work, recovery.RecordFile)
	outDir := filepath.Join(work, "out")
	fakeAutopkgtest(t, record)
	log := proctest.NewOutput("")
	got, err := Run(t.Context(), Spec{Package: "hello", Image: testImage(), OutputDir: outDir, RunRecord: record, Log: log})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	if got.ExitCode != 0 {
		t.Fatalf("Run exit code = %d, want 0 from the fake autopkgtest\n%s", got.ExitCode, log.String())
	}
	seen, err := recovery.ReadRecord(filepath.Join(outDir, "record-seen"))
	if err != nil {
		t.Fatalf("record autopkgtest saw while it ran: %v", err)
	}
	pidText, err := os.ReadFile(filepath.Join(outDir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatal(err)
	}
	boot, err := recovery.BootID()
	if err != nil {
		t.Fatal(err)
	}
	if seen.PGID != pid || seen.BootID != boot || seen.StartTime == 0 {
		t.Errorf("run record while autopkgtest ran = %+v, want pgid %d, boot %s and a start time", seen, pid, boot)
	}
	if _, err := os.Lstat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run record %s left after Run (stat error %v)", record, err)
	}
	for _, n := range got.Notes {
		if strings.Contains(n, "run record") {
			t.Errorf("Run note %q, want none about the run record", n)
		}
	}
}

func TestRunRecordCannotBeWritten(t *testing.T) {
	if _, err := AutopkgtestVersion(t.Context()); err != nil {
		t.Skipf("autopkgtest is not installed: %v", err)
	}
	work := t.TempDir()
	record := filepath.Join(work, "missing", recovery.RecordFile)
	outDir := filepath.Join(work, "out")
	fakeAutopkgtest(t, record)
	_, err := Run(t.Context(), Spec{Package: "hello", Image: testImage(), OutputDir: outDir, RunRecord: record})
	if !errors.Is(err, ErrStart) || !errors.Is(err, procgroup.ErrOnStart) {
		t.Errorf("Run(unwritable run record) error = %v, want %v and %v", err, ErrStart, procgroup.ErrOnStart)
	}
	proctest.WaitGone(t, proctest.ArgContains(outDir))
}

func TestRunRecordMustBeAbsolute(t *testing.T) {
	spec := Spec{Package: "hello", Image: testImage(), OutputDir: "/out", RunRecord: "run.json"}
	if _, err := CommandLine(spec); !errors.Is(err, ErrBadSpec) {
		t.Errorf("CommandLine(relative run record) error = %v, want %v", err, ErrBadSpec)
	}
}
