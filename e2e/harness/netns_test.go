package harness

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	for _, tool := range []string{"ip", "nft", "bash", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	before, err := os.ReadFile(ipForward)
	if err != nil {
		t.Fatal(err)
	}
	var n *Netns
	t.Run("up", func(t *testing.T) {
		n = NewNetns(t)
		if got := n.Exec(t, "ip", "-4", "-o", "addr", "show", "dev", n.NSLink); !strings.Contains(got, n.NSIP+"/24") {
			t.Errorf("namespace link addresses = %q, want %s/24", got, n.NSIP)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(n.HostIP, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		_, port, _ := net.SplitHostPort(l.Addr().String())
		connect := []string{"timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/" + n.HostIP + "/" + port}
		n.Exec(t, connect...)
		if got, _ := os.ReadFile(ipForward); !bytes.Equal(got, []byte("1\n")) {
			t.Errorf("ip_forward = %q while the namespace exists, want 1", got)
		}
		n.NFT(t, "table inet block {\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t\ttcp dport "+port+" drop\n\t}\n}\n")
		if out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, connect...)...).CombinedOutput(); err == nil {
			t.Errorf("a connection through the namespace's drop rule succeeded:\n%s", out)
		}
	})
	if n == nil {
		t.Fatal("no namespace was made")
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), n.Name) {
		t.Errorf("namespace %s outlived its test: %s", n.Name, out)
	}
	if exec.Command("ip", "link", "show", n.HostLink).Run() == nil {
		t.Errorf("link %s outlived its test", n.HostLink)
	}
	if exec.Command("nft", "list", "table", "ip", n.Table).Run() == nil {
		t.Errorf("nftables table %s outlived its test", n.Table)
	}
	if got, _ := os.ReadFile(ipForward); !bytes.Equal(got, before) {
		t.Errorf("ip_forward = %q after the test, want %q as before", got, before)
	}
}

func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 3600.25 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var got []int
	WaitFor(t, "the sleep to start", 10*time.Second, func() (bool, string) {
		got = Descendants(os.Getpid(), "sleep 3600.25")
		return len(got) == 1, "none yet"
	})
	if other := Descendants(cmd.Process.Pid+1e6, "sleep 3600.25"); len(other) != 0 {
		t.Errorf("Descendants of a process that does not exist = %v, want none", other)
	}
	if alive := Alive(got, "sleep 3600.25"); !slices.Equal(alive, got) {
		t.Errorf("Alive(%v) = %v, want all", got, alive)
	}
	for _, p := range got {
		syscall.Kill(p, syscall.SIGKILL)
	}
	WaitFor(t, "the sleep to end", 10*time.Second, func() (bool, string) {
		return len(Alive(got, "sleep 3600.25")) == 0, "still alive"
	})
}
