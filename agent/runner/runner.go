// Package runner owns one autopkgtest invocation: it builds the command
// line for a job, runs the real autopkgtest with a stock virt server in its
// own process group, kills that group when the job is cancelled, and reads
// autopkgtest's output directory back into an Outcome.
//
// It must not talk to the coordinator, decide retries, or re-implement
// DEP-8: autopkgtest runs the tests and shared/dep8 reads what it wrote.
// Building testbed images belongs to agent/image.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/internal/procgroup"
	"github.com/sparegrid/sparegrid/agent/recovery"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// Errors returned by this package.
var (
	ErrBadSpec   = errors.New("runner: bad spec")
	ErrStart     = errors.New("runner: cannot start autopkgtest")
	ErrCancelled = errors.New("runner: cancelled")
)

// DefaultGrace is how long autopkgtest gets to close its testbed after
// SIGTERM before its process group is killed.
const DefaultGrace = 30 * time.Second

// Spec describes one autopkgtest run.
type Spec struct {
	// Package is the source package to test, fetched by autopkgtest with
	// apt-get source inside the testbed. Exactly one of Package and
	// SourcePath must be set.
	Package string
	// Version is the source version the job asks for. autopkgtest has no
	// option to test an exact version of an archive package: it tests
	// what the testbed's apt sources offer. Run therefore does not pass
	// Version on; it compares it with the version autopkgtest reports it
	// tested and turns a difference into a tmpfail.
	Version string
	// Triggers are "source/version" pairs that caused the job. They are
	// passed to the tests as ADT_TEST_TRIGGERS (space-separated), as
	// Debian's and Ubuntu's CI do; they do not change which packages apt
	// installs: AptSources do.
	Triggers []string
	// AptSources are sources.list lines added to the testbed before the
	// tests (autopkgtest's --add-apt-source), such as the repository
	// holding the upload that triggered the job, whose newer versions apt
	// then installs. Each must pass protocol.ValidAptSource.
	AptSources []string
	// SkipTests are tests to leave out of the run (autopkgtest's
	// --skip-test), such as those the coordinator's blocklist skips. Each
	// must be a test name: 1 to 100 printable ASCII characters without
	// space, comma or slash.
	SkipTests []string
	// Tests, when not empty, are the only tests to run (autopkgtest's
	// --test-name, once per name), such as the share of a package's
	// tests the coordinator gave this agent. Each must be a test name, as
	// for SkipTests.
	Tests []string
	// SourcePath is an unpacked Debian source tree or a .dsc file whose
	// tests are run instead of an archive package's. Its tests run against
	// archive binaries (--no-built-binaries); a test that needs the
	// package built (build-needed) still builds it.
	SourcePath string
	// Image is the testbed base image: a tarball for autopkgtest's unshare
	// backend, a directory for sparegrid's overlay backend, or a
	// registered base volume whose Args are passed to sparegrid's xenlvm
	// backend. Run trusts Image.Digest; callers check it with
	// image.Verify.
	Image image.Image
	// VirtServer is the autopkgtest-virt-sparegrid program that runs
	// overlay and xenlvm images: an absolute path, or a name autopkgtest looks up on
	// PATH; DefaultVirtServer when empty.
	VirtServer string
	// Sudo, when set, is the command line that runs the overlay virt
	// server as root, such as {"/usr/bin/sudo", "-n"}; autopkgtest then
	// starts Sudo[0] with the rest of Sudo, VirtServer and the server's
	// arguments. VirtServer must then be an absolute path, the one the
	// sudoers rule names. The unshare backend ignores Sudo, and so does
	// xenlvm, which has its own --sudo among Image.Args.
	Sudo []string
	// OutputDir is autopkgtest's output directory. It must not exist or be
	// empty.
	OutputDir string
	// Log receives autopkgtest's combined output as it runs; nil discards it.
	Log io.Writer
	// Timeout, when positive, limits each test (autopkgtest's
	// --timeout-test, rounded up to whole seconds). A test that runs out
	// of time fails. The deadline of the whole run is ctx's.
	Timeout time.Duration
	// Grace is how long autopkgtest gets after SIGTERM on cancellation;
	// zero means DefaultGrace.
	Grace time.Duration
	// RunRecord, when set, is an absolute path where Run keeps a
	// recovery.Record of autopkgtest's process group from right after
	// autopkgtest starts until the whole group is gone, so that an agent
	// restarted after a crash can end a group it left running. A run
	// whose record cannot be written is killed at once and fails with
	// ErrStart.
	RunRecord string
}

