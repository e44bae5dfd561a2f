package harness

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ipForward is the sysctl a Netns turns on so that its traffic is routed
// out of the host.
const ipForward = "/proc/sys/net/ipv4/ip_forward"

// Netns is a network namespace joined to the host by a veth pair: the
// namespace's default route goes through the host side, and the host
// masquerades the namespace's subnet, so programs inside reach the
// host-side address, the host's resolver and the internet. Tests put
// firewall rules inside it to break the network for one agent only.
type Netns struct {
	// Name is the namespace's name, as `ip netns` knows it.
	Name string
	// HostIP is the host side of the veth pair, the address a program in
	// the namespace reaches the host by; NSIP is the namespace side.
	HostIP, NSIP string
	// HostLink and NSLink name the two ends of the veth pair.
	HostLink, NSLink string
	// Subnet is the /24 both addresses are in.
	Subnet string
	// Table is the host's nftables table (family ip) holding the NAT.
	Table string

	ip string
}

// NewNetns creates a uniquely named network namespace with a veth pair in
// a 10.231.X.0/24 subnet that no host address or route uses, brings up lo
// and both links, routes the namespace through the host side, and NATs it
// out of the host in an nftables table of its own with ip_forward on.
// Everything is removed, and ip_forward restored, when the test ends,
// whether or not it passed. Needs root, ip (iproute2) and nft.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	ip := lookTool(t, "ip")
	lookTool(t, "nft")
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(suffix[:])
	third := freeSubnet(t, ip)
	n := &Netns{
		Name:     "sparegrid-e2e-" + id,
		HostLink: "sgh" + id,
		NSLink:   "sgn" + id,
		HostIP:   fmt.Sprintf("10.231.%d.1", third),
		NSIP:     fmt.Sprintf("10.231.%d.2", third),
		Subnet:   fmt.Sprintf("10.231.%d.0/24", third),
		Table:    "sparegrid_e2e_" + id,
		ip:       ip,
	}
	oldForward, err := os.ReadFile(ipForward)
	if err != nil {
		t.Fatalf("harness: netns: %v", err)
	}
	t.Cleanup(func() { n.remove(t, oldForward) })

	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("harness: netns: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run(ip, "netns", "add", n.Name)
	run(ip, "link", "add", n.HostLink, "type", "veth", "peer", "name", n.NSLink, "netns", n.Name)
	run(ip, "addr", "add", n.HostIP+"/24", "dev", n.HostLink)
	run(ip, "link", "set", n.HostLink, "up")
	run(ip, "-n", n.Name, "link", "set", "lo", "up")
	run(ip, "-n", n.Name, "addr", "add", n.NSIP+"/24", "dev", n.NSLink)
	run(ip, "-n", n.Name, "link", "set", n.NSLink, "up")
	run(ip, "-n", n.Name, "route", "add", "default", "via", n.HostIP)
	nat := fmt.Sprintf(`table ip %s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %s oifname != %q masquerade
	}
}
`, n.Table, n.Subnet, n.HostLink)
	if out, err := nftInput(exec.Command("nft", "-f", "-"), nat); err != nil {
		t.Fatalf("harness: netns: nft NAT table: %v\n%s", err, out)
	}
	if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
		t.Fatalf("harness: netns: enable ip_forward: %v", err)
	}
	return n
}

