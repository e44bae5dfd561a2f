// Package overlay owns sparegrid's "overlay" testbed backend: a read-only
// base root filesystem (a directory made by mmdebstrap) under a fresh
// overlayfs upper layer, inside fresh mount, PID, UTS and IPC namespaces
// whose init process lives as long as the testbed.
//
// Revert kills that init: the kernel then kills every process of the
// testbed, the mount namespace and the overlay mount vanish with it, and
// the upper layer is deleted. Nothing is ever mounted in the host's mount
// namespace, so a crashed server leaves only directories behind, which
// Cleanup removes.
//
// It must not speak autopkgtest's virt-server protocol (package virt does),
// must not write to the base root filesystem, and must not build images
// (package image does).
package overlay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/sparegrid/sparegrid/agent/testbed"
)

// Errors returned by this package.
var (
	ErrUsage   = errors.New("overlay: bad arguments")
	ErrBadPath = errors.New("overlay: path cannot be used in an overlay mount")
	ErrInit    = errors.New("overlay: testbed init failed")
	ErrClosed  = errors.New("overlay: no open testbed")
)

// NormalUser is the unprivileged user created in every testbed and
// suggested to autopkgtest.
const NormalUser = "sparegrid"

// DefaultWorkDir holds the testbeds' upper layers when no --workdir is
// given. It is below /var/tmp, not /tmp, because /tmp may be a small
// tmpfs and a testbed's changes can be large.
const DefaultWorkDir = "/var/tmp/sparegrid-overlay"

// testbedPath is PATH inside a testbed, as autopkgtest's unshare backend
// sets it.
const testbedPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options configures a Backend.
type Options struct {
	// RootFS is the base root filesystem. It is only ever an overlayfs
	// lower layer.
	RootFS string
	// WorkDir holds one directory per testbed; DefaultWorkDir if empty.
	WorkDir string
	// Memory and Pids limit a testbed through cgroup v2 when they are
	// positive and the host has a unified cgroup hierarchy.
	Memory int64
	Pids   int64
	// CgroupRoot is where the cgroup v2 hierarchy is mounted;
	// /sys/fs/cgroup if empty.
	CgroupRoot string
	// Log receives warnings (for example that limits are unavailable);
	// standard error if nil.
	Log io.Writer
	// Init is the binary that runs InitMain when its first argument is
	// InitArg; the running executable if empty.
	Init string
	// Sudo, when set, is the sudo program through which the exec prefix
	// calls Init in exec mode (see ExecArg): the server itself runs under
	// sudo, and the unprivileged caller that runs the prefix could not
	// enter the testbed's namespaces otherwise. FromArgs sets it when the
	// server runs as root under sudo.
	Sudo string
}

// Backend is the overlay testbed backend. Its methods must be called from
// one goroutine, as package testbed requires.
type Backend struct {
	opts Options

	cur *instance
	// trash counts old testbeds whose upper layers are still being
	// deleted; Close waits for them.
	trash sync.WaitGroup
	// limitsWarned records that the missing-cgroup warning was given.
	limitsWarned bool
}

var _ testbed.Backend = (*Backend)(nil)

// instance is one running testbed.
type instance struct {
	id   string // testbed.Prefix and a random suffix
	dir  string // <workdir>/<id>
	lock *os.File
	cmd  *exec.Cmd
	cg   string // cgroup directory, or ""
}

// New returns a backend for opts after checking them.
func New(opts Options) (*Backend, error) {
	if opts.RootFS == "" {
		return nil, fmt.Errorf("%w: --rootfs is required", ErrUsage)
	}
	if opts.WorkDir == "" {
		opts.WorkDir = DefaultWorkDir
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	if opts.Init == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("overlay: %w", err)
		}
		opts.Init = self
	}
	if opts.Memory < 0 || opts.Pids < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrUsage)
	}
	for _, p := range []*string{&opts.RootFS, &opts.WorkDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("overlay: %w", err)
		}
		if err := mountablePath(abs); err != nil {
			return nil, err
		}
		*p = abs
	}
	fi, err := os.Stat(opts.RootFS)
	if err != nil {
		return nil, fmt.Errorf("overlay: root filesystem: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: root filesystem %s is not a directory", ErrUsage, opts.RootFS)
	}
	return &Backend{opts: opts}, nil
}