// Outcome is what one autopkgtest run produced.
type Outcome struct {
	// ExitCode is autopkgtest's exit code, or -1 when it did not exit by
	// itself (it was killed or never started).
	ExitCode int
	Verdict  dep8.Verdict
	// Tests are the per-test results from the summary file, in its order.
	Tests []dep8.Test
	// Notes are the summary's other lines, followed by the runner's own
	// remarks, which start with "runner: ".
	Notes []string
	// TestpkgVersion is the line autopkgtest wrote to testpkg-version,
	// such as "hello 2.10-3"; empty when there was none.
	TestpkgVersion     string
	Testinfo           dep8.Testinfo
	AutopkgtestVersion string
	// Args is the command line that was run, starting with "autopkgtest".
	Args     []string
	Duration time.Duration
}

// CommandLine returns the autopkgtest command line for spec, starting with
// "autopkgtest". It checks the spec but not the file system, except to
// tell a .dsc from a source tree.
func CommandLine(spec Spec) ([]string, error) {
	return commandLine(spec, "")
}

// commandLine is CommandLine with the directory the unshare server unpacks
// the image into, when not empty.
func commandLine(spec Spec, unpackDir string) ([]string, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	args := []string{"autopkgtest", "--apt-upgrade", "--output-dir", spec.OutputDir}
	if spec.Timeout > 0 {
		secs := int64(math.Ceil(spec.Timeout.Seconds()))
		args = append(args, "--timeout-test="+strconv.FormatInt(secs, 10))
	}
	if len(spec.Triggers) > 0 {
		args = append(args, "--env=ADT_TEST_TRIGGERS="+strings.Join(spec.Triggers, " "))
	}
	for _, line := range spec.AptSources {
		args = append(args, "--add-apt-source="+line)
	}
	for _, name := range spec.Tests {
		args = append(args, "--test-name="+name)
	}
	for _, name := range spec.SkipTests {
		args = append(args, "--skip-test="+name)
	}
	var src string
	switch {
	case spec.Package != "":
		src = spec.Package
	case strings.HasSuffix(spec.SourcePath, ".dsc"):
		args = append(args, "--no-built-binaries")
		src = spec.SourcePath
	default:
		args = append(args, "--no-built-binaries")
		src = strings.TrimRight(spec.SourcePath, "/") + "/"
	}
	args = append(args, src, "--")
	virt := spec.VirtServer
	if virt == "" {
		virt = DefaultVirtServer
	}
	switch spec.Image.Backend {
	case image.BackendOverlay:
		args = append(args, spec.Sudo...)
		return append(args, virt, image.BackendOverlay, "--rootfs", spec.Image.Path), nil
	case image.BackendXenLVM:
		args = append(args, virt, image.BackendXenLVM)
		return append(args, spec.Image.Args...), nil
	}
	args = append(args, image.BackendUnshare, "--release", spec.Image.Release)
	if spec.Image.Arch != "" {
		args = append(args, "--arch", spec.Image.Arch)
	}
	args = append(args, "--tarball", spec.Image.Path)
	if unpackDir != "" {
		args = append(args, "--unpack-dir", unpackDir)
	}
	return args, nil
}

// DefaultVirtServer is how autopkgtest finds sparegrid's virt server when
// Spec.VirtServer is empty: it prefixes the name with "autopkgtest-virt-"
// and looks it up on PATH.
const DefaultVirtServer = "sparegrid"

