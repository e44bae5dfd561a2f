package testsctl

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/srcpkg"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

const dir = "pool/main/h/hello"

var clock = time.Date(2026, 7, 12, 0, 0, 0, 0, time.UTC)

// env is a loopback archive and a Fetcher caching in a temporary
// directory.
type env struct {
	srv *server
	url string
	f   *Fetcher
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := newServer()
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &env{srv: s, url: hs.URL + "/debian", f: newFetcher(t.TempDir(), hs.Client())}
}

func newFetcher(cache string, client *http.Client) *Fetcher {
	return &Fetcher{Client: client, Dir: cache, Now: func() time.Time { return clock }}
}

func names(tests []dep8.TestStanza) []string {
	var out []string
	for _, s := range tests {
		out = append(out, s.Name)
	}
	return out
}

func TestTestsOfEachFormat(t *testing.T) {
	tests := []struct {
		name         string
		pkg          pkg
		wantTests    []string
		wantRequests []string
		wantErr      error
	}{
		{
			name:         "3.0 (quilt) fetches only the debian tarball",
			pkg:          pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, tests: testsTwo},
			wantTests:    []string{"smoke", "quick"},
			wantRequests: []string{"hello_1.0-1.dsc", "hello_1.0-1.debian.tar.xz"},
		},
		{
			name:         "3.0 (native)",
			pkg:          pkg{version: "1.0", format: "3.0 (native)", tests: testsSmoke},
			wantTests:    []string{"smoke"},
			wantRequests: []string{"hello_1.0.dsc", "hello_1.0.tar.xz"},
		},
		{
			name:         "1.0 with a diff",
			pkg:          pkg{version: "1.0-1", orig: true, tests: testsTwo},
			wantTests:    []string{"smoke", "quick"},
			wantRequests: []string{"hello_1.0-1.dsc", "hello_1.0.orig.tar.gz", "hello_1.0-1.diff.gz"},
		},
		{
			name:         "1.0 native",
			pkg:          pkg{version: "1.0", tests: testsSmoke},
			wantTests:    []string{"smoke"},
			wantRequests: []string{"hello_1.0.dsc", "hello_1.0.tar.gz"},
		},
		{
			name:         "no tests control",
			pkg:          pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, testsuite: "autopkgtest-pkg-python"},
			wantRequests: []string{"hello_1.0-1.dsc", "hello_1.0-1.debian.tar.xz"},
		},
		{
			name:         "tests control autopkgtest refuses",
			pkg:          pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, tests: "Tests: smoke\nTest-Command: true\n"},
			wantRequests: []string{"hello_1.0-1.dsc", "hello_1.0-1.debian.tar.xz"},
			wantErr:      dep8.ErrBadControl,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, tt.pkg)
			e := newEnv(t)
			e.srv.add(dir, b)
			if _, ok := e.f.Cached(e.url, b.src); ok {
				t.Errorf("Cached() before any fetch = known")
			}

			got, err := e.f.Tests(t.Context(), e.url, b.src)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Tests() error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantTests, names(got)); diff != "" {
				t.Errorf("Tests() names (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRequests, e.srv.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			leftovers, _ := filepath.Glob(filepath.Join(e.f.Dir, tempPrefix+"*"))
			if len(leftovers) != 0 {
				t.Errorf("temporary files left behind: %v", leftovers)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, ErrBadSource) || !Permanent(err) {
					t.Errorf("Tests() error = %v, want ErrBadSource, permanent", err)
				}
				if _, serr := os.Stat(e.f.entryPath("hello_" + tt.pkg.version)); serr == nil {
					t.Errorf("an error was cached")
				}
				return
			}

			// Another Fetcher on the same directory, as after a restart,
			// answers from the cache.
			again, err := newFetcher(e.f.Dir, nil).Tests(t.Context(), e.url, b.src)
			if err != nil {
				t.Fatalf("Tests() from the cache: %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("Tests() from the cache (-first +again):\n%s", diff)
			}
			cached, ok := e.f.Cached(e.url, b.src)
			if diff := cmp.Diff(got, cached); !ok || diff != "" {
				t.Errorf("Cached() = known %v (-fetched +cached):\n%s", ok, diff)
			}
			if reqs := e.srv.requests(); len(reqs) != 0 {
				t.Errorf("Tests() and Cached() from the cache made requests %v, want none", reqs)
			}
		})
	}
}