// FromArgs parses the backend's command line: --rootfs DIR (required),
// --workdir DIR, --memory BYTES and --pids N.
func FromArgs(args []string) (testbed.Backend, error) {
	fs := flag.NewFlagSet("overlay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var opts Options
	fs.StringVar(&opts.RootFS, "rootfs", "", "base root filesystem directory (never modified)")
	fs.StringVar(&opts.WorkDir, "workdir", "", "directory for the testbeds' upper layers")
	fs.Int64Var(&opts.Memory, "memory", 0, "memory limit in bytes (cgroup v2)")
	fs.Int64Var(&opts.Pids, "pids", 0, "process limit (cgroup v2)")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	opts.Sudo = sudoFor(os.Geteuid(), os.Getenv)
	b, err := New(opts)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// CleanupFromArgs runs Cleanup for a server started only to clean up, so
// without a root filesystem. Its only option is --workdir DIR, as in
// FromArgs.
func CleanupFromArgs(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("overlay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var workDir string
	fs.StringVar(&workDir, "workdir", DefaultWorkDir, "directory for the testbeds' upper layers")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	abs, err := filepath.Abs(workDir)
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	b := &Backend{opts: Options{WorkDir: abs, CgroupRoot: "/sys/fs/cgroup"}}
	return b.Cleanup(ctx)
}

// mountablePath rejects paths that overlayfs's option syntax cannot carry.
func mountablePath(p string) error {
	if strings.ContainsAny(p, ",:\\\n") {
		return fmt.Errorf("%w: %q contains one of , : \\ or a newline", ErrBadPath, p)
	}
	return nil
}

// Name returns "overlay".
func (b *Backend) Name() string { return "overlay" }

// Capabilities returns what an overlay testbed honours. revert-full-system
// holds because Revert discards every file change and kills every process,
// IPC object and hostname change with the namespaces; the network
// namespace is the host's, so the testbed can reach the archive.
func (b *Backend) Capabilities() []string {
	return []string{
		"revert",
		"revert-full-system",
		"isolation-container",
		"root-on-testbed",
		"suggested-normal-user=" + NormalUser,
	}
}

// hostPath returns where the host sees the testbed path tbPath: below
// /proc/<init>/root, which resolves through the testbed's mount namespace.
// It is valid until the next Revert or Close.
//
// It is deliberately not offered as DowntmpHost (autopkgtest's
// "downtmp-host" capability) yet: autopkgtest then writes files such as
// its dependency package straight into that directory and asks to copy
// them down from there, so the virt server must turn such a copy into a
// no-op, as VirtSubproc's copydown_shareddir does.
func (b *Backend) hostPath(tbPath string) (string, bool) {
	if b.cur == nil || !filepath.IsAbs(tbPath) {
		return "", false
	}
	return filepath.Join(b.procRoot(b.cur), filepath.Clean(tbPath)), true
}

func (b *Backend) procRoot(in *instance) string {
	return "/proc/" + strconv.Itoa(in.cmd.Process.Pid) + "/root"
}

// Open starts a fresh testbed.
func (b *Backend) Open(ctx context.Context) ([]string, error) {
	if b.cur != nil {
		b.stop(b.cur)
		b.cur = nil
	}
	in, err := b.start(ctx)
	if err != nil {
		return nil, err
	}
	b.cur = in
	return b.prefix(in), nil
}

// Revert throws the testbed away and starts a fresh one. The old upper
// layer is deleted in the background; Close waits for that.
func (b *Backend) Revert(ctx context.Context) ([]string, error) {
	return b.Open(ctx)
}

// Close stops the testbed and waits until every discarded upper layer is
// deleted. It is idempotent.
func (b *Backend) Close(ctx context.Context) error {
	if b.cur != nil {
		b.stop(b.cur)
		b.cur = nil
	}
	done := make(chan struct{})
	go func() {
		b.trash.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("overlay: close: %w", context.Cause(ctx))
	}
}

// prefix is the argv prefix that runs a command in the testbed. The test
// for the marker file that init created in the testbed's /run stops an old
// prefix from running anything once the testbed is gone, even if its init's
// PID has been reused by a host process. Under sudo the prefix calls this
// program in exec mode through sudo, which makes the same check and more
// (CheckTestbed).
func (b *Backend) prefix(in *instance) []string {
	pid := strconv.Itoa(in.cmd.Process.Pid)
	if b.opts.Sudo != "" {
		return []string{b.opts.Sudo, "-n", b.opts.Init, "overlay", ExecArg, in.id, pid, "--"}
	}
	script := `test -e "/proc/$0/root/run/$1" || { echo "sparegrid overlay: testbed $1 is gone" >&2; exit 255; }; `
	if in.cg != "" {
		script += `echo $$ >"$2/cgroup.procs" || exit 255; shift; `
	}
	script += `shift; exec nsenter --target "$0" --mount --uts --ipc --pid --root --wd -- env -i PATH=` + testbedPath + ` SHELL=/bin/sh "$@"`
	argv := []string{"sh", "-c", script, pid, in.id}
	if in.cg != "" {
		argv = append(argv, in.cg)
	}
	return argv
}

// sudoFor returns the sudo program an exec prefix must go through: set
// when the server runs as root on behalf of a user who ran it with sudo
// (SUDO_UID names someone other than root), empty otherwise.
func sudoFor(euid int, getenv func(string) string) string {
	if euid != 0 {
		return ""
	}
	if uid, err := strconv.Atoi(getenv("SUDO_UID")); err != nil || uid <= 0 {
		return ""
	}
	if p, err := exec.LookPath("sudo"); err == nil && filepath.IsAbs(p) {
		return p
	}
	return "/usr/bin/sudo"
}

func randomID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return testbed.Prefix + hex.EncodeToString(b[:])
}

// start creates a testbed directory, starts its init and creates the
// normal user.
func (b *Backend) start(ctx context.Context) (_ *instance, err error) {
	if err := os.MkdirAll(b.opts.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	in := &instance{id: randomID()}
	in.dir = filepath.Join(b.opts.WorkDir, in.id)
	if err := os.Mkdir(in.dir, 0o700); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	lock, err := lockDir(in.dir, false)
	if err != nil {
		os.RemoveAll(in.dir)
		return nil, err
	}
	in.lock = lock
	defer func() {
		if err != nil {
			b.stop(in)
			b.trash.Wait()
		}
	}()
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(in.dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("overlay: %w", err)
		}
	}
	if b.opts.Memory > 0 || b.opts.Pids > 0 {
		cg, err := createCgroup(b.opts.CgroupRoot, in.id, b.opts.Memory, b.opts.Pids)
		switch {
		case errors.Is(err, errNoCgroup2):
			if !b.limitsWarned {
				b.warnf("overlay: cgroup v2 is not available at %s; memory and process limits are not enforced", b.opts.CgroupRoot)
				b.limitsWarned = true
			}
		case err != nil:
			return nil, err
		default:
			in.cg = cg
		}
	}
	if err := b.startInit(ctx, in); err != nil {
		return nil, err
	}
	if err := addUser(ctx, b.procRoot(in)); err != nil {
		return nil, err
	}
	return in, nil
}

func (b *Backend) warnf(format string, args ...any) {
	w := b.opts.Log
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, format+"\n", args...)
}

func (b *Backend) startInit(ctx context.Context, in *instance) error {
	logf, err := os.Create(filepath.Join(in.dir, "init.log"))
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	defer logf.Close()
	rp, wp, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	defer rp.Close()
	cmd := exec.Command(b.opts.Init, InitArg,
		b.opts.RootFS,
		filepath.Join(in.dir, "upper"),
		filepath.Join(in.dir, "work"),
		filepath.Join(in.dir, "merged"),
		in.id,
	)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + testbedPath}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{wp}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true,
	}
	if in.cg != "" {
		cg, err := os.Open(in.cg)
		if err != nil {
			wp.Close()
			return fmt.Errorf("overlay: %w", err)
		}
		defer cg.Close()
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(cg.Fd())
	}
	err = cmd.Start()
	wp.Close()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInit, err)
	}
	in.cmd = cmd
	if err := writeInitRecord(in.dir, cmd.Process.Pid); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	defer stop()
	msg, _ := io.ReadAll(io.LimitReader(rp, 64))
	if string(msg) != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		in.cmd = nil
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrInit, context.Cause(ctx))
		}
		log, _ := os.ReadFile(filepath.Join(in.dir, "init.log"))
		return fmt.Errorf("%w: %s", ErrInit, strings.TrimSpace(string(log)))
	}
	return nil
}

