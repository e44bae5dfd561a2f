package runner

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/internal/proctest"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// fixtureDir is the e2e fixture package, whose expected results are
// described in its README.
const fixtureDir = "../../e2e/testdata/fixture"

// fixtureTests are the per-test results autopkgtest gives the fixture.
var fixtureTests = []dep8.Test{
	{Name: "passes", Result: dep8.Pass},
	{Name: "fails", Result: dep8.Fail, Detail: "non-zero exit status 1"},
	{Name: "skippable", Result: dep8.Skip, Detail: "exit status 77 and marked as skippable"},
	{Name: "flaky", Result: dep8.Flaky, Detail: "non-zero exit status 1"},
}

// fixtureFiles are the files autopkgtest leaves for the fixture, in the
// order Artifacts lists them.
var fixtureFiles = []string{
	"log",
	"fails-packages", "fails-stderr",
	"flaky-packages", "flaky-stderr",
	"passes-packages", "passes-stdout",
	"skippable-packages", "skippable-stdout",
	"summary", "testbed-packages", "testinfo.json", "testpkg-version",
}

// realImage returns a bookworm image for the host architecture: the one
// in $SPAREGRID_TEST_IMAGE_DIR (built there if missing), or a fresh one in
// a temporary directory.
func realImage(t *testing.T) image.Image {
	t.Helper()
	arch, err := image.HostArch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	state := os.Getenv("SPAREGRID_TEST_IMAGE_DIR")
	if state == "" {
		state = t.TempDir()
	} else if img, err := image.Lookup(state, "bookworm", arch); err == nil {
		return img
	} else if !errors.Is(err, image.ErrNoImage) {
		t.Fatal(err)
	}
	log := proctest.NewOutput("")
	img, err := image.Build(t.Context(), image.BuildOptions{StateDir: state, Release: "bookworm", Arch: arch, Log: log})
	if err != nil {
		t.Fatalf("image.Build: %v\n%s", err, log.String())
	}
	return img
}

func unpackDirArg(args []string) string {
	for i, a := range args {
		if a == "--unpack-dir" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func tail(s string) string {
	const n = 3000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// TestReal runs the real autopkgtest on the fixture package in a real
// unshare testbed.
func TestReal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real autopkgtest in a bookworm testbed; skipped with -short")
	}
	img := realImage(t)
	fixture, err := filepath.Abs(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	version, err := AutopkgtestVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	runFixture := func(t *testing.T, source string) {
		t.Parallel()
		outDir := filepath.Join(t.TempDir(), "out")
		log := proctest.NewOutput("")
		spec := Spec{SourcePath: source, Version: "1.0", Image: img, OutputDir: outDir, Log: log}
		got, err := Run(t.Context(), spec)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, tail(log.String()))
		}
		if got.ExitCode != 6 || got.Verdict != dep8.VerdictFail {
			t.Errorf("Run = exit %d, verdict %q, want exit 6, verdict %q\nnotes: %q\n%s", got.ExitCode, got.Verdict, dep8.VerdictFail, got.Notes, tail(log.String()))
		}
		if diff := cmp.Diff(fixtureTests, got.Tests); diff != "" {
			t.Errorf("Run tests mismatch (-want +got):\n%s", diff)
		}
		if len(got.Notes) != 0 {
			t.Errorf("Run notes = %q, want none", got.Notes)
		}
		if got.TestpkgVersion != "sparegrid-fixture 1.0" {
			t.Errorf("Run TestpkgVersion = %q, want %q", got.TestpkgVersion, "sparegrid-fixture 1.0")
		}
		if got.AutopkgtestVersion != version {
			t.Errorf("Run AutopkgtestVersion = %q, want %q", got.AutopkgtestVersion, version)
		}
		if !strings.HasPrefix(got.Testinfo.VirtServer, "autopkgtest-virt-unshare ") {
			t.Errorf("Run Testinfo.VirtServer = %q, want autopkgtest-virt-unshare ...", got.Testinfo.VirtServer)
		}
		if got.Duration <= 0 {
			t.Errorf("Run Duration = %v, want > 0", got.Duration)
		}
		if work := filepath.Dir(unpackDirArg(got.Args)); work == "." {
			t.Errorf("Run Args = %q, want an --unpack-dir", got.Args)
		} else if _, err := os.Lstat(work); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("testbed directory %s left behind (stat error %v)", work, err)
		}

		files, err := Artifacts(outDir)
		if err != nil {
			t.Fatalf("Artifacts: %v", err)
		}
		var names []string
		for _, f := range files {
			names = append(names, f.Name)
		}
		if diff := cmp.Diff(fixtureFiles, names); diff != "" {
			t.Errorf("Artifacts names mismatch (-want +got):\n%s", diff)
		}
		stderr, err := os.ReadFile(filepath.Join(outDir, "fails-stderr"))
		if err != nil || string(stderr) != "sparegrid-fixture: this test fails on purpose\n" {
			t.Errorf("fails-stderr = %q, %v, want the fixture's message", stderr, err)
		}
	}

	t.Run("tree", func(t *testing.T) { runFixture(t, fixture) })
	t.Run("dsc", func(t *testing.T) {
		dir := t.TempDir()
		cmd := exec.CommandContext(t.Context(), "dpkg-source", "-b", fixture)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg-source -b: %v\n%s", err, out)
		}
		runFixture(t, filepath.Join(dir, "sparegrid-fixture_1.0.dsc"))
	})
	t.Run("archive package", func(t *testing.T) {
		t.Parallel()
		log := proctest.NewOutput("")
		spec := Spec{Package: "hello", Image: img, OutputDir: filepath.Join(t.TempDir(), "out"), Log: log}
		got, err := Run(t.Context(), spec)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, tail(log.String()))
		}
		if got.ExitCode != 0 || got.Verdict != dep8.VerdictPass || len(got.Tests) == 0 {
			t.Fatalf("Run(hello) = exit %d, verdict %q, %d tests, want exit 0, %q, some tests\nnotes: %q\n%s",
				got.ExitCode, got.Verdict, len(got.Tests), dep8.VerdictPass, got.Notes, tail(log.String()))
		}
		for _, tt := range got.Tests {
			if tt.Result != dep8.Pass {
				t.Errorf("Run(hello) test %+v, want PASS", tt)
			}
		}
		if !strings.HasPrefix(got.TestpkgVersion, "hello ") {
			t.Errorf("Run(hello) TestpkgVersion = %q, want hello and a version", got.TestpkgVersion)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		testCancel(t, img)
	})
}

