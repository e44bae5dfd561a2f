package procgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/agent/internal/proctest"
)

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
			marker := proctest.SleepArg()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			out := proctest.NewOutput("ready")
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
				case <-out.Ready():
				case r := <-resc:
					t.Fatalf("Run returned before cancel: %+v", r)
				}
				if ps := proctest.Processes(t, proctest.ArgContains(marker)); len(ps) == 0 {
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
			proctest.WaitGone(t, proctest.ArgContains(marker))
		})
	}
}

// TestStragglerGetsToCleanUp checks that what outlives the leader gets
// SIGTERM first, and time to act on it (a virt server tearing its testbed
// down), before anything is killed.
func TestStragglerGetsToCleanUp(t *testing.T) {
	marker := proctest.SleepArg()
	dir := t.TempDir()
	done := filepath.Join(dir, "cleaned-up")
	armed := filepath.Join(dir, "armed")
	// The leader exits once the straggler has set its trap; the straggler
	// has no background child, which could miss a signal while forking.
	script := fmt.Sprintf(`sh -c ': %[1]s; trap "touch %[2]s; exit 0" TERM; touch %[3]s; while :; do sleep 0.05; done' & while [ ! -e %[3]s ]; do sleep 0.01; done; exec 1>&- 2>&-`, marker, done, armed)
	cmd := exec.Command("sh", "-c", script)
	if _, err := Run(t.Context(), cmd, 5*time.Second); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := os.Stat(done); err != nil {
		t.Errorf("the straggler did not get to clean up: %v", err)
	}
	proctest.WaitGone(t, proctest.ArgContains(marker))
}

// TestCancelledStragglerGetsOneSIGTERM checks that a cancelled run's
// stragglers are not sent SIGTERM a second time once the leader has
// gone: our virt server takes a second signal as "exit without cleaning
// up".
func TestCancelledStragglerGetsOneSIGTERM(t *testing.T) {
	marker := proctest.SleepArg()
	dir := t.TempDir()
	// The straggler counts the TERMs it gets until 1s after the first,
	// then reports; the leader exits on its TERM at once. Neither has a
	// background child, which could miss a signal sent while it is being
	// forked.
	script := fmt.Sprintf(`sh -c ': %[1]s; n=0; trap "n=\$((n+1))" TERM; echo ready; while [ $n -eq 0 ]; do sleep 0.05; done; sleep 1; echo $n >%[2]s/terms' & wait`, marker, dir)
	ctx, cancel := context.WithCancel(t.Context())
	out := proctest.NewOutput("ready")
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdout = out
	resc := make(chan error, 1)
	go func() {
		_, err := Run(ctx, cmd, 10*time.Second)
		resc <- err
	}()
	<-out.Ready()
	cancel()
	<-resc
	b, err := os.ReadFile(filepath.Join(dir, "terms"))
	if err != nil || string(b) != "1\n" {
		t.Errorf("straggler got %q TERMs (%v), want exactly 1", b, err)
	}
	proctest.WaitGone(t, proctest.ArgContains(marker))
}

func TestRunStartFailure(t *testing.T) {
	cmd := exec.Command(filepath.Join(t.TempDir(), "missing"))
	cancelled, err := Run(t.Context(), cmd, time.Second)
	if cancelled || err == nil {
		t.Errorf("Run(missing binary) = %v, %v, want false and an error", cancelled, err)
	}
}

func TestRunWithOnStart(t *testing.T) {
	hookErr := errors.New("cannot record")
	tests := []struct {
		name    string
		hookErr error
	}{
		{"hook succeeds", nil},
		{"hook fails, group killed", hookErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := proctest.SleepArg()
			script := fmt.Sprintf("sleep %[1]s & sleep %[1]s & exit 0", marker)
			if tt.hookErr != nil {
				script = fmt.Sprintf("sleep %[1]s & sleep %[1]s", marker)
			}
			cmd := exec.Command("sh", "-c", script)
			var got int
			cancelled, err := RunWith(t.Context(), cmd, RunOptions{
				Grace: time.Second,
				OnStart: func(pid int) error {
					got = pid
					return tt.hookErr
				},
			})
			if got != cmd.Process.Pid {
				t.Errorf("OnStart pid = %d, want %d", got, cmd.Process.Pid)
			}
			if cancelled {
				t.Errorf("RunWith cancelled = true, want false")
			}
			if tt.hookErr != nil && (!errors.Is(err, ErrOnStart) || !errors.Is(err, tt.hookErr)) {
				t.Errorf("RunWith error = %v, want %v and %v", err, ErrOnStart, tt.hookErr)
			}
			if tt.hookErr == nil && err != nil {
				t.Errorf("RunWith error = %v, want nil", err)
			}
			proctest.WaitGone(t, proctest.ArgContains(marker))
		})
	}
}
