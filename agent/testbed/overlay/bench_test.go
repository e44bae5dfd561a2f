package overlay

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// BenchmarkOpenClose and BenchmarkRevert time the backend's steps without
// the virt server around them; make bench-testbed compares whole servers.
func BenchmarkOpenClose(b *testing.B) {
	rootfs := benchRootFS(b)
	be, err := New(Options{RootFS: rootfs, WorkDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := be.Open(b.Context()); err != nil {
			b.Fatal(err)
		}
		if err := be.Close(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRevert(b *testing.B) {
	rootfs := benchRootFS(b)
	be, err := New(Options{RootFS: rootfs, WorkDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close(context.Background())
	if _, err := be.Open(b.Context()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := be.Revert(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRootFS(b *testing.B) string {
	b.Helper()
	dir := os.Getenv("SPAREGRID_TEST_ROOTFS")
	if dir == "" {
		b.Skip("set SPAREGRID_TEST_ROOTFS to a root filesystem directory")
	}
	return dir
}

// BenchmarkCommand times one command run through the exec prefix.
func BenchmarkCommand(b *testing.B) {
	be, err := New(Options{RootFS: benchRootFS(b), WorkDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close(context.Background())
	prefix, err := be.Open(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	argv := append(append([]string{}, prefix...), "true")
	for b.Loop() {
		if err := exec.CommandContext(b.Context(), argv[0], argv[1:]...).Run(); err != nil {
			b.Fatal(err)
		}
	}
}
