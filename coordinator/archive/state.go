package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// stateVersion is the format of saved state; bump it when the layout
// changes (older state is then ignored, not misread).
const stateVersion = 1

// savedSuite is what Save stores per suite, as gzip-compressed JSON.
type savedSuite struct {
	Version    int                      `json:"version"`
	Archive    string                   `json:"archive"`
	Suite      string                   `json:"suite"`
	Validators map[string]validators    `json:"validators,omitempty"`
	Components map[string]savedSnapshot `json:"components,omitempty"`
}

type savedSnapshot struct {
	ReleaseDate   time.Time     `json:"release_date"`
	FetchedAt     time.Time     `json:"fetched_at"`
	Verified      bool          `json:"verified"`
	SourcesPath   string        `json:"sources_path"`
	SourcesSHA256 string        `json:"sources_sha256"`
	Rejected      int           `json:"rejected,omitempty"`
	Sources       []savedSource `json:"sources"`
}

type savedSource struct {
	Package   string   `json:"p"`
	Version   string   `json:"v"`
	Binaries  []string `json:"b,omitempty"`
	Testsuite []string `json:"t,omitempty"`
	Triggers  []string `json:"tt,omitempty"`
	Arch      []string `json:"a,omitempty"`
	Directory string   `json:"d,omitempty"`
	// Files are Checksums-Sha256 lines, "sha256 size name".
	Files []string `json:"f,omitempty"`
}

func saveSource(s Source) savedSource {
	ss := savedSource{
		Package:   s.Package,
		Version:   s.Version,
		Binaries:  s.Binaries,
		Testsuite: s.Testsuite,
		Triggers:  s.TestsuiteTriggers,
		Arch:      s.Architecture,
		Directory: s.Directory,
	}
	for _, f := range s.Files {
		ss.Files = append(ss.Files, f.SHA256+" "+strconv.FormatInt(f.Size, 10)+" "+f.Name)
	}
	return ss
}

// restoreSource checks a saved source as strictly as ParseSources would
// have read it.
func restoreSource(ss savedSource) (Source, error) {
	if !validPackageName(ss.Package) {
		return Source{}, fmt.Errorf("%w: bad source name %q", ErrState, ss.Package)
	}
	if _, err := ParseVersion(ss.Version); err != nil {
		return Source{}, fmt.Errorf("%w: %w", ErrState, err)
	}
	if ss.Directory != "" && !validDirectory(ss.Directory) {
		return Source{}, fmt.Errorf("%w: %s: bad directory %q", ErrState, ss.Package, ss.Directory)
	}
	files, ok := parseChecksums(strings.Join(ss.Files, "\n"))
	if !ok {
		return Source{}, fmt.Errorf("%w: %s: bad file list", ErrState, ss.Package)
	}
	return Source{
		Package:           ss.Package,
		Version:           ss.Version,
		Binaries:          ss.Binaries,
		Testsuite:         ss.Testsuite,
		TestsuiteTriggers: ss.Triggers,
		Architecture:      ss.Arch,
		Directory:         ss.Directory,
		Files:             files,
	}, nil
}

// StateKey is the StateStore key under which a suite's state is saved.
func StateKey(archive, suite string) string {
	return "archive/" + archive + "/" + suite
}

func (w *Watcher) save(ctx context.Context, suite string) error {
	st := savedSuite{
		Version:    stateVersion,
		Archive:    w.cfg.Name,
		Suite:      suite,
		Validators: make(map[string]validators),
		Components: make(map[string]savedSnapshot),
	}
	prefix := w.cfg.suiteURL(suite)
	w.mu.RLock()
	for url, v := range w.valid {
		if strings.HasPrefix(url, prefix) {
			st.Validators[url] = v
		}
	}
	for _, comp := range w.cfg.Components {
		snap, ok := w.snaps[w.key(suite, comp)]
		if !ok {
			continue
		}
		ss := savedSnapshot{
			ReleaseDate:   snap.ReleaseDate,
			FetchedAt:     snap.FetchedAt,
			Verified:      snap.Verified,
			SourcesPath:   snap.SourcesPath,
			SourcesSHA256: snap.SourcesSHA256,
			Rejected:      snap.Rejected,
		}
		for _, s := range snap.Sources() {
			ss.Sources = append(ss.Sources, saveSource(s))
		}
		st.Components[comp] = ss
	}
	w.mu.RUnlock()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(st); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return w.opts.Store.Save(ctx, StateKey(w.cfg.Name, suite), buf.Bytes())
}

// Restore loads the state saved for every configured suite, so the next
// Poll makes conditional requests and reports Changes against the restored
// snapshots. Components no longer configured are dropped. It must be
// called before the first Poll; without a Store it does nothing.
func (w *Watcher) Restore(ctx context.Context) error {
	if w.opts.Store == nil {
		return nil
	}
	w.poll.Lock()
	defer w.poll.Unlock()
	for _, suite := range w.cfg.Suites {
		data, err := w.opts.Store.Load(ctx, StateKey(w.cfg.Name, suite))
		if err != nil {
			return fmt.Errorf("archive %s suite %s: loading state: %w", w.cfg.Name, suite, err)
		}
		if data == nil {
			continue
		}
		st, err := decodeState(data, w.opts.Limits.MaxDecompressed)
		if err != nil {
			return fmt.Errorf("archive %s suite %s: %w", w.cfg.Name, suite, err)
		}
		if st.Version != stateVersion {
			w.opts.Logger.Info("archive: ignoring saved state of another format", "suite", suite, "version", st.Version)
			continue
		}
		if st.Archive != w.cfg.Name || st.Suite != suite {
			return fmt.Errorf("%w: key for %s/%s holds %s/%s", ErrState, w.cfg.Name, suite, st.Archive, st.Suite)
		}
		snaps := make(map[Key]Snapshot)
		for comp, ss := range st.Components {
			key := w.key(suite, comp)
			sources := make([]Source, 0, len(ss.Sources))
			for _, s := range ss.Sources {
				src, err := restoreSource(s)
				if err != nil {
					return err
				}
				sources = append(sources, src)
			}
			snap := NewSnapshot(key, sources)
			snap.ReleaseDate = ss.ReleaseDate
			snap.FetchedAt = ss.FetchedAt
			snap.Verified = ss.Verified
			snap.SourcesPath = ss.SourcesPath
			snap.SourcesSHA256 = ss.SourcesSHA256
			snap.Rejected = ss.Rejected
			snaps[key] = snap
		}
		prefix := w.cfg.suiteURL(suite)
		w.mu.Lock()
		for _, comp := range w.cfg.Components {
			if snap, ok := snaps[w.key(suite, comp)]; ok {
				w.snaps[snap.Key] = snap
			}
		}
		for url, v := range st.Validators {
			if strings.HasPrefix(url, prefix) {
				w.valid[url] = v
			}
		}
		w.mu.Unlock()
	}
	return nil
}

// decodeState reads saved state, refusing more than max decompressed bytes.
func decodeState(data []byte, max int64) (savedSuite, error) {
	var st savedSuite
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrState, err)
	}
	dec := json.NewDecoder(&boundedReader{r: zr, left: max})
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("%w: %w", ErrState, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return st, fmt.Errorf("%w: trailing data", ErrState)
	}
	return st, nil
}
