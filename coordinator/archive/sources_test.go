package archive

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ulikunitz/xz"
)

func fixtureSnapshot(t *testing.T) Snapshot {
	t.Helper()
	sources, rejected, err := ParseSources(strings.NewReader(readTestdata(t, "bookworm-main-Sources")), ParseLimits{})
	if err != nil || rejected != 0 {
		t.Fatalf("ParseSources = %d rejected, %v", rejected, err)
	}
	return NewSnapshot(Key{"debian", "bookworm", "main"}, sources)
}

func TestParseSourcesRealParagraphs(t *testing.T) {
	s := fixtureSnapshot(t)
	glibc, _ := s.Source("glibc")
	if glibc.Version != "2.36-9+deb12u14" {
		t.Errorf("glibc version = %q, want 2.36-9+deb12u14 (the Extra-Source-Only 2.36-8 skipped)", glibc.Version)
	}
	ssh, _ := s.Source("libssh2")
	want := Source{
		Package:           "libssh2",
		Version:           "1.10.0-3",
		Binaries:          []string{"libssh2-1", "libssh2-1-dev"},
		Testsuite:         []string{"autopkgtest"},
		TestsuiteTriggers: []string{"autoconf", "chrpath", "gcc", "libc-dev", "libssl-dev", "openssh-server", "zlib1g-dev"},
		Architecture:      []string{"any"},
		Directory:         "pool/main/libs/libssh2",
		Files: []File{
			{"libssh2_1.10.0-3.dsc", 2283, "a0fe68f402a2f44dd6bd2219457fb8677b2149a83e7b009e93ff0635de940766"},
			{"libssh2_1.10.0.orig.tar.gz", 965044, "2d64e90f3ded394b91d3a2e774ca203a4179f69aebee03003e5a6fa621e41d51"},
			{"libssh2_1.10.0.orig.tar.gz.asc", 488, "75702eaf490fa8c1e69b889c5c6366c2c3f3b089bc715f9f9be081c88f115f81"},
			{"libssh2_1.10.0-3.debian.tar.xz", 8416, "c0bea31fe565273656349484d1000b557e489ee322834b40c4d7d33317a56940"},
		},
	}
	if diff := cmp.Diff(want, ssh); diff != "" {
		t.Errorf("libssh2 (-want +got):\n%s", diff)
	}
	// zlib has no tests, so its files are not kept.
	zlib, _ := s.Source("zlib")
	if zlib.Directory != "pool/main/z/zlib" || zlib.Files != nil {
		t.Errorf("zlib Directory, Files = %q, %v, want pool/main/z/zlib and no files", zlib.Directory, zlib.Files)
	}
	for _, src := range s.Sources() {
		if !src.Testable() {
			continue
		}
		if src.Directory == "" || !slices.ContainsFunc(src.Files, func(f File) bool { return strings.HasSuffix(f.Name, ".dsc") }) {
			t.Errorf("%s: Directory %q, Files %v, want a directory and a .dsc", src.Package, src.Directory, src.Files)
		}
	}
	testable := map[string]bool{}
	for _, src := range s.Sources() {
		testable[src.Package] = src.Testable()
	}
	wantTestable := map[string]bool{
		"ack": true, "base-files": false, "build-essential": false, "gcc-defaults": false, "glibc": true,
		"hello": true, "kronosnet": true, "libssh2": true, "python-click": true, "zlib": false,
	}
	if diff := cmp.Diff(wantTestable, testable); diff != "" {
		t.Errorf("testable (-want +got):\n%s", diff)
	}
}

func TestTriggered(t *testing.T) {
	s := fixtureSnapshot(t)
	tests := []struct {
		source string
		want   []string
	}{
		{"hello", []string{"hello"}},
		{"zlib", []string{"kronosnet", "libssh2"}}, // zlib1g-dev; zlib itself has no tests
		{"build-essential", []string{"kronosnet"}}, // build-essential
		{"gcc-defaults", []string{"libssh2"}},      // gcc
		{"glibc", []string{"glibc"}},               // libc-dev is virtual: no source builds it
		{"libssh2", []string{"libssh2"}},           // its own tests only
		{"python-click", []string{"python-click"}}, // @builddeps@ is not a package name
		{"base-files", nil},                        // no tests, triggers nothing
		{"no-such-source", nil},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, s.Triggered(tt.source)); diff != "" {
				t.Errorf("Triggered(%s) (-want +got):\n%s", tt.source, diff)
			}
		})
	}
}

