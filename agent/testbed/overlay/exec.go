package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// ExecArg, after the backend name, selects exec mode: the virt server,
// started through sudo by an unprivileged caller, runs one command in a
// live testbed instead of serving the protocol. It is what the exec prefix
// of a server that itself runs under sudo calls, so that autopkgtest, which
// runs that prefix as the unprivileged user, can reach the testbed through
// the same sudo rule that started the server.
//
//	autopkgtest-virt-sparegrid overlay --exec TESTBED-ID INIT-PID -- COMMAND...
const ExecArg = "--exec"

// ErrNotTestbed means exec mode was pointed at something that is not a
// live sparegrid overlay testbed.
var ErrNotTestbed = errors.New("overlay: not a live sparegrid testbed")

var testbedIDRe = regexp.MustCompile(`^sparegrid-tb-[0-9a-f]{16}$`)

// ExecArgs parses the arguments after ExecArg: the testbed id, its init's
// pid, "--" and the command.
func ExecArgs(args []string) (id string, pid int, cmd []string, err error) {
	if len(args) < 4 || args[2] != "--" {
		return "", 0, nil, fmt.Errorf("%w: want %s TESTBED-ID INIT-PID -- COMMAND...", ErrUsage, ExecArg)
	}
	id = args[0]
	if !testbedIDRe.MatchString(id) {
		return "", 0, nil, fmt.Errorf("%w: testbed id %q", ErrUsage, id)
	}
	pid, err = strconv.Atoi(args[1])
	if err != nil || pid <= 1 {
		return "", 0, nil, fmt.Errorf("%w: init pid %q", ErrUsage, args[1])
	}
	return id, pid, args[3:], nil
}

// procDir is /proc, a variable only for the checks' tests.
const procDir = "/proc"

// CheckTestbed makes sure pid is the init of the live testbed id started
// by this same program as root in the host's user namespace, so exec mode
// never enters namespaces that somebody else built: a process of another
// program, another user, a user namespace, or a testbed that is gone is
// refused with ErrNotTestbed.
func CheckTestbed(proc string, id string, pid int) error {
	p := filepath.Join(proc, strconv.Itoa(pid))
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: process %d: %s", ErrNotTestbed, pid, fmt.Sprintf(format, args...))
	}
	raw, err := os.ReadFile(filepath.Join(p, "cmdline"))
	if err != nil {
		return bad("%v", err)
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if len(argv) != 7 || argv[1] != InitArg || argv[6] != id {
		return bad("is not the init of testbed %s", id)
	}
	self, err := os.Stat(filepath.Join(proc, "self", "exe"))
	if err != nil {
		return bad("%v", err)
	}
	exe, err := os.Stat(filepath.Join(p, "exe"))
	if err != nil || !os.SameFile(self, exe) {
		return bad("does not run this program")
	}
	status, err := os.ReadFile(filepath.Join(p, "status"))
	if err != nil {
		return bad("%v", err)
	}
	if !rootOwned(status) {
		return bad("does not run as root")
	}
	myNS, err1 := os.Readlink(filepath.Join(proc, "self", "ns", "user"))
	itsNS, err2 := os.Readlink(filepath.Join(p, "ns", "user"))
	if err1 != nil || err2 != nil || myNS != itsNS {
		return bad("is in another user namespace")
	}
	if _, err := os.Stat(filepath.Join(p, "root", "run", id)); err != nil {
		return bad("testbed %s is gone", id)
	}
	return nil
}

// rootOwned reports whether every uid and gid of a /proc/PID/status is 0.
func rootOwned(status []byte) bool {
	seen := 0
	for _, line := range bytes.Split(status, []byte("\n")) {
		for _, key := range []string{"Uid:", "Gid:"} {
			rest, ok := bytes.CutPrefix(line, []byte(key))
			if !ok {
				continue
			}
			seen++
			f := strings.Fields(string(rest))
			if len(f) != 4 {
				return false
			}
			for _, v := range f {
				if v != "0" {
					return false
				}
			}
		}
	}
	return seen == 2
}

// execCommand is the nsenter command line that runs argv in the testbed
// whose init is pid.
func execCommand(pid int, argv []string) []string {
	return append([]string{"nsenter", "--target", strconv.Itoa(pid), "--mount", "--uts", "--ipc", "--pid", "--root", "--wd", "--",
		"env", "-i", "PATH=" + testbedPath, "SHELL=/bin/sh"}, argv...)
}

// ExecMain is exec mode (see ExecArg): it checks the testbed and replaces
// the process with nsenter running the command there. It returns only on
// error, with the exit status autopkgtest reads as "the program failed".
func ExecMain(args []string) int {
	id, pid, argv, err := ExecArgs(args)
	if err == nil {
		err = CheckTestbed(procDir, id, pid)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sparegrid overlay: %v\n", err)
		return 255
	}
	cmd := execCommand(pid, argv)
	nsenter, err := exec.LookPath(cmd[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "sparegrid overlay: %v\n", err)
		return 255
	}
	err = syscall.Exec(nsenter, cmd, []string{"PATH=" + testbedPath})
	fmt.Fprintf(os.Stderr, "sparegrid overlay: exec nsenter: %v\n", err)
	return 255
}
