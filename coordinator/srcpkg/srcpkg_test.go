package srcpkg

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/client"
)

const (
	testsSmoke = "Tests: smoke\nDepends: @\n"
	testsTwo   = "Tests: smoke\nDepends: @\n\nTest-Command: true\nFeatures: test-name=quick\n"
)

// sourceTree returns the files of a hello source tree in the given
// format ("" leaves debian/source/format out), with Testsuite in
// debian/control when testsuite is set and debian/tests/control when
// tests is set.
func sourceTree(version, format, testsuite, tests string) map[string]string {
	control := "Source: hello\nMaintainer: A <a@example.org>\n"
	if testsuite != "" {
		control += "Testsuite: " + testsuite + "\n"
	}
	control += "\nPackage: hello\nArchitecture: all\nDescription: greeting\n hello\n"
	files := map[string]string{
		"README":           "hello\n",
		"debian/control":   control,
		"debian/changelog": "hello (" + version + ") unstable; urgency=medium\n\n  * Test.\n\n -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n",
	}
	if format != "" {
		files["debian/source/format"] = format + "\n"
	}
	if tests != "" {
		files["debian/tests/control"] = tests
		files["debian/tests/smoke"] = "#!/bin/sh\necho ok\n"
	}
	return files
}

// packed packs path with client.PackSource and opens the archive.
func packed(t *testing.T, path string) (*os.File, client.Packed) {
	t.Helper()
	p, err := client.PackSource(path)
	if err != nil {
		t.Fatalf("PackSource(%s): %v", path, err)
	}
	t.Cleanup(func() { os.Remove(p.File) })
	f, err := os.Open(p.File)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, p
}