// remove deletes the host table, the veth pair and the namespace, and
// puts ip_forward back; it reports what it could not undo.
func (n *Netns) remove(t testing.TB, oldForward []byte) {
	if exec.Command("nft", "list", "table", "ip", n.Table).Run() == nil {
		if out, err := exec.Command("nft", "delete", "table", "ip", n.Table).CombinedOutput(); err != nil {
			t.Errorf("harness: netns cleanup: nft delete table %s: %v\n%s", n.Table, err, out)
		}
	}
	if exec.Command(n.ip, "link", "show", n.HostLink).Run() == nil {
		if out, err := exec.Command(n.ip, "link", "del", n.HostLink).CombinedOutput(); err != nil {
			t.Errorf("harness: netns cleanup: ip link del %s: %v\n%s", n.HostLink, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join("/run/netns", n.Name)); err == nil {
		if out, err := exec.Command(n.ip, "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("harness: netns cleanup: ip netns del %s: %v\n%s", n.Name, err, out)
		}
	}
	if err := os.WriteFile(ipForward, oldForward, 0o644); err != nil {
		t.Errorf("harness: netns cleanup: restore ip_forward: %v", err)
	}
}

// Exec runs a command inside the namespace and returns its combined
// output; a failure fails the test.
func (n *Netns) Exec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(n.ip, append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("harness: in netns %s: %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NFT loads an nftables ruleset (nft -f syntax) inside the namespace.
func (n *Netns) NFT(t testing.TB, ruleset string) {
	t.Helper()
	if out, err := nftInput(exec.Command(n.ip, "netns", "exec", n.Name, "nft", "-f", "-"), ruleset); err != nil {
		t.Fatalf("harness: nft in netns %s: %v\n%s\nruleset:\n%s", n.Name, err, out, ruleset)
	}
}

// Start is harness.Start inside the namespace: the binary from Bin runs
// through `ip netns exec`, which execs it, so the Proc's pid is the
// binary's own.
func (n *Netns) Start(t testing.TB, env []string, name string, args ...string) *Proc {
	t.Helper()
	full := append([]string{"netns", "exec", n.Name, filepath.Join(Bin(t), name)}, args...)
	return StartProgram(t, append(os.Environ(), env...), n.ip, full...)
}

func nftInput(cmd *exec.Cmd, input string) ([]byte, error) {
	cmd.Stdin = strings.NewReader(input)
	return cmd.CombinedOutput()
}

func lookTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("harness: %s is not installed: run `make deps` as root", name)
	}
	return p
}

// freeSubnet picks X for 10.231.X.0/24 such that no address or route of
// the host mentions 10.231.X.
func freeSubnet(t testing.TB, ip string) int {
	t.Helper()
	var used bytes.Buffer
	for _, args := range [][]string{{"-4", "-o", "addr", "show"}, {"-4", "route", "show", "table", "all"}} {
		out, err := exec.Command(ip, args...).Output()
		if err != nil {
			t.Fatalf("harness: netns: ip %s: %v", strings.Join(args, " "), err)
		}
		used.Write(out)
	}
	start := os.Getpid() + int(time.Now().UnixNano()%251)
	for i := range 250 {
		x := (start+i)%250 + 1
		if !strings.Contains(used.String(), "10.231."+strconv.Itoa(x)+".") {
			return x
		}
	}
	t.Fatalf("harness: netns: every 10.231.X.0/24 is in use")
	return 0
}

// InitCoordinatorNames is InitCoordinator with extra names (host names or
// IP addresses) in the server certificate, such as a Netns's HostIP.
func InitCoordinatorNames(t testing.TB, names ...string) *Coordinator {
	t.Helper()
	c := &Coordinator{DataDir: filepath.Join(t.TempDir(), "coordinator")}
	args := []string{"init", "--data", c.DataDir}
	for _, n := range names {
		args = append(args, "--name", n)
	}
	r := Run(t, nil, "sparegrid-coordinator", args...)
	if r.Code != 0 {
		t.Fatalf("coordinator init failed: %s", r.Stderr)
	}
	c.AdminToken = strings.TrimSpace(r.Stdout)
	fp, err := os.ReadFile(filepath.Join(c.DataDir, "ca.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	c.CASHA256 = strings.TrimSpace(string(fp))
	return c
}

// ServeAgentsOn is Serve with the agent gateway on host, at a port free
// for both UDP and TCP there, and the HTTP API on loopback.
func (c *Coordinator) ServeAgentsOn(t testing.TB, host string, extra ...string) {
	t.Helper()
	c.serve(t, FreeUDPTCP(t, host), extra)
}

// FreeUDPTCP returns an address on host whose port was free for both UDP
// and TCP a moment ago, as the agent gateway needs.
func FreeUDPTCP(t testing.TB, host string) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		l, err := net.Listen("tcp", addr)
		pc.Close()
		if err != nil {
			continue
		}
		l.Close()
		return addr
	}
	t.Fatalf("harness: no port on %s free for both UDP and TCP", host)
	return ""
}
