package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key], nil
}

func (s *memStore) Save(_ context.Context, key string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string][]byte)
	}
	s.m[key] = v
	return nil
}

// env is a fixture archive on loopback with bookworm main (xz) and contrib
// (gz only) built from the real paragraphs in testdata.
type env struct {
	f      *fixture
	srv    *httptest.Server
	spec   suiteSpec
	main   string
	cfg    Config
	now    time.Time
	fakeTS bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{f: newFixture(), now: time.Date(2026, 7, 12, 0, 0, 0, 0, time.UTC)}
	e.srv = httptest.NewServer(e.f)
	t.Cleanup(e.srv.Close)
	e.main = readTestdata(t, "bookworm-main-Sources")
	e.spec = suiteSpec{
		suite:  "bookworm",
		head:   readTestdata(t, "bookworm-Release-head"),
		byHash: true,
		files: map[string][]byte{
			"main/source/Sources.xz":    xzBytes(t, e.main),
			"contrib/source/Sources.gz": gzBytes(t, readTestdata(t, "bookworm-contrib-Sources")),
		},
	}
	e.f.publish(t, e.spec)
	e.cfg = Config{
		Name:          "debian",
		URL:           e.srv.URL + "/debian",
		Suites:        []string{"bookworm"},
		Components:    []string{"main", "contrib"},
		Architectures: []string{"amd64"},
		PollInterval:  10 * time.Minute,
	}
	return e
}

func (e *env) watcher(t *testing.T, opts Options) *Watcher {
	t.Helper()
	opts.Now = func() time.Time { return e.now }
	w, err := New(e.cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (e *env) republish(t *testing.T, edit func(*suiteSpec)) {
	t.Helper()
	spec := e.spec
	spec.files = make(map[string][]byte)
	for k, v := range e.spec.files {
		spec.files[k] = v
	}
	edit(&spec)
	e.f.publish(t, spec)
}

func versions(s Snapshot) map[string]string {
	m := make(map[string]string)
	for _, src := range s.Sources() {
		m[src.Package] = src.Version
	}
	return m
}

func TestPollFirstRoundIsABaseline(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, Options{})
	changes, err := w.Poll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("first Poll = %d changes, want 0 (baseline)", len(changes))
	}
	main, ok := w.Snapshot("bookworm", "main")
	if !ok {
		t.Fatal("no snapshot of bookworm/main")
	}
	want := map[string]string{
		"ack": "3.6.0-1", "base-files": "12.4+deb12u15", "build-essential": "12.9",
		"gcc-defaults": "1.203", "glibc": "2.36-9+deb12u14", "hello": "2.10-3",
		"kronosnet": "1.25-1", "libssh2": "1.10.0-3", "python-click": "8.1.3-2",
		"zlib": "1:1.2.13.dfsg-1",
	}
	if diff := cmp.Diff(want, versions(main)); diff != "" {
		t.Errorf("main versions (-want +got):\n%s", diff)
	}
	if got := main.TestableCount(); got != 6 {
		t.Errorf("main.TestableCount() = %d, want 6", got)
	}
	if main.Verified {
		t.Error("main.Verified = true without a keyring, want false")
	}
	if main.SourcesPath != "main/source/Sources.xz" {
		t.Errorf("main.SourcesPath = %q, want main/source/Sources.xz", main.SourcesPath)
	}
	contrib, _ := w.Snapshot("bookworm", "contrib")
	if diff := cmp.Diff(map[string]string{"bart-cuda": "0.8.00-2", "dbab": "1.5.8-1"}, versions(contrib)); diff != "" {
		t.Errorf("contrib versions (-want +got):\n%s", diff)
	}
	if contrib.SourcesPath != "contrib/source/Sources.gz" {
		t.Errorf("contrib.SourcesPath = %q, want the .gz", contrib.SourcesPath)
	}
	wantReq := []string{
		"200 dists/bookworm/InRelease",
		"200 dists/bookworm/main/source/by-hash/SHA256/" + sha256Hex(e.spec.files["main/source/Sources.xz"]),
		"200 dists/bookworm/contrib/source/by-hash/SHA256/" + sha256Hex(e.spec.files["contrib/source/Sources.gz"]),
	}
	if diff := cmp.Diff(wantReq, e.f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestPollReportInitial(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, Options{ReportInitial: true})
	changes, err := w.Poll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 12 {
		t.Fatalf("Poll with ReportInitial = %d changes, want 12", len(changes))
	}
	want := Change{Archive: "debian", Suite: "bookworm", Component: "main", Source: "ack", NewVersion: "3.6.0-1", Testable: true}
	if diff := cmp.Diff(want, changes[0]); diff != "" {
		t.Errorf("first change (-want +got):\n%s", diff)
	}
}

func TestPollUnchangedGets304AndParsesNothing(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, Options{})
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	before, _ := w.Snapshot("bookworm", "main")
	e.f.requests()
	for range 2 {
		changes, err := w.Poll(t.Context())
		if err != nil || len(changes) != 0 {
			t.Fatalf("Poll = %v, %v, want no changes and no error", changes, err)
		}
	}
	if diff := cmp.Diff([]string{"304 dists/bookworm/InRelease", "304 dists/bookworm/InRelease"}, e.f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	after, _ := w.Snapshot("bookworm", "main")
	if !after.FetchedAt.Equal(before.FetchedAt) || after.idx != before.idx {
		t.Error("an unchanged archive produced a new snapshot, want the old one kept")
	}
}

func TestPollNewReleaseSameSourcesFetchesNothing(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, Options{})
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.f.requests()
	e.republish(t, func(s *suiteSpec) { s.head = strings.Replace(s.head, "12.15", "12.16", -1) })
	changes, err := w.Poll(t.Context())
	if err != nil || len(changes) != 0 {
		t.Fatalf("Poll = %v, %v, want no changes and no error", changes, err)
	}
	if diff := cmp.Diff([]string{"200 dists/bookworm/InRelease"}, e.f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestPollReportsChanges(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, Options{})
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	updated := editSources(t, e.main, []string{"zlib", "hello", "libssh2", "base-files"}, readTestdata(t, "trixie-main-updates"))
	e.republish(t, func(s *suiteSpec) { s.files["main/source/Sources.xz"] = xzBytes(t, updated) })
	changes, err := w.Poll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := Change{Archive: "debian", Suite: "bookworm", Component: "main"}
	with := func(src, old, new string, testable bool) Change {
		c := c
		c.Source, c.OldVersion, c.NewVersion, c.Testable = src, old, new, testable
		return c
	}
	want := []Change{
		with("base-files", "12.4+deb12u15", "", false),
		with("hello", "2.10-3", "2.10-5", true),
		with("libssh2", "1.10.0-3", "1.11.1-1+deb13u2", true),
		with("zlib", "1:1.2.13.dfsg-1", "1:1.3.dfsg+really1.3.1-1", false),
	}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("Poll changes (-want +got):\n%s", diff)
	}
	main, _ := w.Snapshot("bookworm", "main")
	if got, want := main.Triggered("zlib"), []string{"kronosnet", "libssh2"}; !cmp.Equal(got, want) {
		t.Errorf("Triggered(zlib) = %v, want %v", got, want)
	}
}

