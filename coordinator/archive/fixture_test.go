package archive

import (
	"bytes"
	"compress/gzip"
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
	"time"

	"github.com/ulikunitz/xz"
)

// fixture is a Debian-style archive served over HTTP with ETag and
// Last-Modified support and a log of every request.
type fixture struct {
	mu       sync.Mutex
	files    map[string][]byte
	modified map[string]time.Time
	clock    time.Time
	log      []string
	fail     map[string]int // path → status to answer instead
}

func newFixture() *fixture {
	return &fixture{
		files:    make(map[string][]byte),
		modified: make(map[string]time.Time),
		clock:    time.Date(2026, 7, 11, 10, 0, 0, 0, time.UTC),
		fail:     make(map[string]int),
	}
}

func (f *fixture) put(path string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.files[path]; ok && bytes.Equal(old, data) {
		return
	}
	f.clock = f.clock.Add(time.Minute)
	f.files[path] = data
	f.modified[path] = f.clock
}

func (f *fixture) remove(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, path)
}

func (f *fixture) setFail(path string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if status == 0 {
		delete(f.fail, path)
	} else {
		f.fail[path] = status
	}
}

// requests returns the log since the last call and clears it.
func (f *fixture) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.log
	f.log = nil
	return out
}

func (f *fixture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/debian/")
	status := f.serve(w, r, path)
	f.log = append(f.log, fmt.Sprintf("%d %s", status, path))
}

func (f *fixture) serve(w http.ResponseWriter, r *http.Request, path string) int {
	if s, ok := f.fail[path]; ok {
		w.WriteHeader(s)
		return s
	}
	data, ok := f.files[path]
	if !ok {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	mod := f.modified[path]
	w.Header().Set("ETag", etag)
	w.Header().Set("Last-Modified", mod.Format(http.TimeFormat))
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if inm == etag {
			w.WriteHeader(http.StatusNotModified)
			return http.StatusNotModified
		}
	} else if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !mod.After(t) {
			w.WriteHeader(http.StatusNotModified)
			return http.StatusNotModified
		}
	}
	w.Write(data)
	return http.StatusOK
}

// handlerTransport serves requests from a handler without a network, for
// tests inside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// suiteSpec is what publish writes for one suite.
type suiteSpec struct {
	suite string
	head  string            // Release fields before the checksums
	files map[string][]byte // path in the suite → bytes
	// listed overrides or adds SHA256 entries; a zero FileHash drops one.
	listed   map[string]FileHash
	byHash   bool
	detached bool    // publish Release + Release.gpg instead of InRelease
	signer   *signer // nil: a dummy signature no gpgv accepts
}

// publish writes a suite's indices, Release and signatures into f.
func (f *fixture) publish(t *testing.T, s suiteSpec) {
	t.Helper()
	sums := make(map[string]FileHash)
	for p, data := range s.files {
		sum := sha256.Sum256(data)
		sums[p] = FileHash{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	}
	for p, fh := range s.listed {
		if fh == (FileHash{}) {
			delete(sums, p)
		} else {
			sums[p] = fh
		}
	}
	paths := make([]string, 0, len(sums))
	for p := range sums {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var rel strings.Builder
	rel.WriteString(s.head)
	if !strings.HasSuffix(s.head, "\n") {
		rel.WriteString("\n")
	}
	rel.WriteString("SHA256:\n")
	for _, p := range paths {
		fmt.Fprintf(&rel, " %s %8d %s\n", sums[p].SHA256, sums[p].Size, p)
	}
	dir := "dists/" + s.suite + "/"
	for p, data := range s.files {
		f.put(dir+p, data)
		if s.byHash {
			sum := sha256.Sum256(data)
			f.put(dir+filepath.Dir(p)+"/by-hash/SHA256/"+hex.EncodeToString(sum[:]), data)
		}
	}
	text := []byte(rel.String())
	if s.detached {
		f.remove(dir + "InRelease")
		f.put(dir+"Release", text)
		if s.signer != nil {
			f.put(dir+"Release.gpg", s.signer.detach(t, text))
		} else {
			f.remove(dir + "Release.gpg")
		}
		return
	}
	f.remove(dir + "Release")
	f.remove(dir + "Release.gpg")
	if s.signer != nil {
		f.put(dir+"InRelease", s.signer.clearsign(t, text))
	} else {
		f.put(dir+"InRelease", dummyClearsign(text))
	}
}

func dummyClearsign(text []byte) []byte {
	var b bytes.Buffer
	b.WriteString(clearsignBegin + "\nHash: SHA256\n\n")
	for line := range strings.SplitSeq(strings.TrimSuffix(string(text), "\n"), "\n") {
		if strings.HasPrefix(line, "-") {
			b.WriteString("- ")
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(signatureBegin + "\n\niQEzBAEBCAAdFiEEAAAA\n=AAAA\n-----END PGP SIGNATURE-----\n")
	return b.Bytes()
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// editSources drops the paragraphs of the named packages from Sources text
// and appends the paragraphs in add.
func editSources(t *testing.T, text string, drop []string, add ...string) string {
	t.Helper()
	var out []string
	for p := range strings.SplitSeq(strings.TrimSpace(text), "\n\n") {
		name := strings.TrimPrefix(strings.SplitN(p, "\n", 2)[0], "Package: ")
		if !slices.Contains(drop, name) {
			out = append(out, p)
		}
	}
	for _, a := range add {
		out = append(out, strings.TrimSpace(a))
	}
	return strings.Join(out, "\n\n") + "\n"
}

// paragraph returns the first paragraph of Sources text for package name.
func paragraph(t *testing.T, text, name string) string {
	t.Helper()
	for p := range strings.SplitSeq(strings.TrimSpace(text), "\n\n") {
		if strings.HasPrefix(p, "Package: "+name+"\n") {
			return p
		}
	}
	t.Fatalf("no paragraph for %s", name)
	return ""
}

func xzBytes(t *testing.T, text string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 1 << 20}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzBytes(t *testing.T, text string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(text))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// signer signs with a throwaway key made by the real gpg.
type signer struct {
	home    string
	keyring string
}

func newSigner(t *testing.T, name string) *signer {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg is not installed (Debian package gnupg); skipping signature tests")
	}
	if _, err := exec.LookPath("gpgv"); err != nil {
		t.Skip("gpgv is not installed (Debian package gpgv); skipping signature tests")
	}
	home, err := os.MkdirTemp("", "gpg-")
	if err != nil {
		t.Fatal(err)
	}
	s := &signer{home: home, keyring: filepath.Join(t.TempDir(), name+".gpg")}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	s.gpg(t, nil, "--quick-gen-key", name+" <"+name+"@example.org>", "ed25519", "sign", "never")
	key := s.gpg(t, nil, "--export")
	if err := os.WriteFile(s.keyring, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *signer) gpg(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	full := append([]string{"--homedir", s.home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)
	cmd := exec.Command("gpg", full...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func (s *signer) clearsign(t *testing.T, text []byte) []byte {
	return s.gpg(t, text, "--clearsign", "--digest-algo", "SHA256")
}

func (s *signer) detach(t *testing.T, text []byte) []byte {
	return s.gpg(t, text, "--detach-sign")
}
