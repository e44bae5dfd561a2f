package overlay

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// virtServer builds autopkgtest-virt-sparegrid into a temporary directory
// and returns a PATH that finds it first.
func virtServer(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("autopkgtest"); err != nil {
		t.Skip("autopkgtest is not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..", "..")
	bin := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin+"/", "./agent/cmd/autopkgtest-virt-sparegrid")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the virt server: %v\n%s", err, out)
	}
	return bin + string(os.PathListSeparator) + os.Getenv("PATH")
}

// autopkgtest runs autopkgtest with args and the overlay backend on
// rootfs and returns its exit code and summary file.
func autopkgtest(t *testing.T, path, rootfs string, args ...string) (int, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	argv := append([]string{"-U", "-o", out}, args...)
	argv = append(argv, "--", "sparegrid", "overlay", "--rootfs", rootfs, "--workdir", t.TempDir())
	cmd := exec.CommandContext(t.Context(), "autopkgtest", argv...)
	cmd.Env = append(os.Environ(), "PATH="+path)
	log, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	summary, err := os.ReadFile(filepath.Join(out, "summary"))
	if err != nil {
		t.Fatalf("autopkgtest %q wrote no summary: %v\n%s", args, err, log)
	}
	return code, string(summary)
}

// TestAutopkgtest runs the real autopkgtest through the real virt server
// on the overlay backend and checks it gives what autopkgtest's unshare
// backend gives (e2e/testdata/README.md).
func TestAutopkgtest(t *testing.T) {
	rootfs := testRootFS(t)
	path := virtServer(t)
	_, file, _, _ := runtime.Caller(0)
	fixture := filepath.Join(filepath.Dir(file), "..", "..", "..", "e2e", "testdata", "fixture") + "/"
	breaks := breaksFixture(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"fixture", []string{"-B", fixture}, 6, `passes               PASS
fails                FAIL non-zero exit status 1
skippable            SKIP exit status 77 and marked as skippable
flaky                FLAKY non-zero exit status 1
`},
		{"hello", []string{"hello"}, 0, "command1             PASS\nupstream-tests       PASS\n"},
		{"breaks-testbed", []string{"-B", breaks}, 0, "breaks               PASS\nclean                PASS\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, summary := autopkgtest(t, path, rootfs, tt.args...)
			if code != tt.wantCode {
				t.Errorf("autopkgtest %q exit code = %d, want %d", tt.args, code, tt.wantCode)
			}
			if diff := cmp.Diff(tt.want, summary); diff != "" {
				t.Errorf("autopkgtest %q summary mismatch (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

// breaksFixture writes a source tree whose first test breaks the testbed
// (deletes /usr/share/doc, writes a file, leaves a daemon) and whose second
// test fails if it sees any of that.
func breaksFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "breaks") + "/"
	files := map[string]string{
		"debian/source/format": "3.0 (native)\n",
		"debian/control": `Source: sparegrid-breaks
Maintainer: sparegrid <sparegrid@example.org>

Package: sparegrid-breaks
Architecture: all
Description: breaks-testbed fixture
 Test data.
`,
		"debian/changelog": `sparegrid-breaks (1.0) unstable; urgency=medium

  * Test data.

 -- sparegrid <sparegrid@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
`,
		"debian/tests/control": `Tests: breaks
Depends: dash
Restrictions: breaks-testbed, needs-root

Tests: clean
Depends: dash
Restrictions: needs-root
`,
		"debian/tests/breaks": `#!/bin/sh
set -e
rm -rf /usr/share/doc/*
echo broken >/etc/sparegrid-broken
setsid sh -c 'exec sleep 4242' </dev/null >/dev/null 2>&1 &
`,
		"debian/tests/clean": `#!/bin/sh
set -e
test -d /usr/share/doc/dash
test ! -e /etc/sparegrid-broken
! cat /proc/[0-9]*/cmdline | tr '\0' ' ' | grep -q 'slee[p] 4242'
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "debian/tests/") && name != "debian/tests/control" {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
