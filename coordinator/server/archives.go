package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/dispatch"
	"github.com/sparegrid/sparegrid/coordinator/rules"
)

// ArchiveStateDir is the directory under the data directory where the
// archive watchers keep what they saw, so a restart neither refetches
// unchanged indices nor reports the whole archive as new.
const ArchiveStateDir = "archive-state"

// fileState is an archive.StateStore of one file per key, replaced
// atomically and synced.
type fileState struct{ dir string }

func (s fileState) path(key string) string {
	return filepath.Join(s.dir, strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(key))
}

// Load implements archive.StateStore.
func (s fileState) Load(_ context.Context, key string) ([]byte, error) {
	b, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Save implements archive.StateStore.
func (s fileState) Save(_ context.Context, key string, v []byte) error {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(v); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), s.path(key))
}

// archives are the watchers of the configured archives.
type archives struct {
	watchers []*archive.Watcher
	logs     []*slog.Logger
}

// newArchives makes a watcher for each configured archive, with its saved
// state restored from the data directory.
func newArchives(ctx context.Context, dataDir string, cfgs []archive.Config, log *slog.Logger) (*archives, error) {
	a := &archives{}
	state := fileState{dir: filepath.Join(dataDir, ArchiveStateDir)}
	for _, cfg := range cfgs {
		alog := log.With("archive", cfg.Name)
		w, err := archive.New(cfg, archive.Options{Store: state, Logger: alog})
		if err != nil {
			return nil, fmt.Errorf("server: archive %q: %w", cfg.Name, err)
		}
		if err := w.Restore(ctx); err != nil {
			alog.Warn("cannot restore the archive's saved state; starting afresh", "err", err)
		}
		a.watchers = append(a.watchers, w)
		a.logs = append(a.logs, alog)
	}
	return a, nil
}

// run polls every archive until ctx ends, handing what changed to the
// dispatcher, and returns a function that waits for them to stop.
func (a *archives) run(ctx context.Context, d *dispatch.Dispatcher) (wait func()) {
	var wg sync.WaitGroup
	for i, w := range a.watchers {
		alog := a.logs[i]
		wg.Go(func() {
			w.Run(ctx, func(changes []archive.Change) {
				testable := 0
				for _, c := range changes {
					if c.Testable {
						testable++
					}
				}
				alog.Info("archive changed", "sources", len(changes), "testable", testable)
				if _, err := d.Changes(ctx, changes); err != nil && ctx.Err() == nil {
					alog.Error("cannot schedule the archive's changes", "err", err)
				}
			})
		})
		cfg := w.Config()
		alog.Info("watching archive", "url", cfg.URL, "suites", cfg.Suites, "components", cfg.Components)
	}
	return wg.Wait
}

// errNoSnapshot means no archive has been read yet, so reverse
// dependencies are unknown.
var errNoSnapshot = errors.New("no archive has been read yet")

// Triggered implements rules.ReverseDeps from the latest snapshots of
// every archive: the testable sources whose tests a new version of source
// should run, in any suite and component.
func (a *archives) Triggered(_ context.Context, source string) ([]string, error) {
	var out []string
	read := false
	for _, w := range a.watchers {
		for _, s := range w.Snapshots() {
			read = true
			out = append(out, s.Triggered(source)...)
		}
	}
	if !read {
		return nil, fmt.Errorf("%w: %w", rules.ErrTriggered, errNoSnapshot)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// snapshots returns the latest snapshot of every archive's suites and
// components.
func (a *archives) snapshots() []archive.Snapshot {
	var out []archive.Snapshot
	for _, w := range a.watchers {
		out = append(out, w.Snapshots()...)
	}
	return out
}

// architectures maps each watched suite to the architectures its archive
// is configured with.
func (a *archives) architectures() map[string][]string {
	out := map[string][]string{}
	for _, w := range a.watchers {
		cfg := w.Config()
		for _, s := range cfg.Suites {
			out[s] = append(out[s], cfg.Architectures...)
		}
	}
	return out
}

// aptSources maps each suite to the apt source lines of the archives that
// add themselves to testbeds (archive.Config.TestbedSource).
func (a *archives) aptSources() map[string][]string {
	out := map[string][]string{}
	for _, w := range a.watchers {
		cfg := w.Config()
		for _, s := range cfg.Suites {
			out[s] = append(out[s], cfg.AptSources(s)...)
		}
	}
	return out
}

// source returns the newest version of the source called name in the
// suite release of the watched archives, and the URL of its archive.
func (a *archives) source(release, name string) (string, archive.Source, bool) {
	var best archive.Source
	var url string
	found := false
	for _, w := range a.watchers {
		src, cfg, ok := w.Source(release, name)
		if ok && (!found || archive.CompareVersions(src.Version, best.Version) > 0) {
			best, url, found = src, cfg.URL, true
		}
	}
	return url, best, found
}
