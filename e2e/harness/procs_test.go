package harness

import (
	"os/exec"
	"slices"
	"testing"
)

func TestProcesses(t *testing.T) {
	cmd := exec.Command("sleep", "3600.125")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if got := Processes("sleep 3600.125"); !slices.Contains(got, pid) {
		t.Errorf("Processes(%q) = %v, want it to contain %d", "sleep 3600.125", got, pid)
	}
	if got := Processes("sleep 3600.1250"); slices.Contains(got, pid) {
		t.Errorf("Processes matched a longer prefix: %v", got)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := Processes("sleep 3600.125"); slices.Contains(got, pid) {
		t.Errorf("Processes(%q) = %v after the process was reaped", "sleep 3600.125", got)
	}
}
