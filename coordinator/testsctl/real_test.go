package testsctl

import (
	"errors"
	"flag"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/archive"
)

var (
	realRun     = flag.Bool("real", false, "read tests from the real Debian archive (network)")
	realURL     = flag.String("real-url", "http://deb.debian.org/debian", "archive for -real")
	realSuite   = flag.String("real-suite", "bookworm", "suite for -real")
	realKeyring = flag.String("real-keyring", "/usr/share/keyrings/debian-archive-keyring.gpg", "keyring for -real (empty: no verification)")
)

// TestRealDebian polls a real archive once, then reads the tests of a few
// testable sources of each source format. It runs only with -real:
//
//	go test ./coordinator/testsctl -run TestRealDebian -real -v
func TestRealDebian(t *testing.T) {
	if !*realRun {
		t.Skip("needs -real (reads the real archive over the network)")
	}
	cfg := archive.Config{Name: "debian", URL: *realURL, Suites: []string{*realSuite}, Components: []string{"main"}, Architectures: []string{"amd64"}}
	if _, err := os.Stat(*realKeyring); *realKeyring != "" && err == nil {
		cfg.Keyring = *realKeyring
	}
	w, err := archive.New(cfg, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	snap, _ := w.Snapshot(*realSuite, "main")
	// A few candidates of each kind, smallest first within the name
	// order: the first one the mirror serves whole is read.
	candidates := map[string][]string{"named": {"hello", "libssh2"}}
	for _, s := range snap.Sources() {
		if !s.Testable() || total(s) > 4<<20 {
			continue
		}
		kind := "3.0 (quilt)"
		switch {
		case has(s, ".diff.gz"):
			kind = "1.0 with a diff"
		case has(s, ".debian.tar."):
		case has(s, ".tar.gz"):
			kind = "native .tar.gz"
		default:
			kind = "3.0 (native)"
		}
		if len(candidates[kind]) < 10 {
			candidates[kind] = append(candidates[kind], s.Package)
		}
	}
	recorder := &countingTransport{}
	f := &Fetcher{Client: &http.Client{Transport: recorder}, Dir: t.TempDir()}
	for _, kind := range []string{"named", "3.0 (quilt)", "3.0 (native)", "native .tar.gz", "1.0 with a diff"} {
		read := 0
		for _, name := range candidates[kind] {
			src, cfg, ok := w.Source(*realSuite, name)
			if !ok {
				t.Errorf("no source %s", name)
				continue
			}
			start := time.Now()
			tests, err := f.Tests(t.Context(), cfg.URL, src)
			if errors.Is(err, ErrNotFound) {
				t.Logf("%s %s (%s): %v (the mirror lacks a file; trying another)", name, src.Version, kind, err)
				continue
			}
			if err != nil {
				t.Errorf("%s %s (%s): %v", name, src.Version, kind, err)
				continue
			}
			var names []string
			for _, s := range tests {
				names = append(names, s.Name+" "+strings.Join(s.Restrictions, ","))
			}
			t.Logf("%s %s (%s): %d tests in %s: %s", name, src.Version, kind, len(tests), time.Since(start).Round(time.Millisecond), strings.Join(names, "; "))
			if read++; kind != "named" {
				break
			}
		}
		if read == 0 {
			t.Errorf("no source of kind %s could be read", kind)
		}
	}
	t.Logf("downloaded %d files, %d KiB", recorder.files, recorder.bytes>>10)
}

func total(s archive.Source) int64 {
	var n int64
	for _, f := range s.Files {
		n += f.Size
	}
	return n
}

func has(s archive.Source, part string) bool {
	for _, f := range s.Files {
		if strings.Contains(f.Name, part) {
			return true
		}
	}
	return false
}

type countingTransport struct {
	files int
	bytes int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		c.files++
		c.bytes += max(resp.ContentLength, 0)
	}
	return resp, err
}