func TestTestsKeepsStanzas(t *testing.T) {
	b := build(t, pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, tests: testsTwo})
	e := newEnv(t)
	e.srv.add(dir, b)
	got, err := e.f.Tests(t.Context(), e.url, b.src)
	if err != nil {
		t.Fatal(err)
	}
	want, err := dep8.ParseTestsControl(strings.NewReader(testsTwo))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tests() (-want +got):\n%s", diff)
	}
	if !got[0].Requirements().NeedsRoot || !got[1].Requirements().NeedsMachine {
		t.Errorf("requirements = %+v, %+v, want needs-root and isolation-machine", got[0].Requirements(), got[1].Requirements())
	}
}

func TestTestsErrors(t *testing.T) {
	b := build(t, pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, tests: testsSmoke, padding: 8 << 10})
	dsc, deb := b.file(t, ".dsc"), b.file(t, ".debian.tar.xz")
	if deb.Size <= dsc.Size {
		t.Fatalf("the debian tarball (%d bytes) must be larger than the .dsc (%d)", deb.Size, dsc.Size)
	}
	tests := []struct {
		name string
		// setup changes the archive, the source or the Fetcher.
		setup         func(e *env) (url string, src archive.Source)
		wantErr       []error
		wantInMessage string
		wantRequests  []string
		wantPermanent bool
	}{
		{
			name: "sha256 differs",
			setup: func(e *env) (string, archive.Source) {
				return e.url, withFile(b.src, deb.Name, func(f *archive.File) { f.SHA256 = strings.Repeat("ab", 32) })
			},
			wantErr:       []error{ErrChecksum},
			wantInMessage: deb.Name,
			wantRequests:  []string{dsc.Name, deb.Name},
		},
		{
			name: "dsc sha256 differs",
			setup: func(e *env) (string, archive.Source) {
				return e.url, withFile(b.src, dsc.Name, func(f *archive.File) { f.SHA256 = strings.Repeat("ab", 32) })
			},
			wantErr:       []error{ErrChecksum},
			wantInMessage: dsc.Name,
			wantRequests:  []string{dsc.Name},
		},
		{
			name: "size differs",
			setup: func(e *env) (string, archive.Source) {
				return e.url, withFile(b.src, deb.Name, func(f *archive.File) { f.Size++ })
			},
			wantErr:       []error{ErrChecksum},
			wantInMessage: deb.Name,
			wantRequests:  []string{dsc.Name, deb.Name},
		},
		{
			name: "file over MaxFile",
			setup: func(e *env) (string, archive.Source) {
				e.f.MaxFile = deb.Size - 1
				return e.url, b.src
			},
			wantErr:       []error{ErrTooLarge},
			wantInMessage: deb.Name,
			wantRequests:  []string{dsc.Name},
			wantPermanent: true,
		},
		{
			name: "tests control over srcpkg's limit",
			setup: func(e *env) (string, archive.Source) {
				e.f.Limits = srcpkg.Limits{MaxControl: 10}
				return e.url, b.src
			},
			wantErr:       []error{ErrTooLarge, srcpkg.ErrTooLarge},
			wantRequests:  []string{dsc.Name, deb.Name},
			wantPermanent: true,
		},
		{
			name: "missing file",
			setup: func(e *env) (string, archive.Source) {
				e.srv.remove(dir + "/" + deb.Name)
				return e.url, b.src
			},
			wantErr:       []error{ErrNotFound},
			wantInMessage: deb.Name,
			wantRequests:  []string{dsc.Name, deb.Name},
		},
		{
			name: "server error",
			setup: func(e *env) (string, archive.Source) {
				e.srv.setStatus(dir+"/"+dsc.Name, http.StatusServiceUnavailable)
				return e.url, b.src
			},
			wantErr:       []error{ErrHTTPStatus},
			wantInMessage: dsc.Name,
			wantRequests:  []string{dsc.Name},
		},
		{
			name: "unsupported format",
			setup: func(e *env) (string, archive.Source) {
				git := b.replace(dsc.Name, []byte(strings.Replace(string(b.files[dsc.Name]), "3.0 (quilt)", "3.0 (git)", 1)))
				e.srv.add(dir, git)
				return e.url, git.src
			},
			wantErr:       []error{ErrBadSource, srcpkg.ErrUnsupported},
			wantInMessage: "3.0 (git)",
			wantRequests:  []string{dsc.Name},
			wantPermanent: true,
		},
		{
			name: "dsc without its debian tarball",
			setup: func(e *env) (string, archive.Source) {
				src := b.src
				src.Files = []archive.File{dsc}
				return e.url, src
			},
			wantErr:       []error{ErrBadSource},
			wantInMessage: "debian tarball",
			wantRequests:  []string{dsc.Name},
			wantPermanent: true,
		},
		{
			name: "no files",
			setup: func(e *env) (string, archive.Source) {
				src := b.src
				src.Files = nil
				return e.url, src
			},
			wantErr:       []error{ErrNoFiles},
			wantPermanent: true,
		},
		{
			name: "no directory",
			setup: func(e *env) (string, archive.Source) {
				src := b.src
				src.Directory = ""
				return e.url, src
			},
			wantErr:       []error{ErrNoFiles},
			wantPermanent: true,
		},
		{
			name: "no dsc",
			setup: func(e *env) (string, archive.Source) {
				src := b.src
				src.Files = []archive.File{deb}
				return e.url, src
			},
			wantErr:       []error{ErrNoFiles},
			wantPermanent: true,
		},
		{
			name: "directory leaving the archive",
			setup: func(e *env) (string, archive.Source) {
				src := b.src
				src.Directory = "pool/../../etc"
				return e.url, src
			},
			wantErr:       []error{ErrBadSource},
			wantPermanent: true,
		},
		{
			name: "file name with a slash",
			setup: func(e *env) (string, archive.Source) {
				return e.url, withFile(b.src, deb.Name, func(f *archive.File) { f.Name = "../" + f.Name })
			},
			wantErr:       []error{ErrBadSource},
			wantPermanent: true,
		},
		{
			name: "bad package name",
			setup: func(e *env) (string, archive.Source) {
				src := b.src
				src.Package = "Hello/x"
				return e.url, src
			},
			wantErr:       []error{ErrBadSource},
			wantPermanent: true,
		},
		{
			name: "bad version",
			setup: func(e *env) (string, archive.Source) {
				src := b.src
				src.Version = "1.0/../x"
				return e.url, src
			},
			wantErr:       []error{ErrBadSource, archive.ErrBadVersion},
			wantPermanent: true,
		},
		{
			name:          "archive URL not http",
			setup:         func(e *env) (string, archive.Source) { return "file:///etc", b.src },
			wantErr:       []error{ErrConfig},
			wantPermanent: true,
		},
		{
			name: "no cache directory",
			setup: func(e *env) (string, archive.Source) {
				e.f.Dir = ""
				return e.url, b.src
			},
			wantErr:       []error{ErrConfig},
			wantPermanent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.add(dir, b)
			url, src := tt.setup(e)
			got, err := e.f.Tests(t.Context(), url, src)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("Tests() error = %v, want %v", err, want)
				}
			}
			if got != nil {
				t.Errorf("Tests() = %v with the error, want nil", names(got))
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantInMessage) {
				t.Errorf("Tests() error = %q, want it to name %q", err, tt.wantInMessage)
			}
			if Permanent(err) != tt.wantPermanent {
				t.Errorf("Permanent(%v) = %v, want %v", err, Permanent(err), tt.wantPermanent)
			}
			if diff := cmp.Diff(tt.wantRequests, e.srv.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if e.f.Dir == "" {
				return
			}
			left, _ := os.ReadDir(e.f.Dir)
			if len(left) != 0 {
				t.Errorf("the cache directory holds %v after an error, want nothing", left)
			}
		})
	}
}

