package runner

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestArtifacts(t *testing.T) {
	dir := writeOutputDir(t, map[string]string{
		"summary":                "t PASS\n",
		"log":                    "the log\n",
		"t-stdout":               "out",
		"t-packages":             "dash\t0.5.12-2\n",
		"testinfo.json":          "{}",
		"testpkg-version":        "hello 1\n",
		"artifacts/report.txt":   "report",
		"artifacts/deep/er/data": "0123456789",
		"binaries/Packages":      "",
	})
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("not for upload"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "artifacts", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := Artifacts(dir)
	if err != nil {
		t.Fatalf("Artifacts: %v", err)
	}
	file := func(name string, size int64) File {
		return File{Name: name, Path: filepath.Join(dir, filepath.FromSlash(name)), Size: size}
	}
	want := []File{
		file("log", 8),
		file("artifacts/deep/er/data", 10),
		file("artifacts/report.txt", 6),
		file("binaries/Packages", 0),
		file("summary", 7),
		file("t-packages", 14),
		file("t-stdout", 3),
		file("testinfo.json", 2),
		file("testpkg-version", 8),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Artifacts mismatch (-want +got):\n%s", diff)
	}
}

func TestArtifactsWithoutLog(t *testing.T) {
	dir := writeOutputDir(t, map[string]string{"b": "2", "a": "1"})
	got, err := Artifacts(dir)
	if err != nil {
		t.Fatalf("Artifacts: %v", err)
	}
	want := []File{
		{Name: "a", Path: filepath.Join(dir, "a"), Size: 1},
		{Name: "b", Path: filepath.Join(dir, "b"), Size: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Artifacts mismatch (-want +got):\n%s", diff)
	}
}

func TestArtifactsRefusesHugeFile(t *testing.T) {
	dir := writeOutputDir(t, map[string]string{"log": "x"})
	f, err := os.Create(filepath.Join(dir, "artifacts-core"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxArtifactSize + 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := Artifacts(dir); !errors.Is(err, ErrArtifactTooLarge) {
		t.Errorf("Artifacts(dir with a %d-byte file) = %v, %v, want %v", MaxArtifactSize+1, got, err, ErrArtifactTooLarge)
	}
}

func TestArtifactsMissingDir(t *testing.T) {
	if got, err := Artifacts(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Errorf("Artifacts(missing dir) = %v, nil, want an error", got)
	}
}