func TestPollErrorsKeepPreviousSnapshot(t *testing.T) {
	tests := []struct {
		name    string
		limits  Limits
		comps   []string
		edit    func(t *testing.T, e *env, s *suiteSpec)
		wantErr error
	}{
		{
			name: "bad sha256",
			edit: func(t *testing.T, e *env, s *suiteSpec) {
				data := xzBytes(t, e.main+"\n")
				s.files["main/source/Sources.xz"] = data
				s.listed = map[string]FileHash{"main/source/Sources.xz": {Size: int64(len(data)), SHA256: strings.Repeat("ab", 32)}}
				s.byHash = false
			},
			wantErr: ErrChecksum,
		},
		{
			name: "size differs",
			edit: func(t *testing.T, e *env, s *suiteSpec) {
				data := xzBytes(t, e.main+"\n")
				s.files["main/source/Sources.xz"] = data
				s.listed = map[string]FileHash{"main/source/Sources.xz": {Size: int64(len(data)) - 1, SHA256: sha256Hex(data)}}
			},
			wantErr: ErrSize,
		},
		{
			name:   "compressed file over the limit",
			limits: Limits{MaxCompressed: 1000},
			edit: func(t *testing.T, e *env, s *suiteSpec) {
				s.files["main/source/Sources.xz"] = xzBytes(t, e.main+"\n")
			},
			wantErr: ErrTooLarge,
		},
		{
			name:   "decompressed file over the limit",
			limits: Limits{MaxDecompressed: 20000},
			edit: func(t *testing.T, e *env, s *suiteSpec) {
				s.files["main/source/Sources.xz"] = xzBytes(t, e.main+"\n")
			},
			wantErr: ErrTooLarge,
		},
		{
			name: "truncated xz",
			edit: func(t *testing.T, e *env, s *suiteSpec) {
				data := xzBytes(t, e.main+"\n")
				s.files["main/source/Sources.xz"] = data[:len(data)/2]
			},
			wantErr: ErrCorrupt,
		},
		{
			name:    "component missing from Release",
			comps:   []string{"main", "restricted"},
			edit:    func(t *testing.T, e *env, s *suiteSpec) {},
			wantErr: ErrMissingComponent,
		},
		{
			name: "Release without the file",
			edit: func(t *testing.T, e *env, s *suiteSpec) {
				s.listed = map[string]FileHash{"main/source/Sources.xz": {}}
			},
			wantErr: ErrNotInRelease,
		},
		{
			name: "Release without SHA256",
			edit: func(t *testing.T, e *env, s *suiteSpec) {
				s.listed = map[string]FileHash{"main/source/Sources.xz": {}, "contrib/source/Sources.gz": {}}
			},
			wantErr: ErrNoSHA256,
		},
		{
			name: "Release for another suite",
			edit: func(t *testing.T, e *env, s *suiteSpec) {
				s.head = strings.NewReplacer("Codename: bookworm", "Codename: trixie", "Suite: oldstable", "Suite: stable").Replace(s.head)
			},
			wantErr: ErrSuiteMismatch,
		},
		{
			name: "expired Release",
			edit: func(t *testing.T, e *env, s *suiteSpec) {
				s.head += "Valid-Until: Sat, 11 Jul 2026 12:00:00 UTC\n"
			},
			wantErr: ErrExpired,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.watcher(t, Options{})
			if _, err := w.Poll(t.Context()); err != nil {
				t.Fatal(err)
			}
			before, _ := w.Snapshot("bookworm", "main")
			if tt.comps != nil {
				e.cfg.Components = tt.comps
			}
			// Limits and components apply from the second round on; the
			// new watcher carries over what the first one knew.
			w2 := e.watcher(t, Options{Limits: tt.limits})
			w2.snaps, w2.valid = w.snaps, w.valid
			w = w2
			e.republish(t, func(s *suiteSpec) { tt.edit(t, e, s) })
			changes, err := w.Poll(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Poll error = %v, want %v", err, tt.wantErr)
			}
			if len(changes) != 0 {
				t.Errorf("Poll = %d changes, want 0", len(changes))
			}
			after, _ := w.Snapshot("bookworm", "main")
			if after.idx != before.idx || after.SourcesSHA256 != before.SourcesSHA256 {
				t.Error("failed Poll replaced the main snapshot, want it kept")
			}
			// The next poll must not be short-circuited by a 304.
			e.f.requests()
			w.Poll(t.Context())
			if reqs := e.f.requests(); len(reqs) == 0 || !strings.HasPrefix(reqs[0], "200 ") {
				t.Errorf("retry after error: requests %v, want a full InRelease fetch first", reqs)
			}
		})
	}
}