func checkSpec(spec Spec) error {
	switch {
	case spec.Package == "" && spec.SourcePath == "":
		return fmt.Errorf("%w: neither package nor source path", ErrBadSpec)
	case spec.Package != "" && spec.SourcePath != "":
		return fmt.Errorf("%w: both package and source path", ErrBadSpec)
	case spec.Package != "" && !dep8.ValidSource(spec.Package):
		return fmt.Errorf("%w: package %q", ErrBadSpec, spec.Package)
	case spec.SourcePath != "" && !filepath.IsAbs(spec.SourcePath):
		return fmt.Errorf("%w: source path %q is not absolute", ErrBadSpec, spec.SourcePath)
	case spec.Version != "" && !dep8.ValidVersion(spec.Version):
		return fmt.Errorf("%w: version %q", ErrBadSpec, spec.Version)
	case spec.OutputDir == "" || !filepath.IsAbs(spec.OutputDir):
		return fmt.Errorf("%w: output directory %q is not absolute", ErrBadSpec, spec.OutputDir)
	case spec.Image.Backend != image.BackendUnshare && spec.Image.Backend != image.BackendOverlay && spec.Image.Backend != image.BackendXenLVM:
		return fmt.Errorf("%w: image backend %q, want %q, %q or %q", ErrBadSpec, spec.Image.Backend, image.BackendUnshare, image.BackendOverlay, image.BackendXenLVM)
	case spec.Image.Backend == image.BackendXenLVM && len(spec.Image.Args) == 0:
		return fmt.Errorf("%w: xenlvm image without backend arguments", ErrBadSpec)
	case spec.VirtServer != "" && strings.Contains(spec.VirtServer, "/") && !filepath.IsAbs(spec.VirtServer):
		return fmt.Errorf("%w: virt server %q is neither a name nor an absolute path", ErrBadSpec, spec.VirtServer)
	case spec.Image.Backend == image.BackendOverlay && len(spec.Sudo) > 0 && !filepath.IsAbs(spec.Sudo[0]):
		return fmt.Errorf("%w: sudo %q is not an absolute path", ErrBadSpec, spec.Sudo[0])
	case spec.Image.Backend == image.BackendOverlay && len(spec.Sudo) > 0 && !filepath.IsAbs(spec.VirtServer):
		return fmt.Errorf("%w: virt server %q run through sudo is not an absolute path", ErrBadSpec, spec.VirtServer)
	case !dep8.ValidSuite(spec.Image.Release):
		return fmt.Errorf("%w: image release %q", ErrBadSpec, spec.Image.Release)
	case spec.Image.Arch != "" && !dep8.ValidSuite(spec.Image.Arch):
		return fmt.Errorf("%w: image architecture %q", ErrBadSpec, spec.Image.Arch)
	case spec.Image.Backend != image.BackendXenLVM && (spec.Image.Path == "" || !filepath.IsAbs(spec.Image.Path)):
		return fmt.Errorf("%w: image path %q is not absolute", ErrBadSpec, spec.Image.Path)
	case spec.Timeout < 0:
		return fmt.Errorf("%w: negative timeout", ErrBadSpec)
	case spec.RunRecord != "" && !filepath.IsAbs(spec.RunRecord):
		return fmt.Errorf("%w: run record %q is not an absolute path", ErrBadSpec, spec.RunRecord)
	}
	for _, tr := range spec.Triggers {
		if !dep8.ValidTrigger(tr) {
			return fmt.Errorf("%w: trigger %q", ErrBadSpec, tr)
		}
	}
	for _, line := range spec.AptSources {
		if !protocol.ValidAptSource(line) {
			return fmt.Errorf("%w: apt source %q is not one sources.list line", ErrBadSpec, line)
		}
	}
	for _, name := range spec.Tests {
		if !dep8.ValidTestName(name) {
			return fmt.Errorf("%w: test to run %q is not a test name", ErrBadSpec, name)
		}
	}
	for _, name := range spec.SkipTests {
		if !dep8.ValidTestName(name) {
			return fmt.Errorf("%w: skipped test %q is not a test name", ErrBadSpec, name)
		}
	}
	return nil
}

// AutopkgtestVersion returns the installed autopkgtest's package version.
func AutopkgtestVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", "autopkgtest").Output()
	if err != nil {
		return "", fmt.Errorf("runner: dpkg-query autopkgtest: %w", err)
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		return "", errors.New("runner: dpkg-query autopkgtest: empty version")
	}
	return v, nil
}

// Run runs autopkgtest for spec and reads its output directory.
//
// The error is nil whenever autopkgtest ran to the end, whatever its
// verdict, including infrastructure failures (VerdictTmpfail). When ctx is
// done first, autopkgtest's process group gets SIGTERM, then SIGKILL after
// the grace period; Run returns once the group is gone, with
// VerdictCancelled and an error wrapping ErrCancelled and ctx's cause. A
// spec that does not check out gives ErrBadSpec, and autopkgtest that
// cannot be started ErrStart, both with VerdictTmpfail.
func Run(ctx context.Context, spec Spec) (Outcome, error) {
	out := Outcome{ExitCode: -1, Verdict: dep8.VerdictTmpfail}
	if spec.SourcePath != "" {
		abs, err := filepath.Abs(spec.SourcePath)
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrBadSpec, err)
		}
		spec.SourcePath = abs
	}
	if _, err := CommandLine(spec); err != nil {
		return out, err
	}
	if err := checkSource(spec.SourcePath); err != nil {
		return out, err
	}
	if err := checkOutputDir(spec.OutputDir); err != nil {
		return out, err
	}
	var err error
	if out.AutopkgtestVersion, err = AutopkgtestVersion(ctx); err != nil {
		return out, fmt.Errorf("%w: %w", ErrStart, err)
	}
	work, err := os.MkdirTemp("", "sparegrid-testbed-")
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrStart, err)
	}
	unpackDir := filepath.Join(work, "root")
	tmpDir := filepath.Join(work, "tmp")
	if err := os.Mkdir(tmpDir, 0o755); err != nil {
		return out, fmt.Errorf("%w: %w", ErrStart, err)
	}
	out, err = run(ctx, spec, out, unpackDir, tmpDir)
	if rerr := removeTestbed(work, unpackDir); rerr != nil {
		out.Notes = append(out.Notes, "runner: "+rerr.Error())
	}
	return out, err
}

