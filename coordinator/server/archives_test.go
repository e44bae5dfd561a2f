package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/dispatch"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/rules"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
)

func TestFileState(t *testing.T) {
	s := fileState{dir: filepath.Join(t.TempDir(), ArchiveStateDir)}
	if v, err := s.Load(t.Context(), "debian/bookworm"); v != nil || err != nil {
		t.Fatalf("Load(never saved) = %q, %v; want nothing", v, err)
	}
	for _, v := range []string{"first", "second"} {
		if err := s.Save(t.Context(), "debian/bookworm", []byte(v)); err != nil {
			t.Fatalf("Save = %v", err)
		}
		if got, err := s.Load(t.Context(), "debian/bookworm"); string(got) != v || err != nil {
			t.Errorf("Load = %q, %v; want %q", got, err, v)
		}
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("state directory holds %d entries (%v), want one file and no temporary files", len(entries), err)
	}
}

// TestWatchArchives serves a tiny archive and checks that the watcher the
// coordinator starts polls it and keeps its state in the data directory.
func TestWatchArchives(t *testing.T) {
	sources := "Package: hello\nVersion: 2.10-3\nBinary: hello\nArchitecture: any\nTestsuite: autopkgtest\n\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(sources))
	zw.Close()
	sum := sha256.Sum256(gz.Bytes())
	release := fmt.Sprintf("Origin: Test\nSuite: stable\nCodename: bookworm\nDate: %s\nArchitectures: amd64\nComponents: main\nSHA256:\n %s %d main/source/Sources.gz\n",
		time.Now().UTC().Format(time.RFC1123), hex.EncodeToString(sum[:]), gz.Len())
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch r.URL.Path {
		case "/dists/bookworm/Release":
			w.Write([]byte(release))
		case "/dists/bookworm/main/source/Sources.gz":
			w.Write(gz.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	data := t.TempDir()
	cfg := archive.Config{Name: "test", URL: srv.URL, Suites: []string{"bookworm"}, Components: []string{"main"}}
	ctx, cancel := context.WithCancel(t.Context())
	a, err := newArchives(ctx, data, []archive.Config{cfg}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("newArchives = %v", err)
	}
	if _, err := a.Triggered(ctx, "hello"); !errors.Is(err, rules.ErrTriggered) {
		t.Errorf("Triggered before any poll = %v, want %v", err, rules.ErrTriggered)
	}
	db := sqlite.NewTemp(t)
	wait := a.run(ctx, dispatch.New(dispatch.Config{Store: db, Intake: intake.New(intake.Config{Store: db}), Snapshots: a.snapshots}))
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, _ := os.ReadDir(filepath.Join(data, ArchiveStateDir))
		if len(entries) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			wait()
			t.Fatalf("no archive state saved after 30s (%d requests served)", requests.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wait()
	got, err := a.Triggered(t.Context(), "hello")
	if err != nil || len(got) != 1 || got[0] != "hello" {
		t.Errorf("Triggered(hello) after a poll = %v, %v; want [hello]", got, err)
	}
}
