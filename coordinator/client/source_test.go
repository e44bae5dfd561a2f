package client

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

type entry struct {
	Type     byte
	Mode     int64
	Linkname string
	Content  string
}

// readArchive returns the entries of a packed archive after checking its
// digest and size.
func readArchive(t *testing.T, p Packed) map[string]entry {
	t.Helper()
	data, err := os.ReadFile(p.File)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != p.SHA256 || int64(len(data)) != p.Size {
		t.Fatalf("archive has sha256 %s and %d bytes, Packed says %s and %d", got, len(data), p.SHA256, p.Size)
	}
	tr := tar.NewReader(strings.NewReader(string(data)))
	out := map[string]entry{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = entry{Type: hdr.Typeflag, Mode: hdr.Mode, Linkname: hdr.Linkname, Content: string(b)}
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

const control = `# a comment
Source: hello
Maintainer: Someone <[email protected]>
Build-Depends: debhelper-compat (= 13),
 libfoo-dev

Package: hello
Architecture: any
`

func TestPackTree(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "hello-1.0")
	outside := filepath.Join(dir, "secret")
	writeFile(t, outside, "do not ship", 0o600)
	writeFile(t, filepath.Join(root, "debian", "control"), control, 0o644)
	writeFile(t, filepath.Join(root, "debian", "changelog"), "hello (1.0-1) unstable; urgency=medium\n", 0o644)
	writeFile(t, filepath.Join(root, "debian", "tests", "control"), "Tests: smoke\n", 0o644)
	writeFile(t, filepath.Join(root, "debian", "tests", "smoke"), "#!/bin/sh\necho ok\n", 0o755)
	writeFile(t, filepath.Join(root, ".git", "config"), "[core]\n", 0o644)
	for _, l := range []struct{ target, name string }{
		{"debian/tests/smoke", "smoke-link"},
		{"tests/smoke", "debian/again"},
		{"../../secret", "debian/escape"},
		{outside, "absolute"},
		{"debian/..", "loop-root"},
		{"loop-root/../secret", "sneaky"},
		{"missing", "dangling"},
	} {
		if err := os.Symlink(l.target, filepath.Join(root, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	p, err := PackSource(root)
	if err != nil {
		t.Fatalf("PackSource(tree) error: %v", err)
	}
	t.Cleanup(func() { os.Remove(p.File) })
	if p.Kind != KindTree || p.Entry != "hello-1.0/" || p.Package != "hello" || p.Version != "1.0-1" {
		t.Errorf("PackSource(tree) = %+v, want tree hello 1.0-1 at hello-1.0/", p)
	}
	if diff := cmp.Diff([]string{"absolute", "debian/escape", "fifo", "sneaky"}, p.Skipped); diff != "" {
		t.Errorf("Skipped mismatch (-want +got):\n%s", diff)
	}
	want := map[string]entry{
		"hello-1.0/":                     {Type: tar.TypeDir, Mode: 0o755},
		"hello-1.0/debian/":              {Type: tar.TypeDir, Mode: 0o755},
		"hello-1.0/debian/control":       {Type: tar.TypeReg, Mode: 0o644, Content: control},
		"hello-1.0/debian/changelog":     {Type: tar.TypeReg, Mode: 0o644, Content: "hello (1.0-1) unstable; urgency=medium\n"},
		"hello-1.0/debian/tests/":        {Type: tar.TypeDir, Mode: 0o755},
		"hello-1.0/debian/tests/control": {Type: tar.TypeReg, Mode: 0o644, Content: "Tests: smoke\n"},
		"hello-1.0/debian/tests/smoke":   {Type: tar.TypeReg, Mode: 0o755, Content: "#!/bin/sh\necho ok\n"},
		"hello-1.0/debian/again":         {Type: tar.TypeSymlink, Mode: 0o777, Linkname: "tests/smoke"},
		"hello-1.0/smoke-link":           {Type: tar.TypeSymlink, Mode: 0o777, Linkname: "debian/tests/smoke"},
		"hello-1.0/loop-root":            {Type: tar.TypeSymlink, Mode: 0o777, Linkname: "debian/.."},
		"hello-1.0/dangling":             {Type: tar.TypeSymlink, Mode: 0o777, Linkname: "missing"},
	}
	if diff := cmp.Diff(want, readArchive(t, p)); diff != "" {
		t.Errorf("archive mismatch (-want +got):\n%s", diff)
	}
}

func TestPackTreeErrors(t *testing.T) {
	tests := []struct {
		name    string
		control string // empty: no debian/control
		wantErr error
	}{
		{name: "no control", wantErr: ErrNotSource},
		{name: "no source field", control: "Package: hello\n", wantErr: ErrBadControl},
		{name: "bad name", control: "Source: Hello_World\n", wantErr: ErrBadControl},
		{name: "garbage", control: "this is not deb822\n", wantErr: ErrBadControl},
		{name: "stray continuation", control: " Source: hello\n", wantErr: ErrBadControl},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "src")
			writeFile(t, filepath.Join(root, "README"), "hi\n", 0o644)
			if tt.control != "" {
				writeFile(t, filepath.Join(root, "debian", "control"), tt.control, 0o644)
			}
			p, err := PackSource(root)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PackSource() = %+v, %v, want error %v", p, err, tt.wantErr)
			}
		})
	}
}