func TestPollReleaseFallback(t *testing.T) {
	e := newEnv(t)
	e.spec.detached = true
	e.spec.byHash = false
	e.spec.head = strings.Replace(e.spec.head, "Acquire-By-Hash: yes\n", "", 1)
	e.f = newFixture()
	e.srv.Config.Handler = e.f
	e.f.publish(t, e.spec)
	w := e.watcher(t, Options{})
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"404 dists/bookworm/InRelease",
		"200 dists/bookworm/Release",
		"200 dists/bookworm/main/source/Sources.xz",
		"200 dists/bookworm/contrib/source/Sources.gz",
		"404 dists/bookworm/InRelease",
		"304 dists/bookworm/Release",
	}
	if diff := cmp.Diff(want, e.f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestPollByHashFallsBackToPlainName(t *testing.T) {
	e := newEnv(t)
	e.f.remove("dists/bookworm/main/source/by-hash/SHA256/" + sha256Hex(e.spec.files["main/source/Sources.xz"]))
	w := e.watcher(t, Options{})
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	reqs := e.f.requests()
	if len(reqs) < 3 || !strings.HasPrefix(reqs[1], "404 ") || reqs[2] != "200 dists/bookworm/main/source/Sources.xz" {
		t.Errorf("requests = %v, want a by-hash 404 then the plain name", reqs)
	}
}

func TestPollServerError(t *testing.T) {
	e := newEnv(t)
	e.f.setFail("dists/bookworm/InRelease", http.StatusServiceUnavailable)
	w := e.watcher(t, Options{})
	if _, err := w.Poll(t.Context()); !errors.Is(err, ErrHTTPStatus) {
		t.Errorf("Poll error = %v, want ErrHTTPStatus", err)
	}
}

func TestRestoreResumesConditionalPolling(t *testing.T) {
	e := newEnv(t)
	store := &memStore{}
	w := e.watcher(t, Options{Store: store})
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.m[StateKey("debian", "bookworm")]; !ok {
		t.Fatalf("state saved under %v, want key %s", store.m, StateKey("debian", "bookworm"))
	}
	e.f.requests()

	w2 := e.watcher(t, Options{Store: store})
	if err := w2.Restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	changes, err := w2.Poll(t.Context())
	if err != nil || len(changes) != 0 {
		t.Fatalf("Poll after Restore = %v, %v, want nothing", changes, err)
	}
	if diff := cmp.Diff([]string{"304 dists/bookworm/InRelease"}, e.f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	s1, _ := w.Snapshot("bookworm", "main")
	s2, _ := w2.Snapshot("bookworm", "main")
	if diff := cmp.Diff(s1.Sources(), s2.Sources()); diff != "" {
		t.Errorf("restored sources (-want +got):\n%s", diff)
	}
	if src, _ := s2.Source("hello"); src.Directory != "pool/main/h/hello" || len(src.Files) != 4 {
		t.Errorf("restored hello: Directory %q, Files %v, want its directory and 4 files", src.Directory, src.Files)
	}
	if got, want := s2.Triggered("zlib"), s1.Triggered("zlib"); !cmp.Equal(got, want) {
		t.Errorf("restored Triggered(zlib) = %v, want %v", got, want)
	}

	// A change made while no watcher ran is reported against the restored
	// snapshot.
	updated := editSources(t, e.main, []string{"hello"}, paragraph(t, readTestdata(t, "trixie-main-updates"), "hello"))
	e.republish(t, func(s *suiteSpec) { s.files["main/source/Sources.xz"] = xzBytes(t, updated) })
	w3 := e.watcher(t, Options{Store: store})
	if err := w3.Restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	changes, err = w3.Poll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{Archive: "debian", Suite: "bookworm", Component: "main", Source: "hello", OldVersion: "2.10-3", NewVersion: "2.10-5", Testable: true}}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("changes after restore (-want +got):\n%s", diff)
	}
}