// run runs autopkgtest with the unshare server unpacking into unpackDir
// and its temporary files in tmpDir, and reads its output into out.
func run(ctx context.Context, spec Spec, out Outcome, unpackDir, tmpDir string) (Outcome, error) {
	args, err := commandLine(spec, unpackDir)
	if err != nil {
		return out, err
	}
	out.Args = args
	logw := spec.Log
	if logw == nil {
		logw = io.Discard
	}
	grace := spec.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}

	start := time.Now()
	code, cancelled, err := runAutopkgtest(ctx, args, tmpDir, logw, grace, spec.RunRecord)
	out.Duration = time.Since(start)
	if spec.RunRecord != "" {
		if rerr := os.Remove(spec.RunRecord); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			out.Notes = append(out.Notes, "runner: cannot remove run record: "+rerr.Error())
		}
	}
	if cancelled {
		out.Verdict = dep8.VerdictCancelled
		return out, fmt.Errorf("%w: %w", ErrCancelled, context.Cause(ctx))
	}
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrStart, err)
	}
	read := ReadOutput(spec.OutputDir, code)
	read.AutopkgtestVersion = out.AutopkgtestVersion
	read.Args = out.Args
	read.Duration = out.Duration
	read.Notes = append(read.Notes, out.Notes...)
	checkVersion(&read, spec)
	return read, nil
}

// removeTestbed removes the directory the unshare server unpacked the
// image into, which it leaves behind when it is killed, and then the rest
// of work. Files in the unpacked image belong to subordinate ids, so a
// user other than root removes them inside a user namespace, as the
// unshare server does itself.
func removeTestbed(work, unpackDir string) error {
	if _, err := os.Lstat(unpackDir); err == nil {
		if os.Geteuid() == 0 {
			err = os.RemoveAll(unpackDir)
		} else {
			err = exec.Command("unshare", "--map-auto", "--map-root-user", "rm", "-rf", "--one-file-system", unpackDir).Run()
		}
		if err != nil {
			return fmt.Errorf("remove testbed %s: %w", unpackDir, err)
		}
	}
	if err := os.RemoveAll(work); err != nil {
		return fmt.Errorf("remove testbed: %w", err)
	}
	return nil
}

// checkSource checks that a source path is what autopkgtest will take it
// for: a .dsc file, or a directory with debian/control or
// debian/tests/control.
func checkSource(path string) error {
	if path == "" {
		return nil
	}
	if strings.HasSuffix(path, ".dsc") {
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: %s is not a .dsc file", ErrBadSpec, path)
		}
		return nil
	}
	for _, f := range []string{"debian/control", "debian/tests/control"} {
		if fi, err := os.Stat(filepath.Join(path, f)); err == nil && fi.Mode().IsRegular() {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not a Debian source tree", ErrBadSpec, path)
}

func checkOutputDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: output directory: %w", ErrBadSpec, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%w: output directory %s is not empty", ErrBadSpec, dir)
	}
	return nil
}

// runAutopkgtest runs args with TMPDIR set to tmpDir and output to w, and
// returns the exit code, or -1 when the process did not exit by itself.
// autopkgtest leaves temporary files behind when it is killed; with its
// own TMPDIR they go when the run's work directory is removed. When
// record is set, the process group's run record is written there as soon
// as autopkgtest has started; the caller removes it.
func runAutopkgtest(ctx context.Context, args []string, tmpDir string, w io.Writer, grace time.Duration, record string) (code int, cancelled bool, err error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmpDir)
	cmd.Stdout = w
	cmd.Stderr = w
	opts := procgroup.RunOptions{Grace: grace}
	if record != "" {
		opts.OnStart = func(pid int) error { return recovery.WriteRecord(record, pid) }
	}
	cancelled, err = procgroup.RunWith(ctx, cmd, opts)
	if cancelled {
		return -1, true, nil
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		return 0, false, nil
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), false, nil
	}
	return -1, false, err
}

// checkVersion turns a run that tested another package or version than
// the spec asked for into a tmpfail.
func checkVersion(out *Outcome, spec Spec) {
	if spec.Version == "" && spec.Package == "" {
		return
	}
	if out.Verdict.Infrastructure() {
		return
	}
	name, version, ok := strings.Cut(out.TestpkgVersion, " ")
	if !ok {
		out.Verdict = dep8.VerdictTmpfail
		out.Notes = append(out.Notes, "runner: no tested package version to check against the job")
		return
	}
	if spec.Package != "" && name != spec.Package {
		out.Verdict = dep8.VerdictTmpfail
		out.Notes = append(out.Notes, fmt.Sprintf("runner: job asked for package %s, autopkgtest tested %s", spec.Package, name))
	}
	if spec.Version != "" && version != spec.Version {
		out.Verdict = dep8.VerdictTmpfail
		out.Notes = append(out.Notes, fmt.Sprintf("runner: job asked for version %s, autopkgtest tested %s", spec.Version, version))
	}
}
