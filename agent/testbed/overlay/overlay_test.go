package overlay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/internal/proctest"
	"github.com/sparegrid/sparegrid/agent/testbed"
)

func TestFromArgs(t *testing.T) {
	root := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr error
	}{
		{"rootfs only", []string{"--rootfs", root}, Options{RootFS: root, WorkDir: DefaultWorkDir, CgroupRoot: "/sys/fs/cgroup", Init: self}, nil},
		{"all flags", []string{"--rootfs", root, "--workdir", "/srv/tb", "--memory", "1073741824", "--pids", "500"},
			Options{RootFS: root, WorkDir: "/srv/tb", Memory: 1 << 30, Pids: 500, CgroupRoot: "/sys/fs/cgroup", Init: self}, nil},
		{"no rootfs", []string{"--workdir", "/srv/tb"}, Options{}, ErrUsage},
		{"unknown flag", []string{"--rootfs", root, "--tarball", "x.tar"}, Options{}, ErrUsage},
		{"positional argument", []string{"--rootfs", root, "extra"}, Options{}, ErrUsage},
		{"negative memory", []string{"--rootfs", root, "--memory", "-1"}, Options{}, ErrUsage},
		{"comma in workdir", []string{"--rootfs", root, "--workdir", "/srv/a,b"}, Options{}, ErrBadPath},
		{"colon in rootfs", []string{"--rootfs", root + ":x"}, Options{}, ErrBadPath},
		{"rootfs is a file", []string{"--rootfs", "/etc/hostname"}, Options{}, ErrUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromArgs(tt.args)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FromArgs(%q) error = %v, want %v", tt.args, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got.(*Backend).opts); diff != "" {
				t.Errorf("FromArgs(%q) options mismatch (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func FuzzFromArgs(f *testing.F) {
	f.Add("--rootfs\x00/\x00--memory\x0012")
	f.Add("--pids\x00-3")
	f.Add("--rootfs=/a,b")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := FromArgs(strings.Split(s, "\x00"))
		if err == nil && b.Name() != "overlay" {
			t.Fatalf("Name() = %q, want overlay", b.Name())
		}
	})
}

func TestParseStartTime(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{"plain", "42 (sh) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10", 123456, false},
		{"name with spaces and parens", "7 (a) b (c) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0", 99, false},
		{"truncated", "7 (sh) S 1 7", 0, true},
		{"no name", "7 sh S", 0, true},
		{"not a number", "7 (sh) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 x 0 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStartTime(tt.stat)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStartTime(%q) = %d, %v, want %d (error %v)", tt.stat, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseStartTime(f *testing.F) {
	f.Add("42 (sh) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10")
	f.Add("7 (a) b) S")
	f.Fuzz(func(t *testing.T, s string) {
		parseStartTime(s)
	})
}

func TestCreateCgroup(t *testing.T) {
	tests := []struct {
		name     string
		v2       bool
		memory   int64
		pids     int64
		wantErr  error
		wantFile map[string]string
	}{
		{"no unified hierarchy", false, 1 << 30, 100, errNoCgroup2, nil},
		{"both limits", true, 1 << 30, 100, nil, map[string]string{"memory.max": "1073741824", "pids.max": "100"}},
		{"pids only", true, 0, 64, nil, map[string]string{"pids.max": "64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.v2 {
				if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			dir, err := createCgroup(root, testbed.Prefix+"x", tt.memory, tt.pids)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("createCgroup error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if _, err := os.Stat(filepath.Join(root, testbed.Prefix+"x")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("createCgroup without v2 created a cgroup (stat error %v)", err)
				}
				return
			}
			if want := filepath.Join(root, testbed.Prefix+"x"); dir != want {
				t.Errorf("createCgroup dir = %q, want %q", dir, want)
			}
			got := map[string]string{}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				data, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				got[e.Name()] = string(data)
			}
			if diff := cmp.Diff(tt.wantFile, got); diff != "" {
				t.Errorf("cgroup files mismatch (-want +got):\n%s", diff)
			}
			sub, err := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
			if err != nil || string(sub) != "+memory +pids" {
				t.Errorf("cgroup.subtree_control = %q (error %v), want %q", sub, err, "+memory +pids")
			}
		})
	}
}