func TestRestoreStateWithoutFiles(t *testing.T) {
	e := newEnv(t)
	old := `{"version":1,"archive":"debian","suite":"bookworm","components":{"main":{"sources":[{"p":"hello","v":"2.10-3","t":["autopkgtest"]}]}}}`
	store := &memStore{m: map[string][]byte{StateKey("debian", "bookworm"): gzBytes(t, old)}}
	w := e.watcher(t, Options{Store: store})
	if err := w.Restore(t.Context()); err != nil {
		t.Fatalf("Restore = %v, want state without directories and files to load", err)
	}
	got, _, ok := w.Source("bookworm", "hello")
	want := Source{Package: "hello", Version: "2.10-3", Testsuite: []string{"autopkgtest"}}
	if diff := cmp.Diff(want, got); !ok || diff != "" {
		t.Errorf("Source(bookworm, hello) = %v (-want +got):\n%s", ok, diff)
	}
}

func TestWatcherSource(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, Options{})
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		suite, name string
		wantVersion string
		wantDir     string
		wantFiles   int
	}{
		{"bookworm", "hello", "2.10-3", "pool/main/h/hello", 4},
		{"bookworm", "dbab", "1.5.8-1", "pool/contrib/d/dbab", 3},
		{"bookworm", "zlib", "1:1.2.13.dfsg-1", "pool/main/z/zlib", 0}, // not testable
		{"bookworm", "no-such-source", "", "", 0},
		{"trixie", "hello", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.suite+"/"+tt.name, func(t *testing.T) {
			src, cfg, ok := w.Source(tt.suite, tt.name)
			if ok != (tt.wantVersion != "") || src.Version != tt.wantVersion || src.Directory != tt.wantDir || len(src.Files) != tt.wantFiles {
				t.Errorf("Source(%s, %s) = %s %q, %d files, %v; want %q %q, %d files", tt.suite, tt.name,
					src.Version, src.Directory, len(src.Files), ok, tt.wantVersion, tt.wantDir, tt.wantFiles)
			}
			if cfg.URL != e.cfg.URL {
				t.Errorf("Source(%s, %s) config URL = %q, want %q", tt.suite, tt.name, cfg.URL, e.cfg.URL)
			}
		})
	}

	// A newer version in a later component wins.
	contrib := readTestdata(t, "bookworm-contrib-Sources") + "\n" + paragraph(t, readTestdata(t, "trixie-main-updates"), "hello") + "\n"
	e.republish(t, func(s *suiteSpec) { s.files["contrib/source/Sources.gz"] = gzBytes(t, contrib) })
	if _, err := w.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if src, _, _ := w.Source("bookworm", "hello"); src.Version != "2.10-5" {
		t.Errorf("Source(bookworm, hello) = %s, want 2.10-5 from contrib over 2.10-3 from main", src.Version)
	}
}

