package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/e2e/harness"
)

// The service user the test adds inside its mount namespace; the id is
// one that Debian leaves to local use and the host must not know.
const (
	agentUser = "sparegrid"
	agentUID  = 64055
)

// nsScript runs inside a private mount namespace made by unshare. It
// bind-mounts copies of the account databases that know the service user
// and a sudoers.d holding only the shipped rules over the host's, puts
// the virt server at the path the rules name (an overlay on /usr/bin whose
// upper layer holds only that file), and then runs the agent as the
// service user. The mounts die with the namespace's last process; the
// host's files are never written.
const nsScript = `set -e
ns=$1; uid=$2; shift 2
mount --bind "$ns/passwd" /etc/passwd
mount --bind "$ns/group" /etc/group
mount --bind "$ns/shadow" /etc/shadow
mount --bind "$ns/sudoers.d" /etc/sudoers.d
mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$ns/usrbin,workdir=$ns/usrbin-work" /usr/bin
exec setpriv --reuid "$uid" --regid "$uid" --init-groups "$@"
`

// TestUnprivilegedAgent runs a job with the agent as an unprivileged user
// whose overlay virt server goes through "sudo -n" and the shipped sudoers
// rule, as a packaged installation does. autopkgtest, running as that
// user, reaches the testbed through the exec prefix the server hands out,
// which goes through the same sudo rule in exec mode.
func TestUnprivilegedAgent(t *testing.T) {
	requireTools(t)
	for _, tool := range []string{"sudo", "visudo", "setpriv", "unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps` as root (make check does)", tool)
		}
	}
	rules := filepath.Join(harness.RepoRoot(), "installer", "sudoers", "sparegrid-agent")
	if out, err := exec.Command("visudo", "-c", "-f", rules).CombinedOutput(); err != nil {
		t.Fatalf("visudo -c -f %s: %v\n%s", rules, err, out)
	}
	if _, err := os.Stat("/usr/bin/autopkgtest-virt-sparegrid"); err == nil {
		t.Fatalf("/usr/bin/autopkgtest-virt-sparegrid exists on this host; the test puts its own build there inside a namespace and will not hide an installed one")
	}

	// base is traversable by the service user; the namespace's files are
	// root's.
	base, err := os.MkdirTemp("", "sparegrid-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	mustChmod(t, base, 0o755)
	ns := filepath.Join(base, "ns")
	bin := filepath.Join(base, "bin")
	state := filepath.Join(base, "agent")
	tmp := filepath.Join(base, "tmp")
	for _, d := range []string{ns, bin, filepath.Join(ns, "sudoers.d"), filepath.Join(ns, "usrbin"), filepath.Join(ns, "usrbin-work"), tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"sparegrid-agent", "autopkgtest-virt-sparegrid"} {
		copyFile(t, filepath.Join(harness.Bin(t), b), filepath.Join(bin, b), 0o755)
	}
	copyFile(t, filepath.Join(bin, "autopkgtest-virt-sparegrid"), filepath.Join(ns, "usrbin", "autopkgtest-virt-sparegrid"), 0o755)
	copyFile(t, rules, filepath.Join(ns, "sudoers.d", "sparegrid-agent"), 0o440)
	addAccount(t, "/etc/passwd", filepath.Join(ns, "passwd"), fmt.Sprintf("%s:x:%d:%d:sparegrid agent:%s:/usr/sbin/nologin", agentUser, agentUID, agentUID, state))
	addAccount(t, "/etc/group", filepath.Join(ns, "group"), fmt.Sprintf("%s:x:%d:", agentUser, agentUID))
	addAccount(t, "/etc/shadow", filepath.Join(ns, "shadow"), agentUser+":*:20000:0:99999:7:::")

	c := harness.InitCoordinator(t)
	c.Serve(t)
	aliceTok := c.CreateAccount(t, "alice", "volunteer")
	bobTok := c.CreateAccount(t, "bob", "maintainer")

	// Registration and the image build run as root, as an installer
	// does; the image stays root's, because the root virt server mounts
	// it, and the rest of the state directory goes to the service user.
	r := c.Register(t, state, "alice", c.CASHA256, "unpriv")
	if r.Code != 0 {
		t.Fatalf("register = exit %d: %s", r.Code, r.Stderr)
	}
	var reg struct {
		AgentID   int64  `json:"agent_id"`
		ClaimCode string `json:"claim_code"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &reg); err != nil {
		t.Fatalf("register --json printed %q: %v", r.Stdout, err)
	}
	tb := harness.Run(t, nil, "sparegrid-agent", "testbed", "build", "--release", "bookworm", "--state", state)
	if tb.Code != 0 {
		t.Fatalf("testbed build = exit %d: %s", tb.Code, tb.Stderr)
	}
	chownState(t, state, tmp)
	c.MustCLI(t, aliceTok, "agents", "claim", reg.ClaimCode)
	c.MustCLI(t, c.AdminToken, "agents", "approve", itoa(reg.AgentID))

	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + state, "TMPDIR=" + tmp, "LANG=C.UTF-8"}
	agent := harness.StartProgram(t, env, "/usr/bin/unshare", "--mount", "--propagation", "private", "sh", "-ec", nsScript, "sh", ns, fmt.Sprint(agentUID),
		filepath.Join(bin, "sparegrid-agent"), "run", "--state", state, "--virt-server", "/usr/bin/autopkgtest-virt-sparegrid")
	harness.WaitFor(t, "the agent to start", time.Minute, func() (bool, string) {
		return strings.Contains(agent.Output(), "msg=starting"), agent.Output()
	})
	if uid, err := procUID(agent.Pid()); err != nil || uid != agentUID {
		t.Errorf("agent process uid = %d (%v), want %d", uid, err, agentUID)
	}
	if out := agent.Output(); !strings.Contains(out, fmt.Sprintf("uid=%d", agentUID)) || !strings.Contains(out, "virt_sudo=") || strings.Contains(out, "virt_sudo=[]") {
		t.Errorf("agent did not start as uid %d with sudo:\n%s", agentUID, out)
	}

	fixture := filepath.Join(harness.RepoRoot(), "e2e", "testdata", "fixture")
	id := c.MustCLI(t, bobTok, "submit", "--source", fixture, "--release", "bookworm")
	j := c.WaitJob(t, id, 10*time.Minute)
	want := []testResult{{"passes", "PASS"}, {"fails", "FAIL"}, {"skippable", "SKIP"}, {"flaky", "FLAKY"}}
	if diff := cmp.Diff(want, results(j)); diff != "" || j.Verdict != "fail" || j.State != "done" {
		t.Errorf("fixture job: %s/%s (reason %q), tests (-want +got):\n%s", j.State, j.Verdict, j.Reason, diff)
	}
	if j.Harness == nil || j.Harness.Backend != "overlay" {
		t.Errorf("fixture job harness = %+v, want the overlay backend", j.Harness)
	}
	if r := c.CLI(t, "", "verify", id); r.Code != 0 {
		t.Errorf("verify %s = exit %d: %s", id, r.Code, r.Stderr)
	}
	if log := c.MustCLI(t, "", "log", id); !strings.Contains(log, "sudo") || !strings.Contains(log, "/usr/bin/autopkgtest-virt-sparegrid") {
		t.Errorf("job log does not show the virt server run through sudo:\n%s", log)
	}

	agent.Stop(time.Minute)
	for _, dir := range []string{filepath.Join(state, "work"), tmp} {
		if left := leftovers(t, dir); len(left) > 0 {
			t.Errorf("%s holds leftovers after the job:\n%s", dir, strings.Join(left, "\n"))
		}
	}
}

func mustChmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
	mustChmod(t, to, mode)
}

// addAccount writes a copy of the account database from with line
// added, with the original's mode and owner.
func addAccount(t *testing.T, from, to, line string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	name, _, _ := strings.Cut(line, ":")
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		if n, _, _ := strings.Cut(sc.Text(), ":"); n == name {
			t.Fatalf("%s already has %s: the test needs a host without it", from, name)
		}
	}
	fi, err := os.Stat(from)
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, from, to, fi.Mode().Perm())
	data = append(data, []byte(line+"\n")...)
	if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Chown(to, int(st.Uid), int(st.Gid)); err != nil {
		t.Fatal(err)
	}
}

// chownState gives the state directory, except its images, and the
// agent's TMPDIR to the service user.
func chownState(t *testing.T, state, tmp string) {
	t.Helper()
	for _, p := range []string{state, tmp} {
		if err := os.Chown(p, agentUID, agentUID); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "images" {
			continue
		}
		err := filepath.WalkDir(filepath.Join(state, e.Name()), func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, agentUID, agentUID)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// procUID returns the real uid of a running process.
func procUID(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			var uid int
			_, err := fmt.Sscan(rest, &uid)
			return uid, err
		}
	}
	return -1, fmt.Errorf("no Uid line in /proc/%d/status", pid)
}

// leftovers lists what is under dir, with owners.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		out = append(out, fmt.Sprintf("%s %d:%d %v", p, st.Uid, st.Gid, fi.Mode()))
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}