func TestCacheEntryIsCheckedAgainstTheSource(t *testing.T) {
	b := build(t, pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, tests: testsSmoke})
	tests := []struct {
		name  string
		entry string
	}{
		{"another dsc", `{"format":1,"package":"hello","version":"1.0-1","dsc_sha256":"` + strings.Repeat("0", 64) + `","tests":null}`},
		{"another format", `{"format":99,"package":"hello","version":"1.0-1","dsc_sha256":"` + b.file(t, ".dsc").SHA256 + `","tests":null}`},
		{"corrupt", `{"format":1,`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.add(dir, b)
			if err := os.WriteFile(e.f.entryPath("hello_1.0-1"), []byte(tt.entry), 0o640); err != nil {
				t.Fatal(err)
			}
			got, err := e.f.Tests(t.Context(), e.url, b.src)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"smoke"}, names(got)); diff != "" {
				t.Errorf("Tests() names (-want +got):\n%s", diff)
			}
			if reqs := e.srv.requests(); len(reqs) != 2 {
				t.Errorf("requests = %v, want the .dsc and the debian tarball fetched again", reqs)
			}
			e2, ok := e.f.load(mustJob(t, e.url, b.src))
			if !ok || !e2.FetchedAt.Equal(clock) || e2.Path != "hello_1.0-1.debian.tar.xz:debian/tests/control" {
				t.Errorf("cache entry after the fetch = %+v, %v, want one replaced at %s", e2, ok, clock)
			}
		})
	}
}

