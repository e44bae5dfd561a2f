package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// StateStore keeps the watcher's state between runs. Keys are short ASCII
// strings; values are opaque bytes of at most a few MiB.
type StateStore interface {
	// Load returns what Save stored under key, or nil and no error when
	// nothing was.
	Load(ctx context.Context, key string) ([]byte, error)
	Save(ctx context.Context, key string, value []byte) error
}

// Limits bound what the watcher downloads and decodes. Zero fields take
// the defaults.
type Limits struct {
	MaxRelease      int64 // InRelease, Release, Release.gpg: 32 MiB
	MaxCompressed   int64 // one Sources.xz or .gz: 256 MiB
	MaxDecompressed int64 // one decompressed Sources: 512 MiB
	MaxXZDict       int64 // xz dictionary per block: 64 MiB (xz -9 uses 64)
	Parse           ParseLimits
}

func (l Limits) orDefault() Limits {
	l.MaxRelease = cmp.Or(l.MaxRelease, 32<<20)
	l.MaxCompressed = cmp.Or(l.MaxCompressed, 256<<20)
	l.MaxDecompressed = cmp.Or(l.MaxDecompressed, 512<<20)
	l.MaxXZDict = cmp.Or(l.MaxXZDict, 64<<20)
	l.Parse = l.Parse.orDefault()
	return l
}

// Options are a Watcher's collaborators. Zero fields take defaults.
type Options struct {
	// Client makes every request (default: a client with a 10 minute
	// timeout per request).
	Client *http.Client
	// Verifier checks signatures. Default: GPGV with Config.Keyring when
	// it is set, none otherwise.
	Verifier Verifier
	// Store persists state; nil keeps it in memory only.
	Store StateStore
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives Run's errors and Poll's progress (default
	// slog.Default()).
	Logger *slog.Logger
	Limits Limits
	// ReportInitial makes the first snapshot of a component that has no
	// earlier one report every source as a Change; by default that first
	// snapshot is a silent baseline.
	ReportInitial bool
	// UserAgent is sent with every request (default "sparegrid-archive").
	UserAgent string
}

// Watcher polls the suites and components of one archive. Its methods are
// safe for concurrent use; polls never overlap.
type Watcher struct {
	cfg  Config
	opts Options

	poll sync.Mutex // held for a whole Poll

	mu    sync.RWMutex
	snaps map[Key]Snapshot
	valid map[string]validators // committed validators by URL
}

// New returns a Watcher for cfg, which must be valid.
func New(cfg Config, opts Options) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Minute}
	}
	if opts.Verifier == nil && cfg.Keyring != "" {
		opts.Verifier = GPGV{Keyring: cfg.Keyring}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Logger = opts.Logger.With("archive", cfg.Name)
	opts.Limits = opts.Limits.orDefault()
	opts.UserAgent = cmp.Or(opts.UserAgent, "sparegrid-archive")
	return &Watcher{
		cfg:   cfg,
		opts:  opts,
		snaps: make(map[Key]Snapshot),
		valid: make(map[string]validators),
	}, nil
}

// Config returns the watcher's configuration.
func (w *Watcher) Config() Config { return w.cfg }

// Snapshot returns the latest snapshot of suite and component.
func (w *Watcher) Snapshot(suite, component string) (Snapshot, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	s, ok := w.snaps[Key{w.cfg.Name, suite, component}]
	return s, ok
}

// Source returns the newest version of the source called name in any
// configured component of suite, with the archive's configuration (whose
// URL its Directory is relative to). A version held by two components
// comes from the one listed first.
func (w *Watcher) Source(suite, name string) (Source, Config, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var (
		best  Source
		found bool
	)
	for _, comp := range w.cfg.Components {
		s, ok := w.snaps[w.key(suite, comp)].Source(name)
		if ok && (!found || CompareVersions(s.Version, best.Version) > 0) {
			best, found = s, true
		}
	}
	return best, w.cfg, found
}

// Snapshots returns every latest snapshot, sorted by suite and component.
func (w *Watcher) Snapshots() []Snapshot {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]Snapshot, 0, len(w.snaps))
	for _, s := range w.snaps {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Snapshot) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out
}

