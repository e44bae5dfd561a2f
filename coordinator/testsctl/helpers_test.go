package testsctl

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sparegrid/sparegrid/coordinator/archive"
)

const (
	testsSmoke = "Tests: smoke\nDepends: @\n"
	testsTwo   = "Tests: smoke\nDepends: @\nRestrictions: needs-root\n\nTest-Command: true\nFeatures: test-name=quick\nRestrictions: isolation-machine\n"
)

// pkg describes a hello source package for dpkg-source -b to build.
type pkg struct {
	version string // with a revision for a non-native package
	format  string // debian/source/format; empty for 1.0
	orig    bool   // make an orig tarball first
	// testsuite is the Testsuite of the Sources paragraph when the
	// package has no tests control (the .dsc's otherwise).
	testsuite string
	tests     string // debian/tests/control, none when empty
	padding   int    // bytes of hex noise in debian/noise, to grow the tarball
}

// built is a source package as an archive holds it.
type built struct {
	files map[string][]byte // file name → contents
	src   archive.Source    // as ParseSources reads its Sources paragraph
}

func build(t *testing.T, p pkg) built {
	t.Helper()
	if _, err := exec.LookPath("dpkg-source"); err != nil {
		t.Skip("dpkg-source is not installed (Debian package dpkg-dev)")
	}
	dir := t.TempDir()
	upstream, _, _ := strings.Cut(p.version, "-")
	tree := "hello-" + upstream
	files := map[string]string{
		"README":           "hello\n",
		"debian/control":   "Source: hello\nMaintainer: A <a@example.org>\n\nPackage: hello\nArchitecture: all\nDescription: greeting\n hello\n",
		"debian/changelog": "hello (" + p.version + ") unstable; urgency=medium\n\n  * Test.\n\n -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n",
	}
	if p.format != "" {
		files["debian/source/format"] = p.format + "\n"
	}
	if p.tests != "" {
		files["debian/tests/control"] = p.tests
		files["debian/tests/smoke"] = "#!/bin/sh\necho ok\n"
	}
	if p.padding > 0 {
		noise := make([]byte, p.padding/2)
		rand.Read(noise)
		files["debian/noise"] = hex.EncodeToString(noise)
	}
	writeFiles(t, filepath.Join(dir, tree), files)
	if p.orig {
		origDir := tree + ".orig"
		writeFiles(t, filepath.Join(dir, origDir), map[string]string{"README": "hello\n"})
		run(t, dir, "tar", "czf", "hello_"+upstream+".orig.tar.gz", origDir)
		if err := os.RemoveAll(filepath.Join(dir, origDir)); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, "dpkg-source", "-b", tree)
	if err := os.RemoveAll(filepath.Join(dir, tree)); err != nil {
		t.Fatal(err)
	}
	b := built{files: make(map[string][]byte)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.files[e.Name()] = data
		names = append(names, e.Name())
	}
	slices.Sort(names)
	testsuite := p.testsuite
	if p.tests != "" {
		testsuite = "autopkgtest"
	}
	para := fmt.Sprintf("Package: hello\nVersion: %s\nTestsuite: %s\nDirectory: pool/main/h/hello\nChecksums-Sha256:\n", p.version, testsuite)
	for _, n := range names {
		sum := sha256.Sum256(b.files[n])
		para += fmt.Sprintf(" %s %d %s\n", hex.EncodeToString(sum[:]), len(b.files[n]), n)
	}
	sources, rejected, err := archive.ParseSources(strings.NewReader(para), archive.ParseLimits{})
	if err != nil || rejected != 0 || len(sources) != 1 {
		t.Fatalf("ParseSources(%q) = %v, %d rejected, %v", para, sources, rejected, err)
	}
	b.src = sources[0]
	if len(b.src.Files) != len(names) {
		t.Fatalf("Sources paragraph gave files %v, want %v", b.src.Files, names)
	}
	return b
}

// replace gives the archive's copy of name new contents, and the Sources
// paragraph its size and sha256.
func (b built) replace(name string, data []byte) built {
	files := make(map[string][]byte)
	for k, v := range b.files {
		files[k] = v
	}
	files[name] = data
	src := b.src
	src.Files = slices.Clone(src.Files)
	for i, f := range src.Files {
		if f.Name == name {
			sum := sha256.Sum256(data)
			src.Files[i] = archive.File{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
		}
	}
	return built{files: files, src: src}
}

func (b built) file(t *testing.T, suffix string) archive.File {
	t.Helper()
	for _, f := range b.src.Files {
		if strings.HasSuffix(f.Name, suffix) {
			return f
		}
	}
	t.Fatalf("no file ending in %s in %v", suffix, b.src.Files)
	return archive.File{}
}

// withFile returns src with the file named name changed by edit.
func withFile(src archive.Source, name string, edit func(*archive.File)) archive.Source {
	src.Files = slices.Clone(src.Files)
	for i := range src.Files {
		if src.Files[i].Name == name {
			edit(&src.Files[i])
		}
	}
	return src
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// server is an archive serving packages under /debian/DIRECTORY/, with a
// log of the file names asked for.
type server struct {
	mu     sync.Mutex
	files  map[string][]byte // path under /debian/ → contents
	status map[string]int    // path → status to answer instead
	log    []string
	// gate, when set, holds every request until it is closed or the
	// request's context ends.
	gate chan struct{}
}

func newServer() *server {
	return &server{files: make(map[string][]byte), status: make(map[string]int)}
}

func (s *server) add(dir string, b built) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, data := range b.files {
		s.files[dir+"/"+name] = data
	}
}

func (s *server) remove(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, path)
}

func (s *server) setStatus(path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[path] = status
}

// requests returns the file names asked for since the last call.
func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.log
	s.log = nil
	return out
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/debian/")
	s.mu.Lock()
	s.log = append(s.log, filepath.Base(path))
	data, ok := s.files[path]
	status := s.status[path]
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case status != 0:
		w.WriteHeader(status)
	case !ok:
		http.NotFound(w, r)
	default:
		w.Write(data)
	}
}

// handlerTransport serves requests from a handler without a network, for
// tests inside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}
