// Package testsctl owns learning the tests of a source package that comes
// from a watched archive: it downloads the package's .dsc and the one or
// two files that hold debian/tests/control, checks them against the
// Sources index, reads the tests with srcpkg and dep8, and caches the
// answer on disk per package and version.
//
// The contract:
//
//   - Fetcher.Tests returns the tests of an archive.Source, or nil for a
//     package without debian/tests/control (an autodep8-only package, say).
//     The answer, nil included, is cached as DIR/PACKAGE_VERSION.json,
//     written atomically and synced, and used again as long as the .dsc's
//     sha256 is the one the Sources index lists. Errors are never cached:
//     a caller that retries must limit how often.
//   - Only what srcpkg needs is downloaded, by the Format of the .dsc: the
//     debian tarball for 3.0 (quilt), the one tarball for 3.0 (native) and
//     native 1.0, the orig tarball and diff.gz for 1.0 with a diff. Each
//     file is refused unless its size and sha256 are those of the Sources
//     index, and none may exceed MaxFile. The files are streamed into a
//     temporary tar in DIR, .dsc first, which is removed afterwards.
//   - One download per package and version at a time (later callers wait
//     for its answer), and at most two downloads at once in all.
//   - Errors wrap ErrNoFiles, ErrChecksum, ErrTooLarge, ErrNotFound,
//     ErrHTTPStatus, ErrBadSource or ErrConfig, or are the context's or
//     the network's; Permanent says which ones fetching again cannot mend.
//
// It must not know about the store, the scheduler, the HTTP API or how
// tests are routed, and must not verify signatures: the Sources index it
// is given is trusted as far as the archive watcher verified it.
package testsctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/srcpkg"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Errors.
var (
	ErrConfig     = errors.New("testsctl: bad configuration")
	ErrNoFiles    = errors.New("testsctl: the Sources index lists no directory or .dsc for the source")
	ErrChecksum   = errors.New("testsctl: file differs from the Sources index")
	ErrTooLarge   = errors.New("testsctl: over a size limit")
	ErrNotFound   = errors.New("testsctl: file not found in the archive")
	ErrHTTPStatus = errors.New("testsctl: unexpected HTTP status")
	ErrBadSource  = errors.New("testsctl: cannot read the source package")
)

// Permanent reports whether err is one that fetching the same version
// again will not change: no files listed, a file over a limit, or a
// source package or tests control that cannot be read. A checksum
// mismatch, a missing file or an HTTP error may be a mirror in the middle
// of an update, and is not.
func Permanent(err error) bool {
	return errors.Is(err, ErrNoFiles) || errors.Is(err, ErrTooLarge) ||
		errors.Is(err, ErrBadSource) || errors.Is(err, ErrConfig)
}

// DefaultMaxFile is the default of Fetcher.MaxFile.
const DefaultMaxFile = 64 << 20

// maxDownloads bounds the fetches running at once.
const maxDownloads = 2

// Fetcher reads the tests of archive packages. Set its fields before the
// first call and do not copy it afterwards; its methods are safe for
// concurrent use.
type Fetcher struct {
	// Client makes the requests (default: a client with a 10 minute
	// timeout).
	Client *http.Client
	// Dir holds the cache and the temporary files of downloads; it is
	// created when missing. Required.
	Dir string
	// Limits bound what srcpkg reads from the downloaded files.
	Limits srcpkg.Limits
	// MaxFile bounds each downloaded file (default DefaultMaxFile).
	MaxFile int64
	// Now is the clock recorded in cache entries (default time.Now).
	Now func() time.Time

	mu       sync.Mutex
	inflight map[string]*call
	sem      chan struct{}
}

// call is one fetch that later callers for the same key wait for.
type call struct {
	done  chan struct{}
	tests []dep8.TestStanza
	err   error
	// abandoned is set when the caller that fetched had its context end.
	abandoned bool
}

