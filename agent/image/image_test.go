package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/agent/internal/proctest"
)

func TestBuildRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		opts BuildOptions
		want error
	}{
		{"option as release", BuildOptions{Release: "--help", Arch: "amd64"}, ErrBadName},
		{"upper-case release", BuildOptions{Release: "Bookworm", Arch: "amd64"}, ErrBadName},
		{"empty release", BuildOptions{Arch: "amd64"}, ErrBadName},
		{"arch with semicolon", BuildOptions{Release: "bookworm", Arch: "amd64;true"}, ErrBadName},
		{"ftp mirror", BuildOptions{Release: "bookworm", Arch: "amd64", Mirror: "ftp://deb.debian.org/debian"}, ErrBadMirror},
		{"mirror with space", BuildOptions{Release: "bookworm", Arch: "amd64", Mirror: "http://deb.debian.org/debian sid main"}, ErrBadMirror},
		{"mirror without host", BuildOptions{Release: "bookworm", Arch: "amd64", Mirror: "http:///debian"}, ErrBadMirror},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			tt.opts.StateDir = state
			_, err := Build(t.Context(), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build(%+v) error = %v, want %v", tt.opts, err, tt.want)
			}
			if _, err := os.Stat(Dir(state)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Build(%+v) created %s (stat error %v)", tt.opts, Dir(state), err)
			}
		})
	}
}

func TestMmdebstrapArgs(t *testing.T) {
	got := mmdebstrapArgs("bookworm", "arm64", "http://mirror.example/debian")
	want := []string{
		"--mode=unshare",
		"--variant=apt",
		"--format=tar",
		"--architectures=arm64",
		"--include=ca-certificates",
		"--",
		"bookworm",
		"-",
		"deb http://mirror.example/debian bookworm main",
		"deb-src http://mirror.example/debian bookworm main",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mmdebstrapArgs mismatch (-want +got):\n%s", diff)
	}
}

