package harness

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// DebFile is one file a Deb ships.
type DebFile struct {
	// Path is where the file is installed, relative to the root, such
	// as "usr/bin/sgfoo".
	Path string
	Mode os.FileMode
	Data string
}

// Deb is a binary package BuildDeb makes with dpkg-deb, without a source
// package or debhelper.
type Deb struct {
	Package string
	Version string
	// Architecture defaults to "all".
	Architecture string
	// Source names the source package when it differs from Package.
	Source  string
	Depends string
	// Description is the one-line synopsis.
	Description string
	Files       []DebFile
}

// BuildDeb builds d with dpkg-deb into dir and returns the .deb's path.
func BuildDeb(t testing.TB, dir string, d Deb) string {
	t.Helper()
	if d.Architecture == "" {
		d.Architecture = "all"
	}
	root, err := os.MkdirTemp(dir, ".deb-root-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	var size int64
	for _, f := range d.Files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if !filepath.IsLocal(f.Path) {
			t.Fatalf("harness: deb %s: file path %q is not relative", d.Package, f.Path)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.Data), f.Mode); err != nil {
			t.Fatal(err)
		}
		// WriteFile's mode is filtered by the umask.
		if err := os.Chmod(p, f.Mode); err != nil {
			t.Fatal(err)
		}
		size += int64(len(f.Data))
	}
	var control strings.Builder
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&control, "%s: %s\n", k, v)
		}
	}
	field("Package", d.Package)
	field("Version", d.Version)
	field("Architecture", d.Architecture)
	field("Source", d.Source)
	field("Maintainer", "sparegrid developers <[email protected]>")
	field("Installed-Size", fmt.Sprint((size+1023)/1024))
	field("Depends", d.Depends)
	field("Section", "misc")
	field("Priority", "optional")
	field("Description", d.Description)
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(control.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", d.Package, d.Version, d.Architecture))
	runTool(t, "", "dpkg-deb", "--root-owner-group", "--build", root, out)
	return out
}

// BuildSource builds a source package from tree, a directory with
// debian/, with dpkg-source -b in a fresh directory under dir, and returns
// the .dsc's path; the files it lists are next to it.
func BuildSource(t testing.TB, tree, dir string) string {
	t.Helper()
	work, err := os.MkdirTemp(dir, ".source-*")
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(tree)
	runTool(t, "", "cp", "-a", tree, filepath.Join(work, name))
	runTool(t, work, "dpkg-source", "-b", name)
	dscs, err := filepath.Glob(filepath.Join(work, "*.dsc"))
	if err != nil || len(dscs) != 1 {
		t.Fatalf("harness: dpkg-source -b %s made %v (%v); want one .dsc", tree, dscs, err)
	}
	return dscs[0]
}