func TestOpenWarnsWithoutCgroup2(t *testing.T) {
	rootfs := testRootFS(t)
	var log bytes.Buffer
	b, err := New(Options{RootFS: rootfs, WorkDir: t.TempDir(), Memory: 1 << 30, CgroupRoot: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	for range 2 {
		if _, err := b.Open(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(log.String(), "not enforced"); got != 1 {
		t.Errorf("warnings about missing cgroup v2 = %d, want 1; log:\n%s", got, log.String())
	}
}

// testRootFS returns a base root filesystem directory: the one in
// $SPAREGRID_TEST_ROOTFS, the bookworm directory image in
// $SPAREGRID_TEST_IMAGE_DIR (built there if missing), or a fresh one in a
// temporary directory. It skips the test unless it runs as root.
func testRootFS(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real root filesystem; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount overlayfs")
	}
	if dir := os.Getenv("SPAREGRID_TEST_ROOTFS"); dir != "" {
		return dir
	}
	arch, err := image.HostArch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	state := os.Getenv("SPAREGRID_TEST_IMAGE_DIR")
	if state == "" {
		state = t.TempDir()
	} else if img, err := image.LookupFormat(state, "bookworm", arch, image.FormatDirectory); err == nil {
		return img.Path
	} else if !errors.Is(err, image.ErrNoImage) {
		t.Fatal(err)
	}
	log := proctest.NewOutput("")
	img, err := image.Build(t.Context(), image.BuildOptions{StateDir: state, Release: "bookworm", Arch: arch, Format: image.FormatDirectory, Log: log})
	if err != nil {
		t.Fatalf("image.Build: %v\n%s", err, log.String())
	}
	return img.Path
}

func newBackend(t *testing.T, rootfs string) *Backend {
	t.Helper()
	b, err := New(Options{RootFS: rootfs, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// run runs script with sh in the testbed through prefix.
func run(t *testing.T, prefix []string, script string) (string, error) {
	t.Helper()
	argv := append(append([]string{}, prefix...), "sh", "-ec", script)
	cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

func mustRun(t *testing.T, prefix []string, script string) string {
	t.Helper()
	out, err := run(t, prefix, script)
	if err != nil {
		t.Fatalf("running %q in the testbed: %v\n%s", script, err, out)
	}
	return out
}

func TestLifecycle(t *testing.T) {
	rootfs := testRootFS(t)
	before, err := image.DirDigest(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, rootfs)
	if err := b.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	prefix, err := b.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("testbed", func(t *testing.T) {
		tests := []struct {
			name   string
			script string
			want   string
		}{
			{"root", "id -u", "0\n"},
			{"pid 1 is init", "tr '\\0' '\\n' </proc/1/cmdline | sed -n 2p", InitArg + "\n"},
			{"os release", ". /etc/os-release; echo $VERSION_CODENAME", "bookworm\n"},
			{"normal user", "id -un " + NormalUser + "; test -d /home/" + NormalUser + " && echo home", NormalUser + "\nhome\n"},
			{"devices", "echo x >/dev/null; head -c 3 /dev/zero | wc -c; test -c /dev/urandom && echo urandom", "3\nurandom\n"},
			{"pty", "test -c /dev/pts/ptmx && test -L /dev/ptmx && echo ok", "ok\n"},
			{"environment", "env | sort", "PATH=" + testbedPath + "\nPWD=/\nSHELL=/bin/sh\n"},
			{"resolv.conf is a copy", "test -f /etc/resolv.conf && ! test -L /etc/resolv.conf && echo ok", "ok\n"},
			{"no host mounts", "grep -c ' /work\\| /home/' /proc/mounts || true", "0\n"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := mustRun(t, prefix, tt.script)
				if !strings.HasPrefix(got, tt.want) {
					t.Errorf("%q in the testbed = %q, want prefix %q", tt.script, got, tt.want)
				}
			})
		}
	})

	pkgs := mustRun(t, prefix, "dpkg-query -W -f '${Package}\\n' | sort")
	mustRun(t, prefix, `
		echo changed >/etc/sparegrid-marker
		dpkg --purge --force-depends ca-certificates >/dev/null
		rm -rf /usr/share/doc
		setsid sleep 1000 </dev/null >/dev/null 2>&1 &
		echo daemon >/dev/shm/marker
		hostname changed-by-test
	`)
	// The daemon is started in the background: it may take a moment to
	// become "sleep 1000".
	var hostPids []int
	for deadline := time.Now().Add(30 * time.Second); len(hostPids) == 0 && time.Now().Before(deadline); {
		if hostPids = sleepers(t); len(hostPids) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(hostPids) == 0 {
		t.Fatal("the daemon started in the testbed is not visible on the host")
	}
	old := prefix
	oldDir := b.cur.dir

	prefix, err = b.Revert(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range hostPids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("daemon (host pid %d) still runs after Revert", pid)
		}
	}
	got := mustRun(t, prefix, `
		test -e /etc/sparegrid-marker && echo marker
		test -e /dev/shm/marker && echo shm
		test -d /usr/share/doc && echo doc
		hostname | grep -q changed-by-test && echo hostname
		cat /proc/[0-9]*/cmdline | tr '\0' ' ' | grep -c 'slee[p] 1000' || true
	`)
	if want := "doc\n0\n"; got != want {
		t.Errorf("testbed after Revert = %q, want %q", got, want)
	}
	if got := mustRun(t, prefix, "dpkg-query -W -f '${Package}\\n' | sort"); got != pkgs {
		t.Errorf("packages after Revert differ:\n%s", cmp.Diff(pkgs, got))
	}
	if out, err := run(t, old, "echo reached >/root/old"); err == nil {
		t.Errorf("old prefix still runs commands after Revert: %s", out)
	}
	if got := mustRun(t, prefix, "test -e /root/old && echo reached || true"); got != "" {
		t.Errorf("old prefix reached the new testbed")
	}

	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(oldDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("testbed directory %s left after Close (stat error %v)", oldDir, err)
	}
	entries, err := os.ReadDir(b.opts.WorkDir)
	if err != nil || len(entries) != 0 {
		t.Errorf("work directory after Close has %v (error %v), want nothing", entries, err)
	}
	after, err := image.DirDigest(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("root filesystem digest changed: %s, was %s", after, before)
	}
}

// sleepers returns the host PIDs of "sleep 1000" processes.
func sleepers(t *testing.T) []int {
	t.Helper()
	var pids []int
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && string(cmdline) == "sleep\x001000\x00" {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestOrphansAreReaped(t *testing.T) {
	b := newBackend(t, testRootFS(t))
	prefix, err := b.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, prefix, "sh -c 'true & exit 0'; sh -c '(exit 3) & exit 0'")
	// The orphans exit at once; init reaps them asynchronously, so wait
	// for it the only way there is: poll, bounded.
	for range 1000 {
		out := mustRun(t, prefix, "cat /proc/[0-9]*/stat | grep -c '^[0-9]* ([^)]*) Z' || true")
		if out == "0\n" {
			return
		}
	}
	t.Error("zombies are left in the testbed")
}

func TestHostPath(t *testing.T) {
	b := newBackend(t, testRootFS(t))
	if _, ok := b.hostPath("/tmp/x"); ok {
		t.Error("hostPath before Open = ok, want not ok")
	}
	prefix, err := b.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tmp := strings.TrimSpace(mustRun(t, prefix, "mktemp -d"))
	host, ok := b.hostPath(tmp)
	if !ok {
		t.Fatalf("hostPath(%q) = not ok", tmp)
	}
	if err := os.WriteFile(filepath.Join(host, "from-host"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, prefix, "cat "+tmp+"/from-host"); got != "hello\n" {
		t.Errorf("file written by the host at %s = %q in the testbed, want %q", host, got, "hello\n")
	}
	mustRun(t, prefix, "echo up >"+tmp+"/from-testbed")
	if got, err := os.ReadFile(filepath.Join(host, "from-testbed")); err != nil || string(got) != "up\n" {
		t.Errorf("file written in the testbed = %q (error %v) on the host, want %q", got, err, "up\n")
	}
	if _, ok := b.hostPath("relative"); ok {
		t.Error("hostPath(relative) = ok, want not ok")
	}
}

// TestCleanupAfterCrash kills a server holding a testbed (a child process
// running this test binary) and checks that its init died with it and that
// Cleanup removes its directory.
func TestCleanupAfterCrash(t *testing.T) {
	rootfs := testRootFS(t)
	work := t.TempDir()
	if os.Getenv("SPAREGRID_OVERLAY_CRASH_CHILD") != "" {
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), "SPAREGRID_OVERLAY_CRASH_CHILD="+work, "SPAREGRID_TEST_ROOTFS="+rootfs)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var initPid int
	buf := make([]byte, 4096)
	var seen []byte
	for initPid == 0 {
		n, err := stdout.Read(buf)
		seen = append(seen, buf[:n]...)
		if i := bytes.Index(seen, []byte("INIT ")); i >= 0 {
			if j := bytes.IndexByte(seen[i:], '\n'); j >= 0 {
				initPid, _ = strconv.Atoi(string(seen[i+5 : i+j]))
			}
		}
		if err != nil && initPid == 0 {
			cmd.Wait()
			t.Fatalf("crash child ended before opening a testbed: %v\n%s%s", err, seen, stderr.String())
		}
	}
	start, err := startTime(initPid)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitGone(initPid, start)
	if alive(initPid, start) {
		t.Errorf("init %d survived its server", initPid)
	}

	leftovers, _ := filepath.Glob(filepath.Join(work, testbed.Prefix+"*"))
	if len(leftovers) != 1 {
		t.Fatalf("leftover testbed directories = %q, want one", leftovers)
	}
	b, err := New(Options{RootFS: rootfs, WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	live := newBackend(t, rootfs)
	live.opts.WorkDir = work
	if _, err := live.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.Cleanup(t.Context()); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
	}
	if _, err := os.Stat(leftovers[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Cleanup left %s (stat error %v)", leftovers[0], err)
	}
	if _, err := os.Stat(live.cur.dir); err != nil {
		t.Errorf("Cleanup removed the live testbed of another server: %v", err)
	}
}

// TestCrashChild is the server TestCleanupAfterCrash kills: it opens a
// testbed, prints its init's PID and waits to be killed.
func TestCrashChild(t *testing.T) {
	work := os.Getenv("SPAREGRID_OVERLAY_CRASH_CHILD")
	if work == "" {
		t.Skip("run by TestCleanupAfterCrash")
	}
	b, err := New(Options{RootFS: os.Getenv("SPAREGRID_TEST_ROOTFS"), WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("INIT " + strconv.Itoa(b.cur.cmd.Process.Pid) + "\n")
	<-t.Context().Done()
}

func TestKilledInitMakesPrefixFail(t *testing.T) {
	b := newBackend(t, testRootFS(t))
	prefix, err := b.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(b.cur.cmd.Process.Pid, syscall.SIGKILL)
	b.cur.cmd.Wait()
	b.cur.cmd = nil
	if out, err := run(t, prefix, "true"); err == nil {
		t.Errorf("prefix of a testbed whose init died ran a command: %s", out)
	}
}
