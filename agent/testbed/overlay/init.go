package overlay

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// InitArg is the first argument that makes a binary run InitMain. The
// backend starts a testbed's init by running its own executable with it.
const InitArg = "__overlay-init"

// init turns every binary that links this package into a testbed init
// when it is run with InitArg, before its main (or a test's TestMain)
// starts, so no caller has to wire InitMain in.
func init() {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		InitMain(os.Args[2:])
	}
}

// InitMain is a testbed's init. The backend runs it as PID 1 of fresh
// mount, PID, UTS and IPC namespaces with the arguments: base root
// filesystem, upper, work and merged directories, testbed id. It builds the
// testbed's root, pivots into it, writes "ready" to file descriptor 3 and
// then only reaps orphans until it is killed. Everything it mounts is in
// its own mount namespace and disappears with it. It never returns.
func InitMain(args []string) {
	if len(args) != 5 {
		fmt.Fprintf(os.Stderr, "%s: want 5 arguments, got %d\n", InitArg, len(args))
		os.Exit(2)
	}
	if err := setupRoot(args[0], args[1], args[2], args[3], args[4]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", InitArg, err)
		os.Exit(1)
	}
	ready := os.NewFile(3, "ready")
	if _, err := io.WriteString(ready, "ready\n"); err != nil {
		os.Exit(1)
	}
	ready.Close()
	if null, err := os.OpenFile("/dev/null", os.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			syscall.Dup3(int(null.Fd()), fd, 0)
		}
		null.Close()
	}
	reap()
}

// reap waits for every child (orphans are reparented to PID 1) forever.
func reap() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if pid <= 0 {
				break
			}
		}
		<-sigs
	}
}

type mountSpec struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// devices are the character devices of the testbed's /dev.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

func setupRoot(rootfs, upper, work, merged, id string) error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	m := func(p string) string { return filepath.Join(merged, p) }
	const nosuid, nodev, noexec = syscall.MS_NOSUID, syscall.MS_NODEV, syscall.MS_NOEXEC
	first := []mountSpec{
		// volatile: a testbed is thrown away, so its writes need never be
		// synced; dpkg's many fsyncs become free.
		{id, merged, "overlay", 0, "lowerdir=" + rootfs + ",upperdir=" + upper + ",workdir=" + work + ",volatile"},
		{"proc", m("proc"), "proc", nosuid | nodev | noexec, ""},
		{"sysfs", m("sys"), "sysfs", syscall.MS_RDONLY | nosuid | nodev | noexec, ""},
		{"tmpfs", m("dev"), "tmpfs", nosuid | noexec, "mode=755,size=1m"},
	}
	if err := mountAll(first); err != nil {
		return err
	}
	for _, d := range devices {
		dev := int(d.major<<8 | d.minor)
		if err := syscall.Mknod(m("dev/"+d.name), syscall.S_IFCHR|0o666, dev); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		if err := os.Chmod(m("dev/"+d.name), 0o666); err != nil {
			return err
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"},
		{"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
		{"pts/ptmx", "dev/ptmx"},
	}
	for _, l := range links {
		if err := os.Symlink(l[0], m(l[1])); err != nil {
			return err
		}
	}
	for _, d := range []string{"dev/pts", "dev/shm"} {
		if err := os.Mkdir(m(d), 0o755); err != nil {
			return err
		}
	}
	second := []mountSpec{
		{"devpts", m("dev/pts"), "devpts", nosuid | noexec, "newinstance,ptmxmode=0666,mode=620,gid=5"},
		{"tmpfs", m("dev/shm"), "tmpfs", nosuid | nodev, "mode=1777"},
		{"tmpfs", m("run"), "tmpfs", nosuid | nodev, "mode=755"},
	}
	if err := mountAll(second); err != nil {
		return err
	}
	if err := os.Mkdir(m("run/lock"), 0o1777); err != nil {
		return err
	}
	if err := os.Chmod(m("run/lock"), 0o1777); err != nil {
		return err
	}
	if err := os.WriteFile(m("run/"+id), nil, 0o644); err != nil {
		return err
	}
	if resolv, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		// The base may have a symbolic link here; writing through it
		// would reach the host's file.
		if err := os.Remove(m("etc/resolv.conf")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.WriteFile(m("etc/resolv.conf"), resolv, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chdir(merged); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// it leaves nothing of the host's file systems in the namespace.
	if err := syscall.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return os.Chdir("/")
}

func mountAll(specs []mountSpec) error {
	for _, s := range specs {
		if err := syscall.Mount(s.source, s.target, s.fstype, s.flags, s.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", s.fstype, strings.TrimPrefix(s.target, "/"), err)
		}
	}
	return nil
}
