package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func testImage() image.Image {
	return image.Image{
		Release: "bookworm",
		Arch:    "amd64",
		Backend: image.BackendUnshare,
		Path:    "/var/lib/sparegrid/images/bookworm-amd64.tar",
		Digest:  "sha256:" + strings.Repeat("0", 64),
	}
}

func TestCommandLine(t *testing.T) {
	noArch := testImage()
	noArch.Arch = ""
	tests := []struct {
		name string
		spec Spec
		want []string
	}{
		{
			name: "archive package",
			spec: Spec{Package: "hello", Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "hello",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "version, triggers and timeout",
			spec: Spec{Package: "hello", Version: "2.10-3", Triggers: []string{"hello/2.10-3", "libc6/2.36-9"},
				Timeout: 90*time.Second + time.Millisecond, Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "--timeout-test=91",
				"--env=ADT_TEST_TRIGGERS=hello/2.10-3 libc6/2.36-9", "hello",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "skipped tests",
			spec: Spec{Package: "hello", Triggers: []string{"hello/2.10-3"}, SkipTests: []string{"smoke", "upstream-test.1", "-odd"}, Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out",
				"--env=ADT_TEST_TRIGGERS=hello/2.10-3", "--skip-test=smoke", "--skip-test=upstream-test.1", "--skip-test=-odd", "hello",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "apt sources of the trigger",
			spec: Spec{Package: "bar", Triggers: []string{"libfoo/2.0-1"}, AptSources: []string{"deb [trusted=yes] http://127.0.0.1:8000/ ./", "deb-src http://deb.debian.org/debian bookworm main"},
				Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out",
				"--env=ADT_TEST_TRIGGERS=libfoo/2.0-1", "--add-apt-source=deb [trusted=yes] http://127.0.0.1:8000/ ./",
				"--add-apt-source=deb-src http://deb.debian.org/debian bookworm main", "bar",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "only some tests",
			spec: Spec{Package: "hello", Tests: []string{"smoke", "upstream-test.1", "-odd"}, Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out",
				"--test-name=smoke", "--test-name=upstream-test.1", "--test-name=-odd", "hello",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "only some tests, some of them skipped",
			spec: Spec{SourcePath: "/src/fixture", Triggers: []string{"hello/2.10-3"}, Tests: []string{"smoke", "unit"}, SkipTests: []string{"unit"}, Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out",
				"--env=ADT_TEST_TRIGGERS=hello/2.10-3", "--test-name=smoke", "--test-name=unit", "--skip-test=unit", "--no-built-binaries", "/src/fixture/",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "overlay image",
			spec: Spec{Package: "hello", Image: image.Image{Release: "bookworm", Arch: "amd64", Backend: image.BackendOverlay, Format: image.FormatDirectory, Path: "/var/lib/sparegrid/images/bookworm-amd64.dir"}, OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "hello",
				"--", "sparegrid", "overlay", "--rootfs", "/var/lib/sparegrid/images/bookworm-amd64.dir"},
		},
		{
			name: "overlay image with the virt server's path",
			spec: Spec{Package: "hello", VirtServer: "/usr/bin/autopkgtest-virt-sparegrid", Image: image.Image{Release: "bookworm", Arch: "amd64", Backend: image.BackendOverlay, Format: image.FormatDirectory, Path: "/images/bookworm-amd64.dir"}, OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "hello",
				"--", "/usr/bin/autopkgtest-virt-sparegrid", "overlay", "--rootfs", "/images/bookworm-amd64.dir"},
		},
		{
			name: "overlay image through sudo",
			spec: Spec{Package: "hello", VirtServer: "/usr/bin/autopkgtest-virt-sparegrid", Sudo: []string{"/usr/bin/sudo", "-n"}, Image: image.Image{Release: "bookworm", Arch: "amd64", Backend: image.BackendOverlay, Format: image.FormatDirectory, Path: "/images/bookworm-amd64.dir"}, OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "hello",
				"--", "/usr/bin/sudo", "-n", "/usr/bin/autopkgtest-virt-sparegrid", "overlay", "--rootfs", "/images/bookworm-amd64.dir"},
		},
		{
			name: "unshare image ignores sudo",
			spec: Spec{Package: "hello", Sudo: []string{"/usr/bin/sudo", "-n"}, Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "hello",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "source tree",
			spec: Spec{SourcePath: "/src/fixture", Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "--no-built-binaries", "/src/fixture/",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "source tree with trailing slashes",
			spec: Spec{SourcePath: "/src/fixture//", Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "--no-built-binaries", "/src/fixture/",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "dsc",
			spec: Spec{SourcePath: "/src/sparegrid-fixture_1.0.dsc", Image: testImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "--no-built-binaries", "/src/sparegrid-fixture_1.0.dsc",
				"--", "unshare", "--release", "bookworm", "--arch", "amd64", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
		{
			name: "xenlvm image",
			spec: Spec{Package: "hello", Image: xenImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "hello",
				"--", "sparegrid", "xenlvm", "--vg", "vg0", "--base", "sparegrid-base-bookworm", "--sudo", "/usr/bin/sudo"},
		},
		{
			name: "xenlvm image ignores Spec.Sudo",
			spec: Spec{Package: "hello", VirtServer: "/usr/bin/autopkgtest-virt-sparegrid", Sudo: []string{"/usr/bin/sudo", "-n"}, Image: xenImage(), OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "hello",
				"--", "/usr/bin/autopkgtest-virt-sparegrid", "xenlvm", "--vg", "vg0", "--base", "sparegrid-base-bookworm", "--sudo", "/usr/bin/sudo"},
		},
		{
			name: "image without architecture",
			spec: Spec{Package: "hello", Image: noArch, OutputDir: "/out"},
			want: []string{"autopkgtest", "--apt-upgrade", "--output-dir", "/out", "hello",
				"--", "unshare", "--release", "bookworm", "--tarball", "/var/lib/sparegrid/images/bookworm-amd64.tar"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CommandLine(tt.spec)
			if err != nil {
				t.Fatalf("CommandLine(%+v): %v", tt.spec, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CommandLine mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCommandLineRejects(t *testing.T) {
	img := testImage()
	with := func(f func(*Spec)) Spec {
		s := Spec{Package: "hello", Image: img, OutputDir: "/out"}
		f(&s)
		return s
	}
	tests := []struct {
		name string
		spec Spec
	}{
		{"neither package nor source", with(func(s *Spec) { s.Package = "" })},
		{"both package and source", with(func(s *Spec) { s.SourcePath = "/src/x" })},
		{"option as package", with(func(s *Spec) { s.Package = "--shell" })},
		{"relative virt server path", with(func(s *Spec) { s.VirtServer = "bin/autopkgtest-virt-sparegrid" })},
		{"sudo without a virt server path", with(func(s *Spec) {
			s.Image.Backend = image.BackendOverlay
			s.Sudo = []string{"/usr/bin/sudo", "-n"}
		})},
		{"sudo with a virt server name", with(func(s *Spec) {
			s.Image.Backend = image.BackendOverlay
			s.Sudo = []string{"/usr/bin/sudo", "-n"}
			s.VirtServer = "sparegrid"
		})},
		{"relative sudo", with(func(s *Spec) {
			s.Image.Backend = image.BackendOverlay
			s.Sudo = []string{"sudo", "-n"}
			s.VirtServer = "/usr/bin/autopkgtest-virt-sparegrid"
		})},
		{"unknown backend", with(func(s *Spec) { s.Image.Backend = "qemu" })},
		{"one-letter package", with(func(s *Spec) { s.Package = "a" })},
		{"path as package", with(func(s *Spec) { s.Package = "./hello" })},
		{"relative source path", with(func(s *Spec) { s.Package = ""; s.SourcePath = "fixture" })},
		{"version with space", with(func(s *Spec) { s.Version = "1.0 --shell" })},
		{"version not starting with a digit", with(func(s *Spec) { s.Version = "-1" })},
		{"trigger without version", with(func(s *Spec) { s.Triggers = []string{"hello"} })},
		{"trigger with space", with(func(s *Spec) { s.Triggers = []string{"hello/1.0 x/2"} })},
		{"empty skipped test", with(func(s *Spec) { s.SkipTests = []string{"smoke", ""} })},
		{"skipped test with space", with(func(s *Spec) { s.SkipTests = []string{"smoke --shell"} })},
		{"skipped test with comma", with(func(s *Spec) { s.SkipTests = []string{"smoke,unit"} })},
		{"skipped test with slash", with(func(s *Spec) { s.SkipTests = []string{"../smoke"} })},
		{"skipped test with newline", with(func(s *Spec) { s.SkipTests = []string{"smoke\n"} })},
		{"skipped test not ASCII", with(func(s *Spec) { s.SkipTests = []string{"smök"} })},
		{"skipped test too long", with(func(s *Spec) { s.SkipTests = []string{strings.Repeat("t", 101)} })},
		{"empty test to run", with(func(s *Spec) { s.Tests = []string{"smoke", ""} })},
		{"test to run with space", with(func(s *Spec) { s.Tests = []string{"smoke --shell"} })},
		{"test to run with comma", with(func(s *Spec) { s.Tests = []string{"smoke,unit"} })},
		{"test to run with slash", with(func(s *Spec) { s.Tests = []string{"../smoke"} })},
		{"test to run with newline", with(func(s *Spec) { s.Tests = []string{"smoke\n"} })},
		{"test to run not ASCII", with(func(s *Spec) { s.Tests = []string{"smök"} })},
		{"test to run too long", with(func(s *Spec) { s.Tests = []string{strings.Repeat("t", 101)} })},
		{"apt source of two lines", with(func(s *Spec) { s.AptSources = []string{"deb http://a/ x main\ndeb http://b/ y main"} })},
		{"apt source not deb", with(func(s *Spec) { s.AptSources = []string{"--no-apt-upgrade x y"} })},
		{"relative output dir", with(func(s *Spec) { s.OutputDir = "out" })},
		{"empty output dir", with(func(s *Spec) { s.OutputDir = "" })},
		{"negative timeout", with(func(s *Spec) { s.Timeout = -time.Second })},
		{"qemu image", with(func(s *Spec) { s.Image.Backend = "qemu" })},
		{"bad release", with(func(s *Spec) { s.Image.Release = "--help" })},
		{"bad arch", with(func(s *Spec) { s.Image.Arch = "amd64 --shell" })},
		{"relative image path", with(func(s *Spec) { s.Image.Path = "bookworm.tar" })},
		{"xenlvm image without arguments", with(func(s *Spec) { s.Image = xenImage(); s.Image.Args = nil })},
		{"xenlvm image with empty arguments", with(func(s *Spec) { s.Image = xenImage(); s.Image.Args = []string{} })},
		{"xenlvm image with a bad release", with(func(s *Spec) { s.Image = xenImage(); s.Image.Release = "--shell" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := CommandLine(tt.spec); !errors.Is(err, ErrBadSpec) {
				t.Errorf("CommandLine(%+v) = %q, %v, want %v", tt.spec, got, err, ErrBadSpec)
			}
		})
	}
}

func TestRunRejectsMissingSource(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
	}{
		{"missing dsc", filepath.Join(dir, "x_1.0.dsc")},
		{"directory named .dsc", filepath.Join(dir, "d.dsc")},
		{"not a source tree", dir},
	}
	if err := os.Mkdir(filepath.Join(dir, "d.dsc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{SourcePath: tt.path, Image: testImage(), OutputDir: filepath.Join(t.TempDir(), "out")}
			if _, err := Run(t.Context(), spec); !errors.Is(err, ErrBadSpec) {
				t.Errorf("Run(source %s) error = %v, want %v", tt.path, err, ErrBadSpec)
			}
		})
	}
}

func TestRunRejectsNonEmptyOutputDir(t *testing.T) {
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Run(t.Context(), Spec{Package: "hello", Image: testImage(), OutputDir: out})
	if !errors.Is(err, ErrBadSpec) {
		t.Fatalf("Run(non-empty output dir) error = %v, want %v", err, ErrBadSpec)
	}
	if got.Verdict != dep8.VerdictTmpfail {
		t.Errorf("Run(non-empty output dir).Verdict = %q, want %q", got.Verdict, dep8.VerdictTmpfail)
	}
}

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		name        string
		spec        Spec
		testpkg     string
		verdict     dep8.Verdict
		wantVerdict dep8.Verdict
		wantNotes   int
	}{
		{"nothing asked", Spec{SourcePath: "/src"}, "", dep8.VerdictPass, dep8.VerdictPass, 0},
		{"same version", Spec{Package: "hello", Version: "2.10-3"}, "hello 2.10-3", dep8.VerdictFail, dep8.VerdictFail, 0},
		{"package only", Spec{Package: "hello"}, "hello 2.10-3", dep8.VerdictPass, dep8.VerdictPass, 0},
		{"other version", Spec{Package: "hello", Version: "2.10-2"}, "hello 2.10-3", dep8.VerdictPass, dep8.VerdictTmpfail, 1},
		{"other package", Spec{Package: "hello"}, "goodbye 1.0", dep8.VerdictPass, dep8.VerdictTmpfail, 1},
		{"source tree version", Spec{SourcePath: "/src", Version: "1.0"}, "sparegrid-fixture 1.0", dep8.VerdictFail, dep8.VerdictFail, 0},
		{"no testpkg-version", Spec{Package: "hello"}, "", dep8.VerdictNeutral, dep8.VerdictTmpfail, 1},
		{"infrastructure failure kept", Spec{Package: "hello", Version: "1"}, "", dep8.VerdictTmpfail, dep8.VerdictTmpfail, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Outcome{Verdict: tt.verdict, TestpkgVersion: tt.testpkg}
			checkVersion(&out, tt.spec)
			if out.Verdict != tt.wantVerdict || len(out.Notes) != tt.wantNotes {
				t.Errorf("checkVersion(%q) = %q with notes %q, want %q with %d notes", tt.testpkg, out.Verdict, out.Notes, tt.wantVerdict, tt.wantNotes)
			}
		})
	}
}

func xenImage() image.Image {
	return image.Image{Release: "bookworm", Arch: "amd64", Backend: image.BackendXenLVM, Format: image.FormatXenLVM,
		Args: []string{"--vg", "vg0", "--base", "sparegrid-base-bookworm", "--sudo", "/usr/bin/sudo"}, Device: "/dev/vg0/sparegrid-base-bookworm"}
}