// Poll does one round over every suite and component. It returns the
// Changes of every component that succeeded, and the errors of the others
// joined; a failed component keeps its previous snapshot.
func (w *Watcher) Poll(ctx context.Context) ([]Change, error) {
	w.poll.Lock()
	defer w.poll.Unlock()
	var (
		changes []Change
		errs    []error
	)
	for _, suite := range w.cfg.Suites {
		ch, dirty, err := w.pollSuite(ctx, suite)
		changes = append(changes, ch...)
		if err != nil {
			errs = append(errs, fmt.Errorf("archive %s suite %s: %w", w.cfg.Name, suite, err))
		}
		if dirty && w.opts.Store != nil {
			if err := w.save(ctx, suite); err != nil {
				errs = append(errs, fmt.Errorf("archive %s suite %s: saving state: %w", w.cfg.Name, suite, err))
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return changes, errors.Join(errs...)
}

func (w *Watcher) key(suite, component string) Key {
	return Key{Archive: w.cfg.Name, Suite: suite, Component: component}
}

// fetchedRelease is a Release that passed verification, with the
// validators to remember once the whole suite has been read.
type fetchedRelease struct {
	Release
	verified bool
	commit   map[string]validators
}

func (w *Watcher) pollSuite(ctx context.Context, suite string) (changes []Change, dirty bool, err error) {
	w.mu.RLock()
	complete := true
	for _, c := range w.cfg.Components {
		if _, ok := w.snaps[w.key(suite, c)]; !ok {
			complete = false
		}
	}
	w.mu.RUnlock()

	base := w.cfg.suiteURL(suite)
	rel, notModified, err := w.fetchRelease(ctx, base, complete)
	if err != nil {
		return nil, false, err
	}
	if notModified {
		w.opts.Logger.Debug("archive: release not modified", "suite", suite)
		return nil, false, nil
	}
	if !rel.MatchesSuite(suite) {
		return nil, false, fmt.Errorf("%w: asked for %q, Release says Suite %q Codename %q", ErrSuiteMismatch, suite, rel.Suite, rel.Codename)
	}
	if now := w.opts.Now(); !rel.ValidUntil.IsZero() && now.After(rel.ValidUntil) {
		return nil, false, fmt.Errorf("%w: Valid-Until %s", ErrExpired, rel.ValidUntil.Format(time.RFC3339))
	}
	var errs []error
	for _, comp := range w.cfg.Components {
		ch, changed, err := w.pollComponent(ctx, w.key(suite, comp), base, rel)
		if err != nil {
			errs = append(errs, fmt.Errorf("component %s: %w", comp, err))
			continue
		}
		changes = append(changes, ch...)
		dirty = dirty || changed
	}
	if len(errs) == 0 {
		w.mu.Lock()
		for url, v := range rel.commit {
			if w.valid[url] != v {
				dirty = true
			}
			if v.empty() {
				delete(w.valid, url)
			} else {
				w.valid[url] = v
			}
		}
		w.mu.Unlock()
	}
	return changes, dirty, errors.Join(errs...)
}

// fetchRelease gets InRelease, or Release and Release.gpg when there is no
// InRelease, and verifies it when a Verifier is set. Conditional requests
// are made only when conditional is true (every component has a snapshot).
func (w *Watcher) fetchRelease(ctx context.Context, base string, conditional bool) (fetchedRelease, bool, error) {
	cond := func(url string) validators {
		if !conditional {
			return validators{}
		}
		w.mu.RLock()
		defer w.mu.RUnlock()
		return w.valid[url]
	}
	max := w.opts.Limits.MaxRelease
	var (
		fr   = fetchedRelease{verified: w.opts.Verifier != nil}
		text []byte
	)
	inURL := base + "InRelease"
	resp, err := w.get(ctx, inURL, cond(inURL), max)
	switch {
	case err == nil && resp.notModified:
		return fr, true, nil
	case err == nil:
		fr.commit = map[string]validators{inURL: resp.validators}
		if w.opts.Verifier != nil {
			if text, err = w.opts.Verifier.Clearsigned(ctx, resp.body); err != nil {
				return fr, false, fmt.Errorf("InRelease: %w", err)
			}
		} else if isClearsigned(resp.body) {
			if text, err = clearsignedBody(resp.body); err != nil {
				return fr, false, fmt.Errorf("InRelease: %w", err)
			}
		} else {
			text = resp.body
		}
	case errors.Is(err, ErrNotFound):
		relURL := base + "Release"
		resp, err := w.get(ctx, relURL, cond(relURL), max)
		if err != nil {
			return fr, false, err
		}
		if resp.notModified {
			return fr, true, nil
		}
		fr.commit = map[string]validators{relURL: resp.validators}
		text = resp.body
		if w.opts.Verifier != nil {
			sig, err := w.get(ctx, base+"Release.gpg", validators{}, max)
			if errors.Is(err, ErrNotFound) {
				return fr, false, fmt.Errorf("%w: no InRelease and no Release.gpg", ErrUnsigned)
			}
			if err != nil {
				return fr, false, err
			}
			if err := w.opts.Verifier.Detached(ctx, text, sig.body); err != nil {
				return fr, false, fmt.Errorf("Release.gpg: %w", err)
			}
		}
	default:
		return fr, false, err
	}
	fr.Release, err = ParseRelease(text)
	return fr, false, err
}

func (w *Watcher) pollComponent(ctx context.Context, key Key, base string, rel fetchedRelease) ([]Change, bool, error) {
	if len(rel.Components) > 0 && !slices.Contains(rel.Components, key.Component) {
		return nil, false, fmt.Errorf("%w: Release lists %s", ErrMissingComponent, strings.Join(rel.Components, " "))
	}
	var (
		path string
		fh   FileHash
		ok   bool
	)
	for _, ext := range []string{".xz", ".gz"} {
		path = key.Component + "/source/Sources" + ext
		if fh, ok = rel.SHA256[path]; ok {
			break
		}
	}
	if !ok {
		return nil, false, fmt.Errorf("%w: %s/source/Sources.xz or .gz", ErrNotInRelease, key.Component)
	}
	w.mu.RLock()
	prev, had := w.snaps[key]
	w.mu.RUnlock()
	if had && prev.SourcesSHA256 == fh.SHA256 {
		return nil, false, nil
	}
	lim := w.opts.Limits
	if fh.Size > lim.MaxCompressed {
		return nil, false, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, path, fh.Size, lim.MaxCompressed)
	}
	body, err := w.getFile(ctx, base, path, fh, rel.AcquireByHash)
	if err != nil {
		return nil, false, err
	}
	r, err := decompress(path, body, lim.MaxDecompressed, lim.MaxXZDict)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	sources, rejected, err := ParseSources(r, lim.Parse)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	if len(w.cfg.Architectures) > 0 {
		sources = slices.DeleteFunc(sources, func(s Source) bool {
			for _, a := range w.cfg.Architectures {
				if BuildsOn(s.Architecture, a) {
					return false
				}
			}
			return true
		})
	}
	snap := NewSnapshot(key, sources)
	snap.ReleaseDate = rel.Date
	snap.FetchedAt = w.opts.Now()
	snap.Verified = rel.verified
	snap.SourcesPath = path
	snap.SourcesSHA256 = fh.SHA256
	snap.Rejected = rejected
	var changes []Change
	if had || w.opts.ReportInitial {
		changes = Diff(prev, snap)
	}
	w.mu.Lock()
	w.snaps[key] = snap
	w.mu.Unlock()
	w.opts.Logger.Debug("archive: read sources", "key", key.String(), "sources", snap.Len(),
		"testable", snap.TestableCount(), "changes", len(changes), "verified", snap.Verified)
	return changes, true, nil
}

// getFile downloads path (by hash when the archive offers it, falling back
// to the plain name) and checks its size and sha256 against the Release.
func (w *Watcher) getFile(ctx context.Context, base, path string, fh FileHash, byHash bool) ([]byte, error) {
	url := base + path
	var (
		resp response
		err  error
	)
	if byHash {
		dir := path[:strings.LastIndexByte(path, '/')+1]
		resp, err = w.get(ctx, base+dir+"by-hash/SHA256/"+fh.SHA256, validators{}, fh.Size)
	}
	if !byHash || errors.Is(err, ErrNotFound) {
		resp, err = w.get(ctx, url, validators{}, fh.Size)
	}
	if errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("%w: %s is larger than the %d bytes the Release states", ErrSize, path, fh.Size)
	}
	if err != nil {
		return nil, err
	}
	if int64(len(resp.body)) != fh.Size {
		return nil, fmt.Errorf("%w: %s is %d bytes, Release says %d", ErrSize, path, len(resp.body), fh.Size)
	}
	if got := sha256Hex(resp.body); got != fh.SHA256 {
		return nil, fmt.Errorf("%w: %s has sha256 %s, Release says %s", ErrChecksum, path, got, fh.SHA256)
	}
	return resp.body, nil
}

// Run polls until ctx ends: every PollInterval after a good round, sooner
// and then ever later after failed ones (from min(PollInterval, 1m),
// doubling, up to 4×PollInterval), each wait ±10 % jitter. onChanges gets
// each non-empty batch of Changes, also from a round that partly failed.
// Errors are logged, never returned; Run returns ctx's error.
func (w *Watcher) Run(ctx context.Context, onChanges func([]Change)) error {
	log := w.opts.Logger
	failures := 0
	for {
		changes, err := w.Poll(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(changes) > 0 && onChanges != nil {
			onChanges(changes)
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		wait := jitter(w.nextWait(failures))
		if err != nil {
			log.Warn("archive: poll failed", "err", err, "failures", failures, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// nextWait is the pause after a round, given how many rounds in a row
// failed.
func (w *Watcher) nextWait(failures int) time.Duration {
	interval := w.cfg.interval()
	if failures == 0 {
		return interval
	}
	wait := min(interval, time.Minute)
	for i := 1; i < failures && wait < 4*interval; i++ {
		wait *= 2
	}
	return min(wait, 4*interval)
}

// jitter spreads d by ±10 %.
func jitter(d time.Duration) time.Duration {
	spread := int64(d) / 10
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread) + time.Duration(rand.Int64N(2*spread+1))
}
