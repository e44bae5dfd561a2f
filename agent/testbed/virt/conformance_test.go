package virt

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// serverRootEnv makes the test binary act as a virt server whose testbed
// is the host directory it names, so that the real autopkgtest can drive
// Serve.
const serverRootEnv = "SPAREGRID_VIRT_TEST_ROOT"

func TestMain(m *testing.M) {
	if root := os.Getenv(serverRootEnv); root != "" {
		b := &hostBackend{root: root, caps: []string{"revert"}}
		if err := Serve(contextForServer(), b, os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Exit(12)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestAutopkgtestConformance(t *testing.T) {
	autopkgtest, err := exec.LookPath("autopkgtest")
	if err != nil {
		t.Skip("autopkgtest is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := map[string]string{
		"debian/control": "Source: sg-conformance\nMaintainer: Nobody <nobody@example.org>\n\n" +
			"Package: sg-conformance\nArchitecture: all\nDescription: test\n test\n",
		"debian/changelog": "sg-conformance (1.0) unstable; urgency=low\n\n  * Test.\n\n" +
			" -- Nobody <nobody@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n",
		"debian/tests/control": "Tests: tree\nDepends:\n\n" +
			"Test-Command: test -d \"$AUTOPKGTEST_TMP\" && echo artifact > \"$AUTOPKGTEST_ARTIFACTS/made-in-testbed\"\nDepends:\n",
		"debian/tests/tree": "#!/bin/sh\nset -e\ntest -x debian/tests/tree\ngrep -q 'nested data' data/nested/file\necho tree ok\n",
		"data/nested/file":  "nested data\n",
	}
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "debian/tests/tree"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "testbed")
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")

	cmd := exec.CommandContext(t.Context(), autopkgtest, "--no-built-binaries", "-o", out, src+"/", "--", self)
	cmd.Env = append(os.Environ(), serverRootEnv+"="+root)
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("autopkgtest = %v, want success; output:\n%s", err, output)
	}
	t.Logf("autopkgtest output:\n%s", output)
	summary, err := os.ReadFile(filepath.Join(out, "summary"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tree                 PASS", "command1             PASS"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary = %q, want a line %q", summary, want)
		}
	}
	art, err := os.ReadFile(filepath.Join(out, "artifacts", "made-in-testbed"))
	if got, want := string(art), "artifact\n"; err != nil || got != want {
		t.Errorf("artifact = %q, %v; want %q", got, err, want)
	}
	if strings.Contains(string(output), "failure:") {
		t.Errorf("autopkgtest output reports a virt server failure:\n%s", output)
	}
}

// contextForServer is cancelled by SIGTERM, SIGINT and SIGHUP. SIGPIPE is
// caught so that the reply to quit, which autopkgtest does not read, fails
// with EPIPE instead of killing the server.
func contextForServer() context.Context {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return ctx
}
