package proctest

import (
	"fmt"
	"os/exec"
	"slices"
	"testing"
)

// startSleep starts sleep(1) with a fresh SleepArg and returns the arg;
// the test kills and reaps it when it ends.
func startSleep(t *testing.T) (*exec.Cmd, string) {
	t.Helper()
	arg := SleepArg()
	cmd := exec.Command("sleep", arg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, arg
}

func TestProcessesAndWaitGone(t *testing.T) {
	mark := MarkChildren(t)
	cmd, arg := startSleep(t)
	tests := []struct {
		name  string
		match Match
		want  int
	}{
		{"by argument", ArgContains(arg), 1},
		{"by inherited environment", mark, 1},
		{"by another argument", ArgContains(SleepArg()), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Processes(t, tt.match)
			if len(got) != tt.want {
				t.Fatalf("Processes() = %q, want %d processes", got, tt.want)
			}
			for _, p := range got {
				if p.PID != cmd.Process.Pid || !slices.Equal(p.Cmdline, []string{"sleep", arg}) {
					t.Errorf("Processes() = %q, want pid %d running sleep %s", got, cmd.Process.Pid, arg)
				}
			}
		})
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	WaitGone(t, ArgContains(arg))
	WaitGone(t, mark)
	if err := cmd.Wait(); err == nil {
		t.Errorf("killed sleep exited cleanly")
	}
}

func TestWaitGoneReportsLeftovers(t *testing.T) {
	_, arg := startSleep(t)
	rec := &recorder{TB: t}
	WaitGone(rec, ArgContains(arg))
	if !rec.failed {
		t.Errorf("WaitGone(running sleep %s) did not fail the test", arg)
	}
}

// recorder is a testing.TB whose failures are only recorded.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }

func TestOutput(t *testing.T) {
	o := NewOutput("ready")
	fmt.Fprint(o, "getting rea")
	select {
	case <-o.Ready():
		t.Fatalf("Ready() closed before the marker was written")
	default:
	}
	fmt.Fprint(o, "dy\nmore")
	fmt.Fprint(o, "\nready again")
	select {
	case <-o.Ready():
	default:
		t.Fatalf("Ready() not closed after the marker was written")
	}
	if got, want := o.String(), "getting ready\nmore\nready again"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
