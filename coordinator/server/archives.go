package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sparegrid/sparegrid/coordinator/archive"
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

// watchArchives starts a watcher for each configured archive and returns
// a function that waits for them to stop after ctx ends. Changes are
// logged; turning them into test requests is the selection policy's work
// (docs/scheduling.md says what is wired).
func watchArchives(ctx context.Context, dataDir string, cfgs []archive.Config, log *slog.Logger) (wait func(), err error) {
	var wg sync.WaitGroup
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
		wg.Go(func() {
			w.Run(ctx, func(changes []archive.Change) {
				testable := 0
				for _, c := range changes {
					if c.Testable {
						testable++
					}
				}
				alog.Info("archive changed", "sources", len(changes), "testable", testable)
			})
		})
		alog.Info("watching archive", "url", cfg.URL, "suites", cfg.Suites, "components", cfg.Components)
	}
	return wg.Wait, nil
}
