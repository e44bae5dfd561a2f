package procgroup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// signalWriter closes ready the first time what was written to it
// contains marker.
type signalWriter struct {
	marker string
	ready  chan struct{}

	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
}

func newSignalWriter(marker string) *signalWriter {
	return &signalWriter{marker: marker, ready: make(chan struct{})}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

// processesWithArg returns the pids and command lines of processes with
// s somewhere in their command line.
func processesWithArg(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(s)) {
			found = append(found, e.Name()+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return found
}

// uniqueMarker returns a number of seconds for sleep(1) that no other
// test process is likely to use at the same time.
func uniqueMarker() string {
	return fmt.Sprintf("%d.%06d", 3000+os.Getpid()%1000, time.Now().UnixNano()%1000000)
}

func TestRunKillsWholeGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string
		cancel bool
	}{
		{"cancel, children exit on SIGTERM", "sleep %[1]s & sleep %[1]s & echo ready; wait", true},
		{"cancel, leader ignores SIGTERM", "trap '' TERM; sleep %[1]s & echo ready; while :; do sleep %[1]s; done", true},
		{"leader exits, straggler left behind", "sleep %[1]s & echo ready; exec 1>&- 2>&-", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := uniqueMarker()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			out := newSignalWriter("ready")
			cmd := exec.Command("sh", "-c", fmt.Sprintf(tt.script, marker))
			cmd.Stdout = out
			type result struct {
				cancelled bool
				err       error
			}
			resc := make(chan result, 1)
			go func() {
				c, err := Run(ctx, cmd, 100*time.Millisecond)
				resc <- result{c, err}
			}()
			if tt.cancel {
				select {
				case <-out.ready:
				case r := <-resc:
					t.Fatalf("Run returned before cancel: %+v", r)
				}
				if ps := processesWithArg(t, marker); len(ps) == 0 {
					t.Fatalf("no processes with marker %s before cancel", marker)
				}
				cancel()
			}
			r := <-resc
			if r.cancelled != tt.cancel {
				t.Errorf("Run cancelled = %v, want %v", r.cancelled, tt.cancel)
			}
			if tt.cancel && r.err == nil {
				t.Errorf("Run(cancelled) error = nil, want the signal the leader died of")
			}
			if ps := processesWithArg(t, marker); len(ps) != 0 {
				t.Errorf("processes left behind: %q", ps)
			}
		})
	}
}

func TestRunStartFailure(t *testing.T) {
	cmd := exec.Command(filepath.Join(t.TempDir(), "missing"))
	cancelled, err := Run(t.Context(), cmd, time.Second)
	if cancelled || err == nil {
		t.Errorf("Run(missing binary) = %v, %v, want false and an error", cancelled, err)
	}
}
