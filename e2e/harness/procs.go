package harness

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Processes returns the ids of live processes whose command line, with
// arguments joined by spaces, starts with prefix. Zombies are left out.
// Tests use it to see whether a test inside a testbed is still running,
// since the testbeds' pid namespaces are visible from the host.
func Processes(prefix string) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		cmdline := string(bytes.ReplaceAll(bytes.TrimRight(raw, "\x00"), []byte{0}, []byte{' '}))
		if !strings.HasPrefix(cmdline, prefix) || zombie(d) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// zombie reports whether the process in /proc directory d has exited and
// awaits its parent's wait.
func zombie(d string) bool {
	stat, err := os.ReadFile(filepath.Join(d, "stat"))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}