func mustJob(t *testing.T, url string, src archive.Source) job {
	t.Helper()
	j, err := newJob(url, src)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestLeftoversAreRemoved(t *testing.T) {
	b := build(t, pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, tests: testsSmoke})
	e := newEnv(t)
	e.srv.add(dir, b)
	stale := filepath.Join(e.f.Dir, tempPrefix+"123.tar")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.Tests(t.Context(), e.url, b.src); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file: Stat = %v, want it removed", err)
	}
}

// archiveURL is the loopback-free archive of the synctest tests.
const archiveURL = "http://archive.test/debian"

func TestConcurrentCallsFetchOnce(t *testing.T) {
	b := build(t, pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, tests: testsSmoke})
	synctest.Test(t, func(t *testing.T) {
		s := newServer()
		s.add(dir, b)
		s.gate = make(chan struct{})
		f := newFetcher(t.TempDir(), &http.Client{Transport: handlerTransport{s}})
		const callers = 5
		results := make(chan []string, callers)
		for range callers {
			go func() {
				tests, err := f.Tests(t.Context(), archiveURL, b.src)
				if err != nil {
					t.Errorf("Tests() error: %v", err)
				}
				results <- names(tests)
			}()
		}
		synctest.Wait()
		if diff := cmp.Diff([]string{"hello_1.0-1.dsc"}, s.requests()); diff != "" {
			t.Errorf("requests while held (-want +got):\n%s", diff)
		}
		close(s.gate)
		for range callers {
			if got := <-results; !cmp.Equal(got, []string{"smoke"}) {
				t.Errorf("Tests() = %v, want [smoke]", got)
			}
		}
		if diff := cmp.Diff([]string{"hello_1.0-1.debian.tar.xz"}, s.requests()); diff != "" {
			t.Errorf("requests after release (-want +got):\n%s", diff)
		}
	})
}

func TestAtMostTwoDownloads(t *testing.T) {
	b := build(t, pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, tests: testsSmoke})
	synctest.Test(t, func(t *testing.T) {
		s := newServer()
		s.gate = make(chan struct{})
		f := newFetcher(t.TempDir(), &http.Client{Transport: handlerTransport{s}})
		pkgs := []string{"hello-a", "hello-b", "hello-c"}
		errs := make(chan error, len(pkgs))
		for _, name := range pkgs {
			src := b.src
			src.Package, src.Directory = name, "pool/main/h/"+name
			s.add(src.Directory, b)
			go func() {
				_, err := f.Tests(t.Context(), archiveURL, src)
				errs <- err
			}()
		}
		synctest.Wait()
		if held := s.requests(); len(held) != 2 {
			t.Errorf("requests while held = %v, want 2", held)
		}
		close(s.gate)
		for range pkgs {
			if err := <-errs; err != nil {
				t.Errorf("Tests() error: %v", err)
			}
		}
		if rest := s.requests(); len(rest) != 4 {
			t.Errorf("requests after release = %v, want the other 4", rest)
		}
	})
}

