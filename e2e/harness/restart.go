package harness

import (
	"syscall"
	"testing"
	"time"
)

// Kill sends SIGKILL to the coordinator's process group, as a power cut or
// the OOM killer would end it, and waits until it has exited.
func (c *Coordinator) Kill(t testing.TB) {
	t.Helper()
	if c.Proc == nil {
		t.Fatalf("harness: kill: the coordinator was never started")
	}
	c.Proc.Signal(syscall.SIGKILL)
	select {
	case <-c.Proc.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("harness: the coordinator (pid %d) did not exit within 30s of SIGKILL", c.Proc.Pid())
	}
}

// Restart serves the coordinator again on the addresses, data directory
// and arguments it had, and waits until its HTTP API answers. The previous
// process must have exited.
func (c *Coordinator) Restart(t testing.TB) {
	t.Helper()
	if c.Proc == nil || c.AgentsAddr == "" || c.HTTPAddr == "" {
		t.Fatalf("harness: restart: the coordinator was never served")
	}
	select {
	case <-c.Proc.Done():
	default:
		t.Fatalf("harness: restart: the coordinator (pid %d) is still running", c.Proc.Pid())
	}
	c.start(t)
}