func TestTestsControlPackages(t *testing.T) {
	tests := []struct {
		name string
		// tree packs the tree; otherwise dpkg-source -b builds a .dsc
		// with args.
		tree     bool
		version  string
		format   string
		args     []string
		files    map[string]string
		orig     map[string]string // the orig tarball's files, when there is one
		want     Control
		wantTest []string
	}{
		{
			name:     "tree",
			tree:     true,
			version:  "1.0-1",
			files:    sourceTree("1.0-1", "3.0 (quilt)", "", testsTwo),
			want:     Control{Data: []byte(testsTwo), Path: "hello-1.0/debian/tests/control"},
			wantTest: []string{"smoke", "quick"},
		},
		{
			name:    "tree without tests",
			tree:    true,
			version: "1.0-1",
			files:   sourceTree("1.0-1", "3.0 (quilt)", "autopkgtest-pkg-python", ""),
			want:    Control{Testsuite: "autopkgtest-pkg-python"},
		},
		{
			name:     "quilt xz",
			version:  "1.0-1",
			files:    sourceTree("1.0-1", "3.0 (quilt)", "", testsSmoke),
			orig:     map[string]string{"README": "hello\n"},
			want:     Control{Data: []byte(testsSmoke), Testsuite: "autopkgtest", Path: "hello_1.0-1.debian.tar.xz:debian/tests/control"},
			wantTest: []string{"smoke"},
		},
		{
			name:     "quilt gzip",
			version:  "1.0-1",
			args:     []string{"-Zgzip"},
			files:    sourceTree("1.0-1", "3.0 (quilt)", "", testsSmoke),
			orig:     map[string]string{"README": "hello\n"},
			want:     Control{Data: []byte(testsSmoke), Testsuite: "autopkgtest", Path: "hello_1.0-1.debian.tar.gz:debian/tests/control"},
			wantTest: []string{"smoke"},
		},
		{
			name:    "quilt without tests",
			version: "1.0-1",
			files:   sourceTree("1.0-1", "3.0 (quilt)", "", ""),
			orig:    map[string]string{"README": "hello\n"},
		},
		{
			name:    "quilt python testsuite without control",
			version: "1.0-1",
			files:   sourceTree("1.0-1", "3.0 (quilt)", "autopkgtest-pkg-python", ""),
			orig:    map[string]string{"README": "hello\n"},
			want:    Control{Testsuite: "autopkgtest-pkg-python"},
		},
		{
			name:     "native xz",
			version:  "1.0",
			files:    sourceTree("1.0", "3.0 (native)", "", testsSmoke),
			want:     Control{Data: []byte(testsSmoke), Testsuite: "autopkgtest", Path: "hello_1.0.tar.xz:hello-1.0/debian/tests/control"},
			wantTest: []string{"smoke"},
		},
		{
			name:     "native bzip2",
			version:  "1.0",
			args:     []string{"-Zbzip2"},
			files:    sourceTree("1.0", "3.0 (native)", "autopkgtest-pkg-perl", testsSmoke),
			want:     Control{Data: []byte(testsSmoke), Testsuite: "autopkgtest, autopkgtest-pkg-perl", Path: "hello_1.0.tar.bz2:hello-1.0/debian/tests/control"},
			wantTest: []string{"smoke"},
		},
		{
			name:     "1.0 native",
			version:  "1.0",
			files:    sourceTree("1.0", "", "", testsSmoke),
			want:     Control{Data: []byte(testsSmoke), Testsuite: "autopkgtest", Path: "hello_1.0.tar.gz:hello-1.0/debian/tests/control"},
			wantTest: []string{"smoke"},
		},
		{
			name:     "1.0 diff creates the control",
			version:  "1.0-1",
			files:    sourceTree("1.0-1", "", "", testsTwo),
			orig:     map[string]string{"README": "hello\n"},
			want:     Control{Data: []byte(testsTwo), Testsuite: "autopkgtest", Path: "hello_1.0-1.diff.gz:hello-1.0/debian/tests/control"},
			wantTest: []string{"smoke", "quick"},
		},
		{
			name:    "1.0 diff changes the orig's control",
			version: "1.0-1",
			files:   sourceTree("1.0-1", "", "", "# upstream tests\n"+testsTwo+"\nTests: more\n"),
			orig: map[string]string{
				"README":               "hello\n",
				"debian/tests/control": "# upstream tests\n" + testsSmoke + "\nTests: old\n",
			},
			want: Control{
				Data:      []byte("# upstream tests\n" + testsTwo + "\nTests: more\n"),
				Testsuite: "autopkgtest",
				Path:      "hello_1.0.orig.tar.gz:hello-1.0.orig/debian/tests/control patched by hello_1.0-1.diff.gz",
			},
			wantTest: []string{"smoke", "quick", "more"},
		},
		{
			name:    "1.0 diff leaves the orig's control",
			version: "1.0-1",
			files:   sourceTree("1.0-1", "", "", testsSmoke),
			orig: map[string]string{
				"README":               "hello\n",
				"debian/tests/control": testsSmoke,
				"debian/tests/smoke":   "#!/bin/sh\necho ok\n",
			},
			want:     Control{Data: []byte(testsSmoke), Testsuite: "autopkgtest", Path: "hello_1.0.orig.tar.gz:hello-1.0.orig/debian/tests/control"},
			wantTest: []string{"smoke"},
		},
	}
	if _, err := exec.LookPath("dpkg-source"); err != nil {
		t.Skip("dpkg-source is not installed")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			upstream, _, _ := strings.Cut(tt.version, "-")
			treeDir := filepath.Join(dir, "hello-"+upstream)
			writeFiles(t, treeDir, tt.files)
			path := treeDir
			if !tt.tree {
				if tt.orig != nil {
					origDir := "hello-" + upstream + ".orig"
					writeFiles(t, filepath.Join(dir, origDir), tt.orig)
					run(t, dir, "tar", "czf", "hello_"+upstream+".orig.tar.gz", origDir)
					if err := os.RemoveAll(filepath.Join(dir, origDir)); err != nil {
						t.Fatal(err)
					}
				}
				run(t, dir, "dpkg-source", append(tt.args, "-b", "hello-"+upstream)...)
				path = filepath.Join(dir, "hello_"+tt.version+".dsc")
			}
			f, p := packed(t, path)

			got, err := TestsControl(f, p.Kind, p.Entry, Limits{})
			if err != nil {
				t.Fatalf("TestsControl(%s %s) error: %v", p.Kind, p.Entry, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("TestsControl(%s %s) mismatch (-want +got):\n%s", p.Kind, p.Entry, diff)
			}
			stanzas, err := got.Tests()
			if err != nil {
				t.Fatalf("Tests() error: %v", err)
			}
			var names []string
			for _, s := range stanzas {
				names = append(names, s.Name)
			}
			if diff := cmp.Diff(tt.wantTest, names); diff != "" {
				t.Errorf("Tests() names mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTestsControlErrors runs archives built in memory. The .dsc files
// list sizes only: TestsControl checks no checksums.
func TestTestsControlErrors(t *testing.T) {
	control := member{name: "hello/debian/control", body: "Source: hello\n"}
	tests := member{name: "hello/debian/tests/control", body: testsSmoke}
	debianTar := xzBytes(t, tarBytes(t, member{name: "debian/tests/control", body: testsSmoke}))
	debian := member{name: "hello_1.0-1.debian.tar.xz", body: string(debianTar)}
	orig := member{name: "hello_1.0.orig.tar.gz", body: "not read"}
	quilt := func(debian member, extra ...member) []byte {
		return tarBytes(t, append([]member{
			{name: "hello_1.0-1.dsc", body: dscText("3.0 (quilt)", "", orig, debian)}, orig, debian,
		}, extra...)...)
	}
	noise := make([]byte, 32<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	// The control follows 32 KiB of incompressible data, so a cut in the
	// middle comes before it.
	longDebian := string(xzBytes(t, tarBytes(t, member{name: "debian/changelog", body: string(noise)}, member{name: "debian/tests/control", body: testsSmoke})))
	corrupt := []byte(debian.body)
	corrupt[len(corrupt)/2] ^= 0xff
	zeros := make([]byte, 8<<20)
	bomb := member{name: "hello_1.0-1.debian.tar.xz", body: string(xzBytes(t, tarBytes(t, member{name: "debian/zeros", body: string(zeros)})))}
	gzBomb := member{name: "hello_1.0-1.debian.tar.gz", body: string(gzipBytes(t, tarBytes(t, member{name: "debian/zeros", body: string(zeros)})))}
	nativeRaw := func(body string) []byte {
		tgz := member{name: "hello_1.0.tar.gz", body: body}
		return tarBytes(t, member{name: "hello_1.0.dsc", body: dscText("3.0 (native)", "", tgz)}, tgz)
	}
	native := func(inner ...member) []byte {
		return nativeRaw(string(gzipBytes(t, tarBytes(t, inner...))))
	}
	tgz := string(gzipBytes(t, tarBytes(t, member{name: "hello-1.0/debian/tests/control", body: testsSmoke})))
	many := []member{control}
	for i := range 20 {
		many = append(many, member{name: "hello/f" + strings.Repeat("x", i)})
	}
	tree := tarBytes(t, control, tests)

	cases := []struct {
		name    string
		archive []byte
		kind    string
		entry   string
		lim     Limits
		want    Control
		wantErr error
	}{
		{name: "tree", archive: tree, kind: apiv1.KindTree, entry: "hello/",
			want: Control{Data: []byte(testsSmoke), Path: "hello/debian/tests/control"}},
		{name: "tree with ./ names", archive: tarBytes(t, member{name: "./hello/debian/control", body: "Source: hello\n"}), kind: apiv1.KindTree, entry: "hello"},
		{name: "empty control", archive: tarBytes(t, control, member{name: tests.name}), kind: apiv1.KindTree, entry: "hello/",
			want: Control{Data: []byte{}, Path: "hello/debian/tests/control"}},
		{name: "first copy wins", archive: tarBytes(t, control, tests, member{name: tests.name, body: "Tests: other\n"}), kind: apiv1.KindTree, entry: "hello/",
			want: Control{Data: []byte(testsSmoke), Path: "hello/debian/tests/control"}},
		{name: "signed dsc", kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc",
			archive: tarBytes(t, member{name: "hello_1.0-1.dsc", body: "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" +
				dscText("3.0 (quilt)", "Testsuite: autopkgtest\n", orig, debian) +
				"\n-----BEGIN PGP SIGNATURE-----\n\nabcd\n-----END PGP SIGNATURE-----\n"}, orig, debian),
			want: Control{Data: []byte(testsSmoke), Testsuite: "autopkgtest", Path: "hello_1.0-1.debian.tar.xz:debian/tests/control"}},
		{name: "empty archive", archive: nil, kind: apiv1.KindTree, entry: "hello/", wantErr: ErrBadArchive},
		{name: "tree without debian/control", archive: tarBytes(t, tests), kind: apiv1.KindTree, entry: "hello/", wantErr: ErrBadArchive},
		{name: "truncated tar", archive: tree[:1100], kind: apiv1.KindTree, entry: "hello/", wantErr: ErrBadArchive},
		{name: "not a tar", archive: []byte(strings.Repeat("garbage\n", 100)), kind: apiv1.KindTree, entry: "hello/", wantErr: ErrBadArchive},
		{name: "dotdot member", archive: tarBytes(t, control, member{name: "hello/../etc/passwd"}), kind: apiv1.KindTree, entry: "hello/", wantErr: ErrBadArchive},
		{name: "dotdot entry", archive: tree, kind: apiv1.KindTree, entry: "../hello/", wantErr: ErrBadArchive},
		{name: "symlinked control", archive: tarBytes(t, control, member{name: tests.name, typ: '2', link: "../../x"}), kind: apiv1.KindTree, entry: "hello/", wantErr: ErrUnsupported},
		{name: "unknown kind", archive: tree, kind: "git", entry: "hello/", wantErr: ErrUnsupported},
		{name: "control over the limit", archive: tree, kind: apiv1.KindTree, entry: "hello/", lim: Limits{MaxControl: 8}, wantErr: ErrTooLarge},
		{name: "too many members", archive: tarBytes(t, many...), kind: apiv1.KindTree, entry: "hello/", lim: Limits{MaxMembers: 10}, wantErr: ErrTooLarge},
		{name: "corrupt xz", archive: quilt(member{name: debian.name, body: string(corrupt)}), kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", wantErr: ErrBadArchive},
		{name: "truncated xz", archive: quilt(member{name: debian.name, body: longDebian[:len(longDebian)/2]}), kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", wantErr: ErrBadArchive},
		{name: "truncated gzip", archive: nativeRaw(tgz[:len(tgz)/2]), kind: apiv1.KindDsc, entry: "hello_1.0.dsc", wantErr: ErrBadArchive},
		{name: "xz bomb", archive: quilt(bomb), kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", lim: Limits{MaxDecompressed: 1 << 20}, wantErr: ErrTooLarge},
		{name: "gzip bomb", archive: quilt(gzBomb), kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", lim: Limits{MaxDecompressed: 1 << 20}, wantErr: ErrTooLarge},
		{name: "xz dictionary over the limit", archive: quilt(debian), kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", lim: Limits{MaxDict: 32 << 10}, wantErr: ErrTooLarge},
		{name: "native", archive: native(member{name: "hello-1.0/debian/tests/control", body: testsSmoke}), kind: apiv1.KindDsc, entry: "hello_1.0.dsc",
			want: Control{Data: []byte(testsSmoke), Path: "hello_1.0.tar.gz:hello-1.0/debian/tests/control"}},
		{name: "native control too deep", archive: native(member{name: "a/b/debian/tests/control", body: testsSmoke}), kind: apiv1.KindDsc, entry: "hello_1.0.dsc"},
		{name: "native dotdot", archive: native(member{name: "hello-1.0/../../debian/tests/control", body: testsSmoke}), kind: apiv1.KindDsc, entry: "hello_1.0.dsc", wantErr: ErrBadArchive},
		{name: "dsc not first", archive: tarBytes(t, orig, debian, member{name: "hello_1.0-1.dsc", body: dscText("3.0 (quilt)", "", orig, debian)}),
			kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", wantErr: ErrUnsupported},
		{name: "listed file missing", archive: tarBytes(t, member{name: "hello_1.0-1.dsc", body: dscText("3.0 (quilt)", "", orig, debian)}, orig),
			kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", wantErr: ErrBadArchive},
		{name: "listed size differs", archive: tarBytes(t, member{name: "hello_1.0-1.dsc", body: dscText("3.0 (quilt)", "", orig, debian)}, orig, member{name: debian.name, body: debian.body + "x"}),
			kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", wantErr: ErrBadArchive},
		{name: "git format", archive: tarBytes(t, member{name: "hello_1.0-1.dsc", body: dscText("3.0 (git)", "", orig)}, orig),
			kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", wantErr: ErrUnsupported},
		{name: "dsc path in entry", archive: tree, kind: apiv1.KindDsc, entry: "x/hello.dsc", wantErr: ErrBadArchive},
		{name: "unsafe listed name", archive: tarBytes(t, member{name: "hello_1.0-1.dsc", body: dscText("3.0 (native)", "", member{name: "../hello.tar.gz"})}),
			kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", wantErr: ErrBadArchive},
		{name: "unsigned armour", archive: tarBytes(t, member{name: "hello_1.0-1.dsc", body: "-----BEGIN PGP SIGNED MESSAGE-----\n\nFormat: 1.0\n"}),
			kind: apiv1.KindDsc, entry: "hello_1.0-1.dsc", wantErr: ErrBadArchive},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TestsControl(strings.NewReader(string(tt.archive)), tt.kind, tt.entry, tt.lim)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("TestsControl() = %+v, %v, want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("TestsControl() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("TestsControl() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestTestsControlReadError(t *testing.T) {
	cause := errors.New("disk on fire")
	_, err := TestsControl(failingReader{cause}, apiv1.KindTree, "hello/", Limits{})
	if !errors.Is(err, cause) || errors.Is(err, ErrBadArchive) {
		t.Errorf("TestsControl(failing reader) = %v, want %v and not %v", err, cause, ErrBadArchive)
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxMembers: 7}.orDefault()
	want := Limits{MaxControl: DefaultMaxControl, MaxMembers: 7, MaxDecompressed: DefaultMaxDecompressed, MaxDict: DefaultMaxDict}
	if got != want {
		t.Errorf("Limits{MaxMembers: 7}.orDefault() = %+v, want %+v", got, want)
	}
}

func TestControlTestsNil(t *testing.T) {
	got, err := Control{}.Tests()
	if got != nil || err != nil {
		t.Errorf("Control{}.Tests() = %v, %v, want nil, nil", got, err)
	}
}