func TestTriggeredByBinary(t *testing.T) {
	s := fixtureSnapshot(t)
	tests := []struct {
		binary string
		want   []string
	}{
		{"zlib1g-dev", []string{"kronosnet", "libssh2"}},
		{"zlib1g", nil},
		{"libc-dev", []string{"libssh2"}},
		{"libssh2-1-dev", []string{"libssh2"}},
		{"hello", []string{"hello"}},
		{"gcc-12", []string{"glibc"}},
	}
	for _, tt := range tests {
		t.Run(tt.binary, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, s.TriggeredByBinary(tt.binary)); diff != "" {
				t.Errorf("TriggeredByBinary(%s) (-want +got):\n%s", tt.binary, diff)
			}
		})
	}
	if src, _ := s.SourceOfBinary("zlib1g-dev"); src != "zlib" {
		t.Errorf("SourceOfBinary(zlib1g-dev) = %q, want zlib", src)
	}
}

func TestParseSourcesRejectsBadParagraphs(t *testing.T) {
	in := "Package: ok\nVersion: 1.0-1\n\nPackage: Bad_Name\nVersion: 1\n\nPackage: noversion\n\nPackage: badversion\nVersion: x:1\n\nVersion: 1\n\nPackage: ok\nVersion: 0.9-1\n"
	sources, rejected, err := ParseSources(strings.NewReader(in), ParseLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if rejected != 4 || len(sources) != 1 || sources[0].Version != "1.0-1" {
		t.Errorf("ParseSources = %+v, %d rejected, want only ok 1.0-1 and 4 rejected", sources, rejected)
	}
}

func TestParseSourcesFilesAndDirectory(t *testing.T) {
	const (
		sum  = "a0fe68f402a2f44dd6bd2219457fb8677b2149a83e7b009e93ff0635de940766"
		dsc  = " " + sum + " 2283 hello_1.0-1.dsc"
		head = "Package: hello\nVersion: 1.0-1\nTestsuite: autopkgtest\nBinary: hello\n"
	)
	good := []File{{"hello_1.0-1.dsc", 2283, sum}}
	tests := []struct {
		name      string
		fields    string
		wantDir   string
		wantFiles []File
	}{
		{"both", "Directory: pool/main/h/hello\nChecksums-Sha256:\n" + dsc + "\n", "pool/main/h/hello", good},
		{"neither", "", "", nil},
		{"files on the first line too", "Checksums-Sha256: " + sum + " 2283 hello_1.0-1.dsc\n", "", good},
		{"absolute directory", "Directory: /pool/main/h/hello\nChecksums-Sha256:\n" + dsc + "\n", "", good},
		{"directory leaving the root", "Directory: pool/../../etc\n", "", nil},
		{"directory with a dot component", "Directory: pool/./h\n", "", nil},
		{"directory with an empty component", "Directory: pool//h\n", "", nil},
		{"name with a slash", "Directory: pool/h\nChecksums-Sha256:\n " + sum + " 1 ../hello.dsc\n", "pool/h", nil},
		{"name with dot dot", "Checksums-Sha256:\n " + sum + " 1 hello..dsc\n", "", nil},
		{"short sha256", "Checksums-Sha256:\n " + sum[:63] + " 1 hello.dsc\n", "", nil},
		{"upper-case sha256", "Checksums-Sha256:\n " + strings.ToUpper(sum) + " 1 hello.dsc\n", "", nil},
		{"negative size", "Checksums-Sha256:\n " + sum + " -1 hello.dsc\n", "", nil},
		{"missing name", "Checksums-Sha256:\n " + sum + " 1\n", "", nil},
		{"one bad line of two", "Checksums-Sha256:\n" + dsc + "\n " + sum + " x hello.tar.xz\n", "", nil},
		{"name twice", "Checksums-Sha256:\n" + dsc + "\n" + dsc + "\n", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources, rejected, err := ParseSources(strings.NewReader(head+tt.fields), ParseLimits{})
			if err != nil || rejected != 0 || len(sources) != 1 {
				t.Fatalf("ParseSources = %v, %d rejected, %v, want one source", sources, rejected, err)
			}
			got := sources[0]
			if got.Directory != tt.wantDir {
				t.Errorf("Directory = %q, want %q", got.Directory, tt.wantDir)
			}
			if diff := cmp.Diff(tt.wantFiles, got.Files); diff != "" {
				t.Errorf("Files (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"hello"}, got.Binaries); diff != "" {
				t.Errorf("Binaries, kept whatever Files is (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecompress(t *testing.T) {
	text := readTestdata(t, "bookworm-main-Sources")
	xzData := xzBytes(t, text)
	bigDict := bytes.Clone(xzData)
	// The first block header starts after the 12-byte stream header: size,
	// flags, filter id 0x21, property size 1, dictionary code.
	if bigDict[14] != 0x21 || bigDict[15] != 1 {
		t.Fatalf("unexpected xz block header % x", bigDict[12:18])
	}
	bigDict[16] = 40
	tests := []struct {
		name    string
		file    string
		data    []byte
		max     int64
		wantErr error
	}{
		{"xz", "Sources.xz", xzData, 1 << 20, nil},
		{"gz", "Sources.gz", gzBytes(t, text), 1 << 20, nil},
		{"xz over the limit", "Sources.xz", xzData, 1000, ErrTooLarge},
		{"gz over the limit", "Sources.gz", gzBytes(t, text), 1000, ErrTooLarge},
		{"xz truncated", "Sources.xz", xzData[:len(xzData)-20], 1 << 20, ErrCorrupt},
		{"xz cut in half", "Sources.xz", xzData[:len(xzData)/2], 1 << 20, ErrCorrupt},
		{"xz huge dictionary", "Sources.xz", bigDict, 1 << 20, ErrTooLarge},
		{"gz truncated", "Sources.gz", gzBytes(t, text)[:500], 1 << 20, ErrCorrupt},
		{"not xz", "Sources.xz", []byte(text), 1 << 20, ErrCorrupt},
		{"not gz", "Sources.gz", []byte(text), 1 << 20, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := decompress(tt.file, tt.data, tt.max, 64<<20)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(r)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("decompress(%s) error = %v, want %v", tt.name, err, tt.wantErr)
			}
			if err == nil && string(got) != text {
				t.Errorf("decompress(%s) gave %d bytes, want the %d of the text", tt.name, len(got), len(text))
			}
		})
	}
}

func FuzzParseSources(f *testing.F) {
	f.Add(paragraphsForFuzz())
	f.Fuzz(func(t *testing.T, in string) {
		sources, _, err := ParseSources(strings.NewReader(in), ParseLimits{MaxLine: 512, MaxParagraph: 4096, MaxFields: 16})
		if err != nil {
			return
		}
		snap := NewSnapshot(Key{}, sources)
		for _, s := range snap.Sources() {
			if _, err := ParseVersion(s.Version); err != nil || !validPackageName(s.Package) {
				t.Errorf("accepted %q %q", s.Package, s.Version)
			}
			if s.Directory != "" && (strings.HasPrefix(s.Directory, "/") || slices.Contains(strings.Split(s.Directory, "/"), "..")) {
				t.Errorf("accepted directory %q", s.Directory)
			}
			for _, f := range s.Files {
				if strings.ContainsAny(f.Name, "/\\") || strings.Contains(f.Name, "..") || f.Size < 0 || len(f.SHA256) != 64 {
					t.Errorf("accepted file %+v", f)
				}
			}
			tr := snap.Triggered(s.Package)
			if s.Testable() && !strings.Contains(strings.Join(tr, " ")+" ", s.Package+" ") {
				t.Errorf("Triggered(%s) = %v, misses itself", s.Package, tr)
			}
		}
	})
}

func paragraphsForFuzz() string {
	return "Package: a1\nVersion: 1\nBinary: x, y\nTestsuite: autopkgtest\nTestsuite-Triggers: z\nDirectory: pool/main/a/a1\n" +
		"Checksums-Sha256:\n 75296f5ef618ae2f1849e22b142a2b5ab52c452ebefa4e7b0564c44617db3790 1721 a1_1.dsc\n\n" +
		"Package: b1\nVersion: 2\nBinary: z\n\nPackage: a1\nVersion: 0.5\nExtra-Source-Only: yes\n"
}

func FuzzDecompressXZ(f *testing.F) {
	var seed bytes.Buffer
	w, err := xz.NewWriter(&seed)
	if err != nil {
		f.Fatal(err)
	}
	w.Write([]byte(paragraphsForFuzz()))
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decompress("Sources.xz", data, 1<<16, 1<<20)
		if err != nil {
			return
		}
		n, _ := io.Copy(io.Discard, r)
		if n > 1<<16 {
			t.Errorf("read %d bytes past the limit", n)
		}
	})
}