func TestWaiterFetchesWhenTheFirstCallerGivesUp(t *testing.T) {
	b := build(t, pkg{version: "1.0-1", format: "3.0 (quilt)", orig: true, tests: testsSmoke})
	synctest.Test(t, func(t *testing.T) {
		s := newServer()
		s.add(dir, b)
		s.gate = make(chan struct{})
		f := newFetcher(t.TempDir(), &http.Client{Transport: handlerTransport{s}})
		ctx, cancel := context.WithCancel(t.Context())
		first := make(chan error, 1)
		go func() {
			_, err := f.Tests(ctx, archiveURL, b.src)
			first <- err
		}()
		synctest.Wait()
		second := make(chan error, 1)
		go func() {
			tests, err := f.Tests(t.Context(), archiveURL, b.src)
			if err == nil && !cmp.Equal(names(tests), []string{"smoke"}) {
				t.Errorf("second Tests() = %v, want [smoke]", names(tests))
			}
			second <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-first; !errors.Is(err, context.Canceled) || Permanent(err) {
			t.Errorf("first Tests() error = %v, want context.Canceled, not permanent", err)
		}
		synctest.Wait()
		close(s.gate)
		if err := <-second; err != nil {
			t.Errorf("second Tests() error = %v, want it to fetch itself", err)
		}
		want := []string{"hello_1.0-1.dsc", "hello_1.0-1.dsc", "hello_1.0-1.debian.tar.xz"}
		if diff := cmp.Diff(want, s.requests()); diff != "" {
			t.Errorf("requests (-want +got):\n%s", diff)
		}
	})
}

func TestFileURL(t *testing.T) {
	tests := []struct {
		archive, dir, name string
		want               string
	}{
		{"http://deb.debian.org/debian", "pool/main/h/hello", "hello_2.10-3.dsc", "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.dsc"},
		{"https://deb.example.org/debian/", "pool/main/libx/libxml++2.6", "libxml++2.6_2.40.1~rc1.orig.tar.xz",
			"https://deb.example.org/debian/pool/main/libx/libxml++2.6/libxml++2.6_2.40.1~rc1.orig.tar.xz"},
		{"http://mirror.test:8080/a%20b", "pool/x%y", "50%:off #1?.dsc", "http://mirror.test:8080/a%20b/pool/x%25y/50%25:off%20%231%3F.dsc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := archive.Source{Package: "hello", Version: "1.0", Directory: tt.dir, Files: []archive.File{{Name: "hello_1.0.dsc"}}}
			if got := mustJob(t, tt.archive, src).fileURL(tt.name); got != tt.want {
				t.Errorf("fileURL(%s, %s, %s) = %s, want %s", tt.archive, tt.dir, tt.name, got, tt.want)
			}
		})
	}
}

func TestDscFormat(t *testing.T) {
	tests := []struct {
		name    string
		dsc     string
		want    string
		wantErr bool
	}{
		{"plain", "Format: 3.0 (quilt)\nSource: hello\n", "3.0 (quilt)", false},
		{"no format", "Source: hello\n", "1.0", false},
		{"extra spaces", "Format:   3.0   (native)  \n", "3.0 (native)", false},
		{
			"clearsigned",
			"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nFormat: 3.0 (quilt)\nSource: hello\n\n- -dash\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n",
			"3.0 (quilt)", false,
		},
		{"clearsigned with CRLF", "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA512\r\n\r\nFormat: 1.0\r\n-----BEGIN PGP SIGNATURE-----\r\n", "1.0", false},
		{"clearsigned without signature", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nFormat: 1.0\n", "", true},
		{"clearsigned with an unescaped dash", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nFormat: 1.0\n-x\n-----BEGIN PGP SIGNATURE-----\n", "", true},
		{"clearsigned without headers end", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n", "", true},
		{"not deb822", "no colon here\n", "", true},
		{"empty", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dscFormat([]byte(tt.dsc))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("dscFormat(%q) = %q, %v; want %q, error %v", tt.dsc, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
