package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeTree makes a small tree with one entry of each kind DirManifest
// describes.
func writeTree(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(dir, 0o755))
	must(os.MkdirAll(filepath.Join(dir, "etc/apt"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc/apt/sources.list"), []byte("deb x\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "etc/a b\nc"), []byte("odd name"), 0o600))
	must(os.Symlink("usr/bin", filepath.Join(dir, "bin")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	must(os.Chmod(filepath.Join(dir, "fifo"), 0o644))
}

func TestDirManifest(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir)
	var buf bytes.Buffer
	size, err := DirManifest(&buf, dir)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	ids := func(s string) string {
		return strings.ReplaceAll(s, "U G", strconv.Itoa(uid)+" "+strconv.Itoa(gid))
	}
	want := ids(`"." 40755 U G -
"bin" 120777 U G -> "usr/bin"
"etc" 40755 U G -
"etc/a b\nc" 100600 U G 8 sha256:` + sha256Hex("odd name") + `
"etc/apt" 40755 U G -
"etc/apt/sources.list" 100644 U G 6 sha256:` + sha256Hex("deb x\n") + `
"fifo" 10644 U G -
`)
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("DirManifest mismatch (-want +got):\n%s", diff)
	}
	if size != 14 {
		t.Errorf("DirManifest size = %d, want 14", size)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestDirDigestChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(dir string) error
	}{
		{"content", func(d string) error {
			return os.WriteFile(filepath.Join(d, "etc/apt/sources.list"), []byte("deb y\n"), 0o644)
		}},
		{"mode", func(d string) error { return os.Chmod(filepath.Join(d, "etc/apt/sources.list"), 0o755) }},
		{"new file", func(d string) error { return os.WriteFile(filepath.Join(d, "new"), nil, 0o644) }},
		{"removed file", func(d string) error { return os.Remove(filepath.Join(d, "fifo")) }},
		{"symlink target", func(d string) error {
			os.Remove(filepath.Join(d, "bin"))
			return os.Symlink("usr/sbin", filepath.Join(d, "bin"))
		}},
		{"owner", func(d string) error { return os.Lchown(filepath.Join(d, "etc"), 1, 1) }},
	}
	base := t.TempDir()
	writeTree(t, base)
	want, err := DirDigest(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir)
			if got, err := DirDigest(dir); err != nil || got != want {
				t.Fatalf("DirDigest(copy) = %s, %v, want %s", got, err, want)
			}
			if err := tt.change(dir); err != nil {
				if errors.Is(err, os.ErrPermission) {
					t.Skip("needs root")
				}
				t.Fatal(err)
			}
			if got, err := DirDigest(dir); err != nil || got == want {
				t.Errorf("DirDigest after changing %s = %s, %v, want a different digest", tt.name, got, err)
			}
		})
	}
}

func TestDirImageRecords(t *testing.T) {
	state := t.TempDir()
	dir := Dir(state)
	rootfs := filepath.Join(dir, "bookworm-amd64.dir")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, rootfs)
	var buf bytes.Buffer
	size, err := DirManifest(&buf, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := DirDigest(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	dirImg := Image{Release: "bookworm", Arch: "amd64", Backend: BackendOverlay, Format: FormatDirectory,
		Path: "/elsewhere", Digest: digest, Mirror: DefaultMirror, Size: size}
	if err := writeRecord(filepath.Join(dir, "bookworm-amd64.dir.json"), dirImg); err != nil {
		t.Fatal(err)
	}
	tarImg := writeFakeImage(t, state, "bookworm", "amd64", []byte("tarball"))
	dirImg.Path = rootfs

	imgs, err := List(state)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(imgs) != 2 {
		t.Fatalf("List = %+v, want two images", imgs)
	}
	got, err := LookupFormat(state, "bookworm", "amd64", FormatDirectory)
	if err != nil {
		t.Fatalf("LookupFormat(directory): %v", err)
	}
	if diff := cmp.Diff(dirImg, got); diff != "" {
		t.Errorf("LookupFormat(directory) mismatch (-want +got):\n%s", diff)
	}
	if got, err := Lookup(state, "bookworm", "amd64"); err != nil || got.Path != tarImg.Path {
		t.Errorf("Lookup = %+v, %v, want the tarball %s", got, err, tarImg.Path)
	}
	if err := Verify(got); err != nil {
		t.Errorf("Verify(directory image) = %v, want nil", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/apt/sources.list"), []byte("deb z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(got); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Verify(changed directory) = %v, want %v", err, ErrDigestMismatch)
	}
	if _, err := LookupFormat(state, "trixie", "amd64", FormatDirectory); !errors.Is(err, ErrNoImage) {
		t.Errorf("LookupFormat(missing) error = %v, want %v", err, ErrNoImage)
	}
}

func TestReadRecordFormatMustMatchName(t *testing.T) {
	good := `"release":"bookworm","arch":"amd64","backend":"overlay","path":"x","digest":"sha256:` + strings.Repeat("ab", 32) + `","mirror":"m","built_at":"2024-01-01T00:00:00Z","size":1`
	tests := []struct {
		name string
		file string
		json string
	}{
		{"directory record under tarball name", "bookworm-amd64.json", `{"format":"directory",` + good + `}`},
		{"tarball record under directory name", "bookworm-amd64.dir.json", `{` + good + `}`},
		{"unknown format", "bookworm-amd64.json", `{"format":"squashfs",` + good + `}`},
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

func TestMmdebstrapDirArgs(t *testing.T) {
	got := mmdebstrapDirArgs("bookworm", "arm64", "http://mirror.example/debian", "/s/images/.tmp/rootfs")
	want := []string{
		"--mode=root", "--variant=apt", "--format=directory", "--architectures=arm64",
		"--include=ca-certificates", "--", "bookworm", "/s/images/.tmp/rootfs",
		"deb http://mirror.example/debian bookworm main",
		"deb-src http://mirror.example/debian bookworm main",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mmdebstrapDirArgs mismatch (-want +got):\n%s", diff)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/plain", "/plain"},
		{`/a\040b`, "/a b"},
		{`/tab\011x\134`, "/tab\tx\\"},
		{`/short\04`, `/short\04`},
	}
	for _, tt := range tests {
		if got := unescapeMountinfo(tt.in); got != tt.want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBuildDirReal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a real bookworm directory image with mmdebstrap; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("directory images are built in mmdebstrap's root mode")
	}
	state := t.TempDir()
	var log bytes.Buffer
	img, err := Build(t.Context(), BuildOptions{StateDir: state, Release: "bookworm", Format: FormatDirectory, Log: &log})
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	if img.Backend != BackendOverlay || img.Format != FormatDirectory || img.Path != filepath.Join(Dir(state), "bookworm-"+img.Arch+".dir") {
		t.Errorf("Build = %+v, want an overlay directory image in the images directory", img)
	}
	if _, err := os.Stat(filepath.Join(img.Path, "usr/bin/apt-get")); err != nil {
		t.Errorf("directory image has no apt-get: %v", err)
	}
	got, err := LookupFormat(state, "bookworm", img.Arch, FormatDirectory)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(img, got); diff != "" {
		t.Errorf("LookupFormat mismatch (-want +got):\n%s", diff)
	}
	if err := Verify(got); err != nil {
		t.Errorf("Verify(fresh directory image) = %v", err)
	}
	entries, err := os.ReadDir(Dir(state))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{".bookworm-" + img.Arch + ".dir.lock", "bookworm-" + img.Arch + ".dir", "bookworm-" + img.Arch + ".dir.json"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("images directory mismatch (-want +got):\n%s", diff)
	}
}
