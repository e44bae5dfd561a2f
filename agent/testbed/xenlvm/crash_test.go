package xenlvm

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const crashEnv = "XENLVM_TEST_CRASH_CONFIG"

// TestCrashHelper is the server that TestCrashMidOpenThenCleanup kills:
// it only runs as that test's child.
func TestCrashHelper(t *testing.T) {
	raw := os.Getenv(crashEnv)
	if raw == "" {
		t.Skip("runs only as the child of TestCrashMidOpenThenCleanup")
	}
	var c Config
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	b, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	b.Open(t.Context())
	t.Fatal("Open returned; the fake xl should have hung")
}

func TestCrashMidOpenThenCleanup(t *testing.T) {
	h := newFakeHost(t)
	c := h.config(CoWLVM)
	fifo := filepath.Join(h.state, "hang")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashHelper$")
	child.Env = append(os.Environ(), crashEnv+"="+string(raw))
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	f.Close()
	if err != nil || line != "create\n" {
		t.Fatalf("fake xl said %q, %v; want create", line, err)
	}
	// The server dies between lvcreate and the guest starting.
	if err := syscall.Kill(-child.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	os.Remove(fifo)
	if got := h.ours(c.VG); len(got) != 1 {
		t.Fatalf("objects after the crash = %v, want the orphaned snapshot", got)
	}
	h.log(c)

	b := newBackend(t, c)
	for i := range 2 {
		if err := b.Cleanup(t.Context()); err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
	}
	want := []string{
		"xl list", "dmsetup ls", "lvs --noheadings -o lv_name sparegrid",
		"lvremove -f sparegrid/sparegrid-tb-ID1",
		"xl list", "dmsetup ls", "lvs --noheadings -o lv_name sparegrid",
	}
	if diff := cmp.Diff(want, h.log(c)); diff != "" {
		t.Errorf("Cleanup commands (-want +got):\n%s", diff)
	}
	if got := h.ours(c.VG); len(got) != 0 {
		t.Errorf("objects after Cleanup = %v, want none", got)
	}
	if diff := cmp.Diff([]string{prefix + "sparegrid:sparegrid-base-bookworm.lock"}, lockFiles(t, c.LockDir)); diff != "" {
		t.Errorf("lock dir after Cleanup (-want +got):\n%s", diff)
	}
	if _, err := b.Open(t.Context()); err != nil {
		t.Fatalf("Open after Cleanup: %v", err)
	}
}