// addUser creates NormalUser in the testbed whose root the host sees at
// root, with the testbed's own useradd configuration.
func addUser(ctx context.Context, root string) error {
	out, err := exec.CommandContext(ctx, "useradd", "--root", root, "--create-home", "--shell", "/bin/sh", NormalUser).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: useradd: %w: %s", ErrInit, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// stop kills in's init, which takes every process of the testbed and its
// mounts with it, and deletes in's directory in the background.
func (b *Backend) stop(in *instance) {
	if in.cmd != nil {
		in.cmd.Process.Kill()
		in.cmd.Wait()
		in.cmd = nil
	}
	os.Remove(filepath.Join(in.dir, "init"))
	b.trash.Add(1)
	go func() {
		defer b.trash.Done()
		removeTestbed(in.dir, in.cg)
		if in.lock != nil {
			in.lock.Close()
		}
	}()
}

// removeTestbed deletes a stopped testbed's directory and cgroup.
func removeTestbed(dir, cg string) error {
	var errs []error
	if cg != "" {
		errs = append(errs, removeCgroup(cg))
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("overlay: %w", err))
	}
	return errors.Join(errs...)
}

// lockDir takes an exclusive flock on dir, held while its testbed exists.
// With nonBlocking, a lock held by someone else gives errBusy.
func lockDir(dir string, nonBlocking bool) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	how := syscall.LOCK_EX
	if nonBlocking {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errBusy
		}
		return nil, fmt.Errorf("overlay: lock %s: %w", dir, err)
	}
	return f, nil
}