// Tests returns the tests that debian/tests/control of src declares, nil
// when it has none. archiveURL is the archive root that src.Directory is
// relative to. The returned slice is shared with other callers: do not
// modify it.
func (f *Fetcher) Tests(ctx context.Context, archiveURL string, src archive.Source) ([]dep8.TestStanza, error) {
	if f.Dir == "" {
		return nil, fmt.Errorf("%w: no cache directory", ErrConfig)
	}
	job, err := newJob(archiveURL, src)
	if err != nil {
		return nil, err
	}
	for {
		if e, ok := f.load(job); ok {
			return e.Tests, nil
		}
		c, leader := f.join(job.key)
		if leader {
			c.tests, c.err = f.lead(ctx, job)
			c.abandoned = c.err != nil && ctx.Err() != nil
			f.finish(job.key, c)
			return c.tests, c.err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
		}
		if !c.abandoned {
			return c.tests, c.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// join returns the call fetching key and whether the caller must make it.
func (f *Fetcher) join(key string) (*call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.inflight[key]; ok {
		return c, false
	}
	if f.inflight == nil {
		f.inflight = make(map[string]*call)
		f.sem = make(chan struct{}, maxDownloads)
		f.removeLeftovers()
	}
	c := &call{done: make(chan struct{})}
	f.inflight[key] = c
	return c, true
}

func (f *Fetcher) finish(key string, c *call) {
	f.mu.Lock()
	delete(f.inflight, key)
	f.mu.Unlock()
	close(c.done)
}

// lead fetches for job unless an entry was cached since the caller
// looked, then caches the answer.
func (f *Fetcher) lead(ctx context.Context, j job) ([]dep8.TestStanza, error) {
	if e, ok := f.load(j); ok {
		return e.Tests, nil
	}
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-f.sem }()
	ctl, err := f.fetch(ctx, j)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", j.src.Package, j.src.Version, err)
	}
	tests, err := ctl.Tests()
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %s: %w", ErrBadSource, j.src.Package, j.src.Version, ctl.Path, err)
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	e := entry{
		Format:    entryFormat,
		Package:   j.src.Package,
		Version:   j.src.Version,
		DscSHA256: j.dsc.SHA256,
		FetchedAt: now().UTC(),
		Path:      ctl.Path,
		Tests:     tests,
	}
	if err := f.store(j, e); err != nil {
		return nil, fmt.Errorf("testsctl: caching %s %s: %w", j.src.Package, j.src.Version, err)
	}
	return tests, nil
}

// job is one source to fetch, checked.
type job struct {
	src  archive.Source
	base *url.URL // the source's directory
	dsc  archive.File
	key  string // PACKAGE_VERSION
}

func newJob(archiveURL string, src archive.Source) (job, error) {
	u, err := url.Parse(archiveURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return job{}, fmt.Errorf("%w: archive URL %q is not an http or https URL without query", ErrConfig, archiveURL)
	}
	if !validPackageName(src.Package) {
		return job{}, fmt.Errorf("%w: bad package name %q", ErrBadSource, src.Package)
	}
	if _, err := archive.ParseVersion(src.Version); err != nil {
		return job{}, fmt.Errorf("%w: %s: %w", ErrBadSource, src.Package, err)
	}
	if src.Directory == "" || len(src.Files) == 0 {
		return job{}, fmt.Errorf("%w: %s %s", ErrNoFiles, src.Package, src.Version)
	}
	if strings.HasPrefix(src.Directory, "/") || strings.Contains(src.Directory, "..") {
		return job{}, fmt.Errorf("%w: %s: directory %q leaves the archive", ErrBadSource, src.Package, src.Directory)
	}
	var segs []string
	for seg := range strings.SplitSeq(src.Directory, "/") {
		segs = append(segs, url.PathEscape(seg))
	}
	j := job{src: src, base: u.JoinPath(segs...), key: src.Package + "_" + src.Version}
	n := 0
	for _, file := range src.Files {
		if file.Name == "" || strings.ContainsAny(file.Name, "/\\") || strings.Contains(file.Name, "..") {
			return job{}, fmt.Errorf("%w: %s: unsafe file name %q", ErrBadSource, src.Package, file.Name)
		}
		if strings.HasSuffix(file.Name, ".dsc") {
			j.dsc = file
			n++
		}
	}
	if n != 1 {
		return job{}, fmt.Errorf("%w: %s %s lists %d .dsc files, want 1", ErrNoFiles, src.Package, src.Version, n)
	}
	return j, nil
}

// validPackageName follows Debian Policy 5.6.1.
func validPackageName(s string) bool {
	if len(s) < 2 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
		if !alnum && (i == 0 || (c != '+' && c != '-' && c != '.')) {
			return false
		}
	}
	return true
}

// entryFormat is the layout of cache entries; an entry of another is
// ignored and replaced.
const entryFormat = 1

// maxEntry bounds a cache file read back (5000 tests with long fields).
const maxEntry = 32 << 20

// entry is one cached answer.
type entry struct {
	Format    int       `json:"format"`
	Package   string    `json:"package"`
	Version   string    `json:"version"`
	DscSHA256 string    `json:"dsc_sha256"`
	FetchedAt time.Time `json:"fetched_at"`
	// Path is where the tests control came from, empty when the package
	// has none.
	Path  string            `json:"path,omitempty"`
	Tests []dep8.TestStanza `json:"tests"`
}

func (f *Fetcher) entryPath(key string) string {
	return filepath.Join(f.Dir, key+".json")
}

// load returns the cached entry of j when there is a sound one for the
// same .dsc. Anything else is a miss: the fetch that follows replaces it.
func (f *Fetcher) load(j job) (entry, bool) {
	file, err := os.Open(f.entryPath(j.key))
	if err != nil {
		return entry{}, false
	}
	defer file.Close()
	var e entry
	if err := json.NewDecoder(io.LimitReader(file, maxEntry)).Decode(&e); err != nil {
		return entry{}, false
	}
	ok := e.Format == entryFormat && e.Package == j.src.Package && e.Version == j.src.Version && e.DscSHA256 == j.dsc.SHA256
	return e, ok
}

// store writes e atomically: a synced temporary file renamed over the
// entry, then the directory synced.
func (f *Fetcher) store(j job, e entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.Dir, tempPrefix+"*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.entryPath(j.key)); err != nil {
		return err
	}
	dir, err := os.Open(f.Dir)
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// tempPrefix starts the names of temporary files in Dir.
const tempPrefix = ".tmp-"

// removeLeftovers deletes temporary files a crashed process left in Dir.
// It runs once, before the first fetch.
func (f *Fetcher) removeLeftovers() {
	matches, _ := filepath.Glob(filepath.Join(f.Dir, tempPrefix+"*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

// Cached returns the tests of src when an answer for it is cached, and
// whether one is; it never downloads. The returned slice is shared: do
// not modify it.
func (f *Fetcher) Cached(archiveURL string, src archive.Source) ([]dep8.TestStanza, bool) {
	if f.Dir == "" {
		return nil, false
	}
	j, err := newJob(archiveURL, src)
	if err != nil {
		return nil, false
	}
	e, ok := f.load(j)
	return e.Tests, ok
}
