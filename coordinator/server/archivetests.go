package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/testsctl"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// TestsControlDir is the directory under the data directory where the
// coordinator caches what debian/tests/control of archive packages says.
const TestsControlDir = "tests-control"

// Fetching the tests of archive packages.
const (
	// fetchQueue bounds the packages waiting to be fetched in the
	// background; more are dropped and asked for again later.
	fetchQueue = 1000
	// fetchWorkers is how many packages are fetched at once (testsctl
	// caps the downloads themselves at two).
	fetchWorkers = 2
	// retryFetch is how long a package whose fetch failed for a reason
	// that may pass (a mirror mid-update, a network error) is left alone.
	retryFetch = time.Hour
	// prefetchMax bounds the packages one decision waits for.
	prefetchMax = 200
)

// archiveTests tells intake which tests packages from the watched archives
// have, from the testsctl cache, and fetches the missing ones: in the
// background for requests that must be answered at once, and waiting for
// the policy's decisions, which run off the request path.
type archiveTests struct {
	a     *archives
	f     *testsctl.Fetcher
	log   *slog.Logger
	now   func() time.Time
	queue chan fetchReq

	mu sync.Mutex
	// queued are the keys waiting in queue; failed maps a key to when
	// it may be tried again (the zero time: never).
	queued map[string]bool
	failed map[string]time.Time
}

type fetchReq struct {
	url string
	src archive.Source
}

func key(src archive.Source) string { return src.Package + "_" + src.Version }

func newArchiveTests(dataDir string, a *archives, log *slog.Logger) *archiveTests {
	return &archiveTests{
		a:      a,
		f:      &testsctl.Fetcher{Dir: filepath.Join(dataDir, TestsControlDir)},
		log:    log,
		now:    time.Now,
		queue:  make(chan fetchReq, fetchQueue),
		queued: map[string]bool{},
		failed: map[string]time.Time{},
	}
}

// Tests implements intake.ArchiveTests.
func (t *archiveTests) Tests(_ context.Context, release, pkg, version string) ([]dep8.TestStanza, bool) {
	url, src, ok := t.a.source(release, pkg)
	if !ok || (version != "" && src.Version != version) {
		return nil, false
	}
	if tests, ok := t.f.Cached(url, src); ok {
		return tests, true
	}
	t.enqueue(url, src)
	return nil, false
}

// enqueue asks for src's tests to be fetched in the background, unless
// they are already asked for or failed lately.
func (t *archiveTests) enqueue(url string, src archive.Source) {
	k := key(src)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queued[k] || !t.mayTry(k) {
		return
	}
	select {
	case t.queue <- fetchReq{url: url, src: src}:
		t.queued[k] = true
	default:
	}
}

// mayTry reports whether k has not failed, or failed long enough ago.
// t.mu must be held.
func (t *archiveTests) mayTry(k string) bool {
	until, failed := t.failed[k]
	return !failed || (!until.IsZero() && t.now().After(until))
}

// Prefetch fetches, and waits for, the tests of the packages of release
// that are not cached yet, at most prefetchMax of them, until ctx ends.
func (t *archiveTests) Prefetch(ctx context.Context, release string, pkgs []string) {
	n := 0
	for _, pkg := range pkgs {
		if n == prefetchMax || ctx.Err() != nil {
			return
		}
		url, src, ok := t.a.source(release, pkg)
		if !ok {
			continue
		}
		if _, ok := t.f.Cached(url, src); ok {
			continue
		}
		t.mu.Lock()
		try := t.mayTry(key(src))
		t.mu.Unlock()
		if try {
			n++
			t.fetch(ctx, url, src)
		}
	}
}

// fetch reads src's tests into the cache, and remembers a failure.
func (t *archiveTests) fetch(ctx context.Context, url string, src archive.Source) {
	_, err := t.f.Tests(ctx, url, src)
	if err == nil || ctx.Err() != nil {
		return
	}
	var until time.Time
	if !testsctl.Permanent(err) {
		until = t.now().Add(retryFetch)
	}
	t.mu.Lock()
	t.failed[key(src)] = until
	t.mu.Unlock()
	t.log.Warn("cannot read the package's tests; its jobs are not split by capability", "package", src.Package,
		"version", src.Version, "err", err, "retry", !until.IsZero())
}

// run fetches what enqueue asked for until ctx ends, and returns a
// function that waits for the workers to stop.
func (t *archiveTests) run(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for range fetchWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case r := <-t.queue:
					t.fetch(ctx, r.url, r.src)
					t.mu.Lock()
					delete(t.queued, key(r.src))
					t.mu.Unlock()
				}
			}
		})
	}
	return wg.Wait
}
