package archive

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

var (
	realRun     = flag.Bool("real", false, "poll the real Debian archive (network)")
	realURL     = flag.String("real-url", "http://deb.debian.org/debian", "archive for -real")
	realSuite   = flag.String("real-suite", "bookworm", "suite for -real")
	realKeyring = flag.String("real-keyring", "/usr/share/keyrings/debian-archive-keyring.gpg", "keyring for -real (empty: no verification)")
)

// TestRealDebian polls a real archive twice and prints what it found. It
// runs only with -real:
//
//	go test ./coordinator/archive -run TestRealDebian -real -v
func TestRealDebian(t *testing.T) {
	if !*realRun {
		t.Skip("needs -real (polls the real archive over the network)")
	}
	cfg := Config{Name: "debian", URL: *realURL, Suites: []string{*realSuite}, Components: []string{"main"}, Architectures: []string{"amd64"}}
	if *realKeyring != "" {
		if _, err := os.Stat(*realKeyring); err == nil {
			cfg.Keyring = *realKeyring
		} else {
			t.Logf("keyring %s missing, polling unverified", *realKeyring)
		}
	}
	rt := &loggingTransport{t: t}
	store := &memStore{}
	w, err := New(cfg, Options{Client: &http.Client{Transport: rt}, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	snap, _ := w.Snapshot(*realSuite, "main")

	start = time.Now()
	changes, err := w.Poll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	second := time.Since(start)

	top, topCount := "", 0
	sumTriggers := 0
	for _, s := range snap.Sources() {
		n := len(snap.Triggered(s.Package))
		sumTriggers += n
		if n > topCount {
			top, topCount = s.Package, n
		}
	}
	t.Logf("archive %s suite %s component main (amd64), verified=%v", cfg.URL, *realSuite, snap.Verified)
	t.Logf("release date %s, %s sha256 %s", snap.ReleaseDate.Format(time.RFC3339), snap.SourcesPath, snap.SourcesSHA256)
	t.Logf("sources: %d, testable: %d, rejected paragraphs: %d", snap.Len(), snap.TestableCount(), snap.Rejected)
	t.Logf("most-triggering source: %s triggers %d testable sources", top, topCount)
	for _, name := range []string{"zlib", "glibc", "openssl", "hello"} {
		t.Logf("Triggered(%s): %d sources", name, len(snap.Triggered(name)))
	}
	t.Logf("first poll: %s; second poll: %s, %d changes", first.Round(time.Millisecond), second.Round(time.Millisecond), len(changes))
	t.Logf("saved state: %d KiB", len(store.m[StateKey(cfg.Name, *realSuite)])>>10)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("heap kept after both polls and a GC: %d MiB", ms.HeapAlloc>>20)
	runtime.KeepAlive(w)
	for _, r := range rt.log {
		t.Logf("request: %s", r)
	}
}

// loggingTransport records each request's status, size and headers that
// matter for conditional requests.
type loggingTransport struct {
	t   *testing.T
	mu  sync.Mutex
	log []string
}

func (l *loggingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, fmt.Sprintf("%d %s (%d bytes, ETag %q, Last-Modified %q)", resp.StatusCode, r.URL.Path,
		resp.ContentLength, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")))
	return resp, nil
}