var errBusy = errors.New("overlay: testbed in use")

// writeInitRecord stores the init's PID and start time, so that Cleanup can
// tell a leftover init from an unrelated process that reused its PID.
func writeInitRecord(dir string, pid int) error {
	start, err := startTime(pid)
	if err != nil {
		return err
	}
	data := fmt.Sprintf("%d %d\n", pid, start)
	if err := os.WriteFile(filepath.Join(dir, "init"), []byte(data), 0o644); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	return nil
}

// startTime returns field 22 of /proc/<pid>/stat, the process's start time
// in clock ticks since boot.
func startTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("overlay: %w", err)
	}
	return parseStartTime(string(data))
}

var errBadStat = errors.New("overlay: bad /proc stat line")

func parseStartTime(stat string) (uint64, error) {
	// The command name (field 2) is in parentheses and may contain spaces
	// and parentheses; the fields after the last ')' are plain.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errBadStat
	}
	fields := strings.Fields(stat[i+1:])
	const startField = 22 - 3 // fields 1 and 2 are before ')'; index from 0
	if len(fields) <= startField {
		return 0, errBadStat
	}
	n, err := strconv.ParseUint(fields[startField], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errBadStat, err)
	}
	return n, nil
}

// Cleanup removes the directories (and cgroups) of testbeds whose server
// is gone: no one holds their lock. A leftover init still running is
// killed first.
func (b *Backend) Cleanup(ctx context.Context) error {
	matches, err := filepath.Glob(filepath.Join(b.opts.WorkDir, testbed.Prefix+"*"))
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	var errs []error
	for _, dir := range matches {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("overlay: cleanup: %w", context.Cause(ctx))
		}
		if b.cur != nil && dir == b.cur.dir {
			continue
		}
		lock, err := lockDir(dir, true)
		if errors.Is(err, errBusy) || errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		killLeftoverInit(dir)
		cg := filepath.Join(b.opts.CgroupRoot, filepath.Base(dir))
		if _, err := os.Stat(filepath.Join(cg, "cgroup.procs")); err != nil {
			cg = ""
		}
		if err := removeTestbed(dir, cg); err != nil {
			errs = append(errs, err)
		}
		lock.Close()
	}
	return errors.Join(errs...)
}

// killLeftoverInit kills the init recorded in dir if it still runs.
func killLeftoverInit(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "init"))
	if err != nil {
		return
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(string(data), "%d %d", &pid, &start); err != nil || pid <= 1 {
		return
	}
	if alive(pid, start) {
		syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, start)
	}
}

// alive reports whether the process pid that started at start still runs
// (exists and is not a zombie).
func alive(pid int, start uint64) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	got, err := parseStartTime(string(data))
	if err != nil || got != start {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return !strings.HasPrefix(string(data[i:]), ") Z")
}

// waitGone waits until pid with the given start time no longer exists. A
// process that is not our child cannot be waited for; polling /proc is the
// only way.
func waitGone(pid int, start uint64) {
	for range 10000 {
		if !alive(pid, start) {
			return
		}
		syscall.Nanosleep(&syscall.Timespec{Nsec: 1e6}, nil)
	}
}