// runTool runs a command in dir (the current directory when empty) and
// returns its standard output, failing the test when it fails.
func runTool(t testing.TB, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("harness: %s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// Archive is a Debian archive with one suite and one component in a
// directory, laid out as apt and the coordinator's archive watcher expect:
// pool/ with the packages, dists/SUITE/Release (unsigned), the
// component's binary-ARCH/Packages and source/Sources, each also gzipped.
type Archive struct {
	Root      string
	Suite     string
	Component string
	Arches    []string
}

// NewArchive returns an empty archive in root.
func NewArchive(root, suite, component string, arches ...string) *Archive {
	return &Archive{Root: root, Suite: suite, Component: component, Arches: arches}
}

// poolDir is where a package of source goes.
func (a *Archive) poolDir(source string) string {
	return filepath.Join(a.Root, "pool", a.Component, source[:1], source)
}

// AddDeb copies a .deb of source into the pool.
func (a *Archive) AddDeb(t testing.TB, source, deb string) {
	t.Helper()
	copyInto(t, a.poolDir(source), deb)
}

// AddSource copies a .dsc and the files next to it that it names into the
// pool.
func (a *Archive) AddSource(t testing.TB, dsc string) {
	t.Helper()
	name := strings.SplitN(filepath.Base(dsc), "_", 2)[0]
	files, err := filepath.Glob(filepath.Join(filepath.Dir(dsc), name+"_*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("harness: files of %s: %v", dsc, err)
	}
	for _, f := range files {
		copyInto(t, a.poolDir(name), f)
	}
}

// Index writes the archive's indices and its Release for what the pool
// holds now.
func (a *Archive) Index(t testing.TB) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(a.Root, "pool"), 0o755); err != nil {
		t.Fatal(err)
	}
	suite := filepath.Join(a.Root, "dists", a.Suite)
	var files []string
	for _, arch := range a.Arches {
		rel := filepath.Join(a.Component, "binary-"+arch, "Packages")
		pkgs := runTool(t, a.Root, "dpkg-scanpackages", "--multiversion", "--arch", arch, "pool", "/dev/null")
		writeIndex(t, filepath.Join(suite, rel), pkgs)
		files = append(files, rel, rel+".gz")
	}
	rel := filepath.Join(a.Component, "source", "Sources")
	srcs := runTool(t, a.Root, "dpkg-scansources", "pool", "/dev/null")
	writeIndex(t, filepath.Join(suite, rel), srcs)
	files = append(files, rel, rel+".gz")
	writeRelease(t, suite, map[string]string{
		"Origin":        "sparegrid-e2e",
		"Label":         "sparegrid-e2e",
		"Suite":         a.Suite,
		"Codename":      a.Suite,
		"Components":    a.Component,
		"Architectures": strings.Join(a.Arches, " "),
	}, files)
}

// FlatRepo writes a flat repository of debs in dir (apt's
// "deb [trusted=yes] URL ./"): the packages, Packages, Packages.gz and an
// unsigned Release.
func FlatRepo(t testing.TB, dir string, debs ...string) {
	t.Helper()
	for _, d := range debs {
		copyInto(t, dir, d)
	}
	pkgs := runTool(t, dir, "dpkg-scanpackages", "--multiversion", ".", "/dev/null")
	writeIndex(t, filepath.Join(dir, "Packages"), pkgs)
	writeRelease(t, dir, map[string]string{"Origin": "sparegrid-e2e", "Label": "sparegrid-e2e-flat"}, []string{"Packages", "Packages.gz"})
}

// ServeDir serves dir over HTTP on loopback until the test ends and
// returns its URL, without a trailing slash.
func ServeDir(t testing.TB, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// copyInto copies the file src into the directory dir.
func copyInto(t testing.TB, dir, src string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeIndex writes an index and its gzipped copy.
func writeIndex(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".gz", gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeRelease writes dir/Release with fields, a Date and the SHA256 of
// files, which are relative to dir.
func writeRelease(t testing.TB, dir string, fields map[string]string, files []string) {
	t.Helper()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		fmt.Fprintf(&b, "%s: %s\n", k, fields[k])
	}
	fmt.Fprintf(&b, "Date: %s\n", time.Now().UTC().Format(time.RFC1123))
	b.WriteString("SHA256:\n")
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, " %s %d %s\n", hex.EncodeToString(sum[:]), len(data), filepath.ToSlash(f))
	}
	if err := os.WriteFile(filepath.Join(dir, "Release"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Regression is the package set of the regression scenario, built from
// e2e/testdata by BuildRegression.
type Regression struct {
	// Base is a bookworm archive with main for amd64: the binary
	// package sgfoo 1.0, whose /usr/bin/sgfoo prints "sgfoo 1.0 works",
	// and the sources sgfoo 1.0 and sgfoo-user 1.0, whose autopkgtest
	// runs sgfoo and whose Testsuite-Triggers name it.
	Base *Archive
	// Proposed is a flat repository with sgfoo 2.0, whose /usr/bin/sgfoo
	// prints "sgfoo 2.0 is broken" and exits 1.
	Proposed string
	// Debs are the built binary packages by version.
	Debs map[string]string
}

// Output of /usr/bin/sgfoo in the scenario's two versions.
const (
	SgfooWorks  = "sgfoo 1.0 works"
	SgfooBroken = "sgfoo 2.0 is broken"
)

// BuildRegression builds the regression scenario's repositories in a
// temporary directory.
func BuildRegression(t testing.TB) Regression {
	t.Helper()
	dir := t.TempDir()
	testdata := filepath.Join(RepoRoot(), "e2e", "testdata")
	works, err := os.ReadFile(filepath.Join(testdata, "sgfoo", "sgfoo"))
	if err != nil {
		t.Fatal(err)
	}
	build := filepath.Join(dir, "build")
	if err := os.Mkdir(build, 0o755); err != nil {
		t.Fatal(err)
	}
	sgfoo := func(version, program string) string {
		return BuildDeb(t, build, Deb{
			Package: "sgfoo", Version: version,
			Description: "library stand-in for sparegrid's regression test",
			Files:       []DebFile{{Path: "usr/bin/sgfoo", Mode: 0o755, Data: program}},
		})
	}
	r := Regression{
		Base:     NewArchive(filepath.Join(dir, "base"), "bookworm", "main", "amd64"),
		Proposed: filepath.Join(dir, "proposed"),
		Debs: map[string]string{
			"1.0": sgfoo("1.0", string(works)),
			"2.0": sgfoo("2.0", "#!/bin/sh\necho \""+SgfooBroken+"\"\nexit 1\n"),
		},
	}
	r.Base.AddDeb(t, "sgfoo", r.Debs["1.0"])
	for _, src := range []string{"sgfoo", "sgfoo-user"} {
		r.Base.AddSource(t, BuildSource(t, filepath.Join(testdata, src), build))
	}
	r.Base.Index(t)
	FlatRepo(t, r.Proposed, r.Debs["2.0"])
	return r
}