type dscFixture struct {
	name, content string
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// makeDsc writes files into dir and returns the text of a signed .dsc that
// lists them; tamper, when set, edits each listed file's sha256.
func makeDsc(files []dscFixture, tamper func(name, sum string) string) string {
	var md5s, shas strings.Builder
	for _, f := range files {
		md5s.WriteString(" " + strings.Repeat("0", 32) + " " + strconv.Itoa(len(f.content)) + " " + f.name + "\n")
		sum := sha256Hex(f.content)
		if tamper != nil {
			sum = tamper(f.name, sum)
		}
		shas.WriteString(" " + sum + " " + strconv.Itoa(len(f.content)) + " " + f.name + "\n")
	}
	return "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" +
		"Format: 3.0 (quilt)\nSource: hello\nBinary: hello\nVersion: 1.0-1\n" +
		"Files:\n" + md5s.String() + "Checksums-Sha256:\n" + shas.String() +
		"\n-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCgAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n"
}

func TestPackDsc(t *testing.T) {
	files := []dscFixture{
		{"hello_1.0.orig.tar.gz", "orig tarball bytes"},
		{"hello_1.0-1.debian.tar.xz", "debian tarball bytes"},
	}
	dscText := makeDsc(files, nil)
	tests := []struct {
		name    string
		dsc     string
		write   []dscFixture // default: files
		wantErr error
	}{
		{name: "good", dsc: dscText},
		{name: "unsigned", dsc: strings.SplitN(dscText, "\n\n", 2)[1]},
		{
			name: "tampered sha256",
			dsc: makeDsc(files, func(name, sum string) string {
				if strings.HasSuffix(name, ".orig.tar.gz") {
					return sha256Hex("something else")
				}
				return sum
			}),
			wantErr: ErrChecksum,
		},
		{
			name:    "file changed beside the dsc",
			dsc:     dscText,
			write:   []dscFixture{files[0], {files[1].name, "debian tarball BYTES"}},
			wantErr: ErrChecksum,
		},
		{
			name:    "wrong size",
			dsc:     dscText,
			write:   []dscFixture{files[0], {files[1].name, "short"}},
			wantErr: ErrChecksum,
		},
		{name: "missing file", dsc: dscText, write: files[:1], wantErr: fs.ErrNotExist},
		{
			name:    "path in name",
			dsc:     makeDsc([]dscFixture{{"../hello_1.0.orig.tar.gz", "x"}}, nil),
			write:   []dscFixture{},
			wantErr: ErrUnsafeName,
		},
		{
			name:    "subdirectory",
			dsc:     makeDsc([]dscFixture{{"sub/x.tar.gz", "x"}}, nil),
			write:   []dscFixture{},
			wantErr: ErrUnsafeName,
		},
		{
			name:    "lists itself",
			dsc:     makeDsc([]dscFixture{{"hello_1.0-1.dsc", "x"}}, nil),
			write:   []dscFixture{},
			wantErr: ErrUnsafeName,
		},
		{name: "no files", dsc: "Source: hello\nVersion: 1\n", wantErr: ErrBadControl},
		{
			name:    "unterminated armour",
			dsc:     "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSource: hello\n",
			wantErr: ErrBadControl,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write := tt.write
			if write == nil {
				write = files
			}
			for _, f := range write {
				writeFile(t, filepath.Join(dir, f.name), f.content, 0o644)
			}
			path := filepath.Join(dir, "hello_1.0-1.dsc")
			writeFile(t, path, tt.dsc, 0o644)

			p, err := PackSource(path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("PackSource(dsc) = %+v, %v, want error %v", p, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("PackSource(dsc) error: %v", err)
			}
			t.Cleanup(func() { os.Remove(p.File) })
			if p.Kind != KindDsc || p.Entry != "hello_1.0-1.dsc" || p.Package != "hello" || p.Version != "1.0-1" {
				t.Errorf("PackSource(dsc) = %+v, want dsc hello 1.0-1 at hello_1.0-1.dsc", p)
			}
			want := map[string]entry{"hello_1.0-1.dsc": {Type: tar.TypeReg, Mode: 0o644, Content: tt.dsc}}
			for _, f := range files {
				want[f.name] = entry{Type: tar.TypeReg, Mode: 0o644, Content: f.content}
			}
			if diff := cmp.Diff(want, readArchive(t, p)); diff != "" {
				t.Errorf("archive mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPackSourceRefusesOthers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "notes.txt"), "hi", 0o644)
	for _, path := range []string{filepath.Join(dir, "notes.txt"), filepath.Join(dir, "absent")} {
		if _, err := PackSource(path); err == nil {
			t.Errorf("PackSource(%s) succeeded, want an error", path)
		}
	}
}

func TestParseDsc(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		in      string
		want    dscInfo
		wantErr error
	}{
		{
			name: "sha256 only for one",
			in: "Source: hello\nVersion: 2.0\nFiles:\n " + strings.Repeat("0", 32) + " 5 a.tar.gz\n " + strings.Repeat("1", 32) + " 6 b.tar.xz\n" +
				"Checksums-Sha256:\n " + strings.ToUpper(sum) + " 5 a.tar.gz\n",
			want: dscInfo{Source: "hello", Version: "2.0", Files: []dscFile{{Name: "a.tar.gz", Size: 5, SHA256: sum}, {Name: "b.tar.xz", Size: 6}}},
		},
		{
			name: "dash escaped",
			in: "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nSource: hello\r\n- Files:\r\n " + strings.Repeat("0", 32) + " 5 a.tar.gz\r\n" +
				"-----BEGIN PGP SIGNATURE-----\r\n",
			want: dscInfo{Source: "hello", Files: []dscFile{{Name: "a.tar.gz", Size: 5}}},
		},
		{
			name:    "size disagrees",
			in:      "Source: hello\nFiles:\n " + strings.Repeat("0", 32) + " 5 a\nChecksums-Sha256:\n " + sum + " 6 a\n",
			wantErr: ErrBadControl,
		},
		{name: "bad checksum", in: "Source: hello\nFiles:\n xyz 5 a\n", wantErr: ErrBadControl},
		{name: "negative size", in: "Source: hello\nFiles:\n " + strings.Repeat("0", 32) + " -5 a\n", wantErr: ErrBadControl},
		{name: "dot dot", in: "Source: hello\nFiles:\n " + strings.Repeat("0", 32) + " 5 a..b\n", wantErr: ErrUnsafeName},
		{name: "no source", in: "Files:\n " + strings.Repeat("0", 32) + " 5 a\n", wantErr: ErrBadControl},
		{name: "repeated field", in: "Source: hello\nSource: hello\n", wantErr: ErrBadControl},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDsc([]byte(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("parseDsc(%q) = %+v, %v, want error %v", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseDsc(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseDsc(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestChangelogVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello (2.10-3+b1) unstable; urgency=medium\n\n  * x\n", "2.10-3+b1"},
		{"hello (1:2.0~rc1-1) experimental; urgency=low", "1:2.0~rc1-1"},
		{"no version here\n", ""},
		{"hello (unterminated\n) x", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := changelogVersion([]byte(tt.in)); got != tt.want {
			t.Errorf("changelogVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseDsc(f *testing.F) {
	f.Add([]byte(makeDsc([]dscFixture{{"a.tar.gz", "x"}, {"b.tar.xz", "yy"}}, nil)))
	f.Add([]byte("Source: hello\nFiles:\n 00000000000000000000000000000000 5 a\n"))
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\n\n- Source: x\n-----BEGIN PGP SIGNATURE-----\n"))
	f.Add([]byte(" continuation\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := parseDsc(data)
		if err != nil {
			return
		}
		if !dep8.ValidSource(info.Source) || len(info.Files) == 0 {
			t.Fatalf("parseDsc(%q) = %+v without an error", data, info)
		}
		for _, f := range info.Files {
			if checkFlatName(f.Name) != nil || f.Size < 0 || (f.SHA256 != "" && len(f.SHA256) != 64) {
				t.Fatalf("parseDsc(%q) accepted file %+v", data, f)
			}
		}
	})
}

func FuzzParseParagraph(f *testing.F) {
	f.Add([]byte(control))
	f.Add([]byte("\n\n# c\nA: b\n c\n\nB: d\n"))
	f.Add([]byte("A:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := parseParagraph(data)
		if err == nil && len(fields) == 0 {
			t.Fatalf("parseParagraph(%q) = no fields, no error", data)
		}
	})
}
