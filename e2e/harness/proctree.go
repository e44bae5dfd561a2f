package harness

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Descendants returns the ids of live processes below root in the process
// tree whose command line starts with prefix, as Processes does. Tests use
// it to find the processes of their own agent when other agents on the
// host may run the same test.
func Descendants(root int, prefix string) []int {
	parent := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(d); ok {
			parent[pid] = ppid
		}
	}
	var out []int
	for _, pid := range Processes(prefix) {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// parentOf reads the parent id from the stat file of /proc directory d.
func parentOf(d string) (int, bool) {
	stat, err := os.ReadFile(filepath.Join(d, "stat"))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	return ppid, err == nil
}

// Alive returns those of pids that are still live processes whose command
// line starts with prefix, so that a reused id does not count.
func Alive(pids []int, prefix string) []int {
	live := Processes(prefix)
	var out []int
	for _, p := range pids {
		if slices.Contains(live, p) {
			out = append(out, p)
		}
	}
	return out
}