func TestRestoreRefusesBadState(t *testing.T) {
	tests := []struct {
		name  string
		value []byte
	}{
		{"not gzip", []byte("{}")},
		{"not json", gzBytes(t, "nope")},
		{"other suite", gzBytes(t, `{"version":1,"archive":"debian","suite":"trixie"}`)},
		{"bad version", gzBytes(t, `{"version":1,"archive":"debian","suite":"bookworm","components":{"main":{"sources":[{"p":"hello","v":"x y"}]}}}`)},
		{"bad name", gzBytes(t, `{"version":1,"archive":"debian","suite":"bookworm","components":{"main":{"sources":[{"p":"Hello","v":"1"}]}}}`)},
		{"bad directory", gzBytes(t, `{"version":1,"archive":"debian","suite":"bookworm","components":{"main":{"sources":[{"p":"hello","v":"1","d":"../etc"}]}}}`)},
		{"bad file", gzBytes(t, `{"version":1,"archive":"debian","suite":"bookworm","components":{"main":{"sources":[{"p":"hello","v":"1","f":["abc 1 hello.dsc"]}]}}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			store := &memStore{m: map[string][]byte{StateKey("debian", "bookworm"): tt.value}}
			w := e.watcher(t, Options{Store: store})
			if err := w.Restore(t.Context()); !errors.Is(err, ErrState) {
				t.Errorf("Restore = %v, want ErrState", err)
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	good := newSigner(t, "archive")
	other := newSigner(t, "intruder")
	tests := []struct {
		name     string
		signer   *signer
		detached bool
		tamper   bool
		wantErr  error
	}{
		{name: "InRelease signed", signer: good},
		{name: "Release.gpg signed", signer: good, detached: true},
		{name: "InRelease by another key", signer: other, wantErr: ErrBadSignature},
		{name: "Release.gpg by another key", signer: other, detached: true, wantErr: ErrBadSignature},
		{name: "InRelease tampered", signer: good, tamper: true, wantErr: ErrBadSignature},
		{name: "InRelease not signed", wantErr: ErrBadSignature},
		{name: "Release without Release.gpg", detached: true, wantErr: ErrUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.f = newFixture()
			e.srv.Config.Handler = e.f
			e.spec.signer, e.spec.detached = tt.signer, tt.detached
			e.f.publish(t, e.spec)
			if tt.tamper {
				in := e.f.files["dists/bookworm/InRelease"]
				e.f.put("dists/bookworm/InRelease", []byte(strings.Replace(string(in), "Version: 12.15", "Version: 12.99", 1)))
			}
			e.cfg.Keyring = good.keyring
			w := e.watcher(t, Options{})
			_, err := w.Poll(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Poll error = %v, want %v", err, tt.wantErr)
			}
			snap, ok := w.Snapshot("bookworm", "main")
			if tt.wantErr != nil {
				if ok {
					t.Error("snapshot made from a refused index")
				}
				return
			}
			if !snap.Verified || snap.Len() != 10 {
				t.Errorf("snapshot Verified=%v Len=%d, want true and 10", snap.Verified, snap.Len())
			}
		})
	}
}

func TestPlainInReleaseRefusedWithKeyring(t *testing.T) {
	e := newEnv(t)
	e.f.put("dists/bookworm/InRelease", []byte("Origin: Debian\nSHA256:\n "+strings.Repeat("0", 64)+" 1 x\n"))
	e.cfg.Keyring = "testdata/does-not-matter.gpg"
	w := e.watcher(t, Options{})
	if _, err := w.Poll(t.Context()); !errors.Is(err, ErrUnsigned) {
		t.Errorf("Poll error = %v, want ErrUnsigned", err)
	}
}

func TestNextWait(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{"ok", 10 * time.Minute, 0, 10 * time.Minute},
		{"first failure", 10 * time.Minute, 1, time.Minute},
		{"second failure", 10 * time.Minute, 2, 2 * time.Minute},
		{"fifth failure", 10 * time.Minute, 5, 16 * time.Minute},
		{"capped", 10 * time.Minute, 30, 40 * time.Minute},
		{"short interval", 2 * time.Minute, 1, time.Minute},
		{"short interval capped", 2 * time.Minute, 9, 8 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Watcher{cfg: Config{PollInterval: tt.interval}}
			if got := w.nextWait(tt.failures); got != tt.want {
				t.Errorf("nextWait(%d) = %s, want %s", tt.failures, got, tt.want)
			}
		})
	}
}

func TestRunPollsOnScheduleAndBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &env{f: newFixture(), main: readTestdata(t, "bookworm-main-Sources")}
		e.spec = suiteSpec{
			suite: "bookworm",
			head:  readTestdata(t, "bookworm-Release-head"),
			files: map[string][]byte{"main/source/Sources.xz": xzBytes(t, e.main)},
		}
		e.f.publish(t, e.spec)
		cfg := Config{Name: "debian", URL: "http://archive.invalid/debian", Suites: []string{"bookworm"}, Components: []string{"main"}, PollInterval: 10 * time.Minute}
		w, err := New(cfg, Options{Client: &http.Client{Transport: handlerTransport{e.f}}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu      sync.Mutex
			batches [][]Change
		)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() {
			done <- w.Run(ctx, func(c []Change) {
				mu.Lock()
				defer mu.Unlock()
				batches = append(batches, c)
			})
		}()
		polls := func() int {
			n := 0
			for _, r := range e.f.requests() {
				if strings.HasSuffix(r, "/InRelease") {
					n++
				}
			}
			return n
		}
		// next advances the fake clock second by second until the next
		// round and returns how long that took.
		next := func() time.Duration {
			start := time.Now()
			for {
				time.Sleep(time.Second)
				synctest.Wait()
				if polls() > 0 {
					return time.Since(start)
				}
			}
		}
		synctest.Wait()
		if got := polls(); got != 1 {
			t.Fatalf("Run made %d polls at once, want 1", got)
		}
		within := func(what string, got, want time.Duration) {
			t.Helper()
			lo, hi := want-want/10, want+want/10+time.Second
			if got < lo || got > hi {
				t.Errorf("%s came after %s, want %s ±10 %%", what, got, want)
			}
		}
		within("second round", next(), 10*time.Minute)
		within("third round", next(), 10*time.Minute)

		e.f.setFail("dists/bookworm/InRelease", http.StatusBadGateway)
		within("failing round", next(), 10*time.Minute)
		within("first retry", next(), time.Minute)
		within("second retry", next(), 2*time.Minute)
		within("third retry", next(), 4*time.Minute)

		e.f.setFail("dists/bookworm/InRelease", 0)
		updated := editSources(t, e.main, []string{"hello"}, paragraph(t, readTestdata(t, "trixie-main-updates"), "hello"))
		e.spec.files["main/source/Sources.xz"] = xzBytes(t, updated)
		e.f.publish(t, e.spec)
		within("fourth retry", next(), 8*time.Minute)
		within("round after recovery", next(), 10*time.Minute)
		mu.Lock()
		got := batches
		mu.Unlock()
		if len(got) != 1 || len(got[0]) != 1 || got[0][0].Source != "hello" {
			t.Errorf("onChanges batches = %v, want one batch with hello", got)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

func TestPollsDoNotOverlap(t *testing.T) {
	e := newEnv(t)
	w := e.watcher(t, Options{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := w.Poll(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	full := 0
	for _, r := range e.f.requests() {
		if r == "200 dists/bookworm/InRelease" {
			full++
		}
	}
	if full != 1 {
		t.Errorf("4 concurrent Polls made %d full InRelease fetches, want 1 (the rest 304)", full)
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add(gzBytesF(`{"version":1,"archive":"debian","suite":"bookworm","components":{"main":{"sources":[{"p":"hello","v":"1"}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(data, 1<<16)
		if err != nil {
			return
		}
		for _, c := range st.Components {
			if len(c.Sources) > 1<<16 {
				t.Errorf("%d sources from at most 64 KiB", len(c.Sources))
			}
		}
	})
}

func gzBytesF(text string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(text))
	w.Close()
	return b.Bytes()
}