// writeFakeImage stores a record for a small file standing in for a
// tarball, the way Build would.
func writeFakeImage(t *testing.T, state, release, arch string, content []byte) Image {
	t.Helper()
	dir := Dir(state)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, release+"-"+arch+".tar")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	img := Image{
		Release: release,
		Arch:    arch,
		Backend: BackendUnshare,
		Path:    path,
		Digest:  "sha256:" + hex.EncodeToString(sum[:]),
		Mirror:  DefaultMirror,
		BuiltAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Size:    int64(len(content)),
	}
	if err := writeRecord(filepath.Join(dir, release+"-"+arch+".json"), img); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestListLookupVerify(t *testing.T) {
	state := t.TempDir()
	if imgs, err := List(state); err != nil || len(imgs) != 0 {
		t.Fatalf("List(empty state) = %v, %v, want no images", imgs, err)
	}
	if _, err := Lookup(state, "bookworm", "amd64"); !errors.Is(err, ErrNoImage) {
		t.Fatalf("Lookup(empty state) error = %v, want %v", err, ErrNoImage)
	}

	trixie := writeFakeImage(t, state, "trixie", "amd64", []byte("trixie tarball"))
	arm := writeFakeImage(t, state, "bookworm", "arm64", []byte("bookworm arm64 tarball"))
	amd := writeFakeImage(t, state, "bookworm", "amd64", []byte("bookworm amd64 tarball"))
	if err := os.WriteFile(filepath.Join(Dir(state), ".bookworm-amd64.tar.tmp-1"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	imgs, err := List(state)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if diff := cmp.Diff([]Image{amd, arm, trixie}, imgs); diff != "" {
		t.Errorf("List mismatch (-want +got):\n%s", diff)
	}
	got, err := Lookup(state, "bookworm", "arm64")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if diff := cmp.Diff(arm, got); diff != "" {
		t.Errorf("Lookup mismatch (-want +got):\n%s", diff)
	}
	if err := Verify(got); err != nil {
		t.Errorf("Verify(untouched) = %v, want nil", err)
	}

	tampered := []byte("bookworm arm64 tarbalL")
	if err := os.WriteFile(got.Path, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(got); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Verify(tampered) = %v, want %v", err, ErrDigestMismatch)
	}
	if err := os.Remove(got.Path); err != nil {
		t.Fatal(err)
	}
	if err := Verify(got); !errors.Is(err, ErrNoImage) {
		t.Errorf("Verify(removed) = %v, want %v", err, ErrNoImage)
	}
	if _, err := Lookup(state, "../x", "amd64"); !errors.Is(err, ErrBadName) {
		t.Errorf("Lookup(../x) error = %v, want %v", err, ErrBadName)
	}
}

func TestLookupPointsAtTarballNextToRecord(t *testing.T) {
	state := t.TempDir()
	img := writeFakeImage(t, state, "bookworm", "amd64", []byte("tarball"))
	img.Path = "/elsewhere/bookworm-amd64.tar"
	if err := writeRecord(filepath.Join(Dir(state), "bookworm-amd64.json"), img); err != nil {
		t.Fatal(err)
	}
	got, err := Lookup(state, "bookworm", "amd64")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if want := filepath.Join(Dir(state), "bookworm-amd64.tar"); got.Path != want {
		t.Errorf("Lookup(...).Path = %q, want %q", got.Path, want)
	}
}

func TestReadRecordRejects(t *testing.T) {
	good := `"backend":"unshare","path":"x","digest":"sha256:` + strings.Repeat("ab", 32) + `","mirror":"m","built_at":"2024-01-01T00:00:00Z","size":1`
	tests := []struct {
		name string
		file string
		json string
	}{
		{"not json", "bookworm-amd64.json", "{"},
		{"unknown field", "bookworm-amd64.json", `{"release":"bookworm","arch":"amd64",` + good + `,"extra":1}`},
		{"other image's name", "trixie-amd64.json", `{"release":"bookworm","arch":"amd64",` + good + `}`},
		{"bad release", "BOOK-amd64.json", `{"release":"BOOK","arch":"amd64",` + good + `}`},
		{"bad digest", "bookworm-amd64.json", `{"release":"bookworm","arch":"amd64","digest":"md5:00"}`},
		{"upper-case digest", "bookworm-amd64.json", `{"release":"bookworm","arch":"amd64","digest":"sha256:` + strings.Repeat("AB", 32) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(path, []byte(tt.json), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := readRecord(path); !errors.Is(err, ErrBadRecord) {
				t.Errorf("readRecord(%s) error = %v, want %v", tt.json, err, ErrBadRecord)
			}
		})
	}
}

func TestBuildReal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a real bookworm image with mmdebstrap; skipped with -short")
	}
	state := t.TempDir()
	arch, err := HostArch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	img, err := Build(t.Context(), BuildOptions{StateDir: state, Release: "bookworm", Log: &log})
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	want := Image{
		Release: "bookworm",
		Arch:    arch,
		Backend: BackendUnshare,
		Path:    filepath.Join(Dir(state), "bookworm-"+arch+".tar"),
		Mirror:  DefaultMirror,
	}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".Digest", ".BuiltAt", ".Size":
			return true
		}
		return false
	}, cmp.Ignore())
	if diff := cmp.Diff(want, img, ignore); diff != "" {
		t.Errorf("Build mismatch (-want +got):\n%s", diff)
	}
	if !validDigest(img.Digest) || img.Size == 0 || img.BuiltAt.IsZero() {
		t.Errorf("Build = %+v, want a digest, a size and a build time", img)
	}
	if fi, err := os.Stat(img.Path); err != nil || fi.Size() != img.Size {
		t.Errorf("stat %s = %v, %v, want size %d", img.Path, fi, err, img.Size)
	}

	sources := readTarMember(t, img.Path, "./etc/apt/sources.list")
	for _, line := range []string{
		"deb " + DefaultMirror + " bookworm main",
		"deb-src " + DefaultMirror + " bookworm main",
	} {
		if !strings.Contains(sources, line) {
			t.Errorf("image sources.list = %q, want a line %q", sources, line)
		}
	}

	entries, err := os.ReadDir(Dir(state))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	wantNames := []string{".bookworm-" + arch + ".lock", "bookworm-" + arch + ".json", "bookworm-" + arch + ".tar"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("images directory mismatch (-want +got):\n%s", diff)
	}

	imgs, err := List(state)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if diff := cmp.Diff([]Image{img}, imgs); diff != "" {
		t.Errorf("List mismatch (-want +got):\n%s", diff)
	}
	got, err := Lookup(state, "bookworm", arch)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if diff := cmp.Diff(img, got); diff != "" {
		t.Errorf("Lookup mismatch (-want +got):\n%s", diff)
	}
	if err := Verify(got); err != nil {
		t.Errorf("Verify(fresh image) = %v, want nil", err)
	}

	f, err := os.OpenFile(img.Path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'X'}, img.Size/2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(got); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Verify(tampered image) = %v, want %v", err, ErrDigestMismatch)
	}
}

func readTarMember(t *testing.T, path, name string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s has no member %s", path, name)
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		if hdr.Name == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}

func TestBuildCancelLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real mmdebstrap; skipped with -short")
	}
	state := t.TempDir()
	builder := proctest.MarkChildren(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := proctest.NewOutput("I: extracting archives")
	errc := make(chan error, 1)
	go func() {
		_, err := Build(ctx, BuildOptions{StateDir: state, Release: "bookworm", Log: log})
		errc <- err
	}()
	select {
	case <-log.Ready():
	case err := <-errc:
		t.Fatalf("Build finished before it could be cancelled: %v\n%s", err, log.String())
	}
	if ps := proctest.Processes(t, builder); len(ps) == 0 {
		t.Fatalf("no mmdebstrap processes found while Build runs")
	}
	cancel()
	if err := <-errc; !errors.Is(err, ErrBuild) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Build(cancelled) error = %v, want %v and %v", err, ErrBuild, context.Canceled)
	}
	proctest.WaitGone(t, builder)
	entries, err := os.ReadDir(Dir(state))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("cancelled Build left %s", e.Name())
		}
	}
	if imgs, err := List(state); err != nil || len(imgs) != 0 {
		t.Errorf("List after cancelled Build = %v, %v, want no images", imgs, err)
	}
}