// testCancel cancels a run while a test sleeps in the testbed, and checks
// that autopkgtest, its virt server and the test are all gone when Run
// returns.
func testCancel(t *testing.T, img image.Image) {
	marker := proctest.SleepArg()
	src := writeOutputDir(t, map[string]string{
		"debian/control":       "Source: sparegrid-sleeper\nMaintainer: sparegrid developers <[email protected]>\n\nPackage: sparegrid-sleeper\nArchitecture: all\nDescription: sleeps\n sleeps\n",
		"debian/changelog":     "sparegrid-sleeper (1.0) unstable; urgency=medium\n\n  * Sleep.\n\n -- sparegrid developers <[email protected]>  Mon, 01 Jan 2024 00:00:00 +0000\n",
		"debian/source/format": "3.0 (native)\n",
		"debian/tests/control": "Tests: sleeper\nDepends: dash\n",
		"debian/tests/sleeper": "#!/bin/sh\necho sparegrid-sleeper-started\nexec sleep " + marker + "\n",
	})
	if err := os.Chmod(filepath.Join(src, "debian/tests/sleeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := proctest.NewOutput("sparegrid-sleeper-started")
	type result struct {
		out Outcome
		err error
	}
	resc := make(chan result, 1)
	go func() {
		out, err := Run(ctx, Spec{SourcePath: src, Image: img, OutputDir: outDir, Log: log})
		resc <- result{out, err}
	}()
	select {
	case <-log.Ready():
	case r := <-resc:
		t.Fatalf("Run finished before the test started: %+v, %v\n%s", r.out, r.err, tail(log.String()))
	}
	// The test prints its line just before it execs sleep, and the line
	// reaches us first: give the exec a moment.
	var ps []proctest.Proc
	for deadline := time.Now().Add(30 * time.Second); len(ps) == 0 && time.Now().Before(deadline); {
		if ps = proctest.Processes(t, proctest.ArgContains(marker)); len(ps) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(ps) == 0 {
		t.Fatalf("no sleeping test process with marker %s", marker)
	}
	cancel()
	r := <-resc
	if !errors.Is(r.err, ErrCancelled) || !errors.Is(r.err, context.Canceled) {
		t.Errorf("Run(cancelled) error = %v, want %v and %v", r.err, ErrCancelled, context.Canceled)
	}
	if r.out.Verdict != dep8.VerdictCancelled || r.out.ExitCode != -1 {
		t.Errorf("Run(cancelled) = verdict %q, exit %d, want %q, -1", r.out.Verdict, r.out.ExitCode, dep8.VerdictCancelled)
	}
	for _, s := range []string{marker, outDir} {
		proctest.WaitGone(t, proctest.ArgContains(s))
	}
	if work := filepath.Dir(unpackDirArg(r.out.Args)); work == "." {
		t.Errorf("Run Args = %q, want an --unpack-dir", r.out.Args)
	} else if _, err := os.Lstat(work); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("testbed directory %s left behind (stat error %v)", work, err)
	}
}
