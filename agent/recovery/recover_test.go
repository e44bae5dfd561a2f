package recovery

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/internal/proctest"
	"github.com/sparegrid/sparegrid/agent/state"
)

// startGroup starts sh -c script as the leader of its own process group,
// with %[1]s in script replaced by a fresh sleep argument, and returns it
// once the script has printed "ready". The test kills what is left of the
// group and reaps the leader when it ends.
func startGroup(t *testing.T, script string) (*exec.Cmd, string) {
	t.Helper()
	marker := proctest.SleepArg()
	out := proctest.NewOutput("ready")
	cmd := exec.Command("sh", "-c", fmt.Sprintf(script, marker))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	select {
	case <-out.Ready():
	case <-exited:
		t.Fatalf("%q ended before it was ready: %s", script, out.String())
	}
	return cmd, marker
}

// jobDir makes a job's work directory in stateDir with some files, one
// of them in a directory the test left unwritable, and a run record with
// the given content unless it is empty.
func jobDir(t *testing.T, stateDir, name, record string) string {
	t.Helper()
	dir := filepath.Join(stateDir, state.WorkDir, name)
	for _, d := range []string{filepath.Join(dir, "out"), filepath.Join(dir, "src", "ro")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(dir, "out", "log"), filepath.Join(dir, "src", "ro", "file")} {
		if err := os.WriteFile(f, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "src", "ro"), 0o500); err != nil {
		t.Fatal(err)
	}
	if record != "" {
		if err := os.WriteFile(filepath.Join(dir, RecordFile), []byte(record), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func recordJSON(t *testing.T, rec Record) string {
	t.Helper()
	return fmt.Sprintf(`{"pgid":%d,"start_time":%d,"boot_id":%q}`, rec.PGID, rec.StartTime, rec.BootID)
}

func TestRecoverKillsGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"group exits on SIGTERM", "sleep %[1]s & sleep %[1]s & echo ready; wait"},
		{"group ignores SIGTERM", "trap '' TERM; sleep %[1]s & sleep %[1]s & echo ready; while :; do sleep %[1]s; done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stateDir := t.TempDir()
			cmd, marker := startGroup(t, tt.script)
			rec, err := NewRecord(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			dir := jobDir(t, stateDir, "job-12-1", recordJSON(t, rec))
			rep, err := Recover(t.Context(), Options{StateDir: stateDir, Grace: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			want := Report{Jobs: []Job{{Name: "job-12-1", ID: 12, Attempt: 1, Status: StatusKilled, Removed: true}}}
			if diff := cmp.Diff(want, rep); diff != "" {
				t.Errorf("Recover report mismatch (-want +got):\n%s", diff)
			}
			if rep.Killed() != 1 || rep.Removed() != 1 || !cmp.Equal(rep.JobIDs(), []int64{12}) {
				t.Errorf("Recover report counts = killed %d, removed %d, ids %v, want 1, 1, [12]", rep.Killed(), rep.Removed(), rep.JobIDs())
			}
			proctest.WaitGone(t, proctest.ArgContains(marker))
			if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("work directory %s left behind (stat error %v)", dir, err)
			}
		})
	}
}

// TestRecoverLeavesOthersAlone gives Recover records that do not name a
// running group of this boot, with a live process at the recorded pid
// where that matters, and checks that the process survives and every
// directory is removed.
func TestRecoverLeavesOthersAlone(t *testing.T) {
	cmd, marker := startGroup(t, "echo ready; exec sleep %[1]s")
	live, err := NewRecord(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	wrongStart := live
	wrongStart.StartTime++
	otherBoot := live
	otherBoot.BootID = "00000000-0000-4000-8000-000000000000"
	if otherBoot.BootID == live.BootID {
		otherBoot.BootID = "00000000-0000-4000-8000-000000000001"
	}
	self, err := NewRecord(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self.PGID = os.Getpid()
	self.StartTime++
	gone := live
	gone.PGID = maxPID

	stateDir := t.TempDir()
	records := []struct {
		name   string
		record string
		want   Job
	}{
		{"job-1-1", recordJSON(t, wrongStart), Job{ID: 1, Attempt: 1, Status: StatusMismatch}},
		{"job-2-1", recordJSON(t, otherBoot), Job{ID: 2, Attempt: 1, Status: StatusOtherBoot}},
		{"job-3-2", recordJSON(t, self), Job{ID: 3, Attempt: 2, Status: StatusMismatch}},
		{"job-4-1", recordJSON(t, gone), Job{ID: 4, Attempt: 1, Status: StatusExited}},
		{"job-5-1", "{not json", Job{ID: 5, Attempt: 1, Status: StatusMalformed}},
		{"job-6-3", "", Job{ID: 6, Attempt: 3, Status: StatusNoRecord}},
		{"job-x", "", Job{Status: StatusNoRecord}},
	}
	var want Report
	for _, r := range records {
		jobDir(t, stateDir, r.name, r.record)
		j := r.want
		j.Name = r.name
		j.Removed = true
		want.Jobs = append(want.Jobs, j)
	}
	others := []string{filepath.Join(stateDir, state.WorkDir, "other"), filepath.Join(stateDir, state.WorkDir, "job-file")}
	if err := os.Mkdir(others[0], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(others[1], nil, 0o644); err != nil {
		t.Fatal(err)
	}

	rep, err := Recover(t.Context(), Options{StateDir: stateDir, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	for i, j := range rep.Jobs {
		if j.Status == StatusMalformed && j.Detail == "" {
			t.Errorf("Recover job %s: malformed record without a detail", j.Name)
		}
		rep.Jobs[i].Detail = ""
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("Recover report mismatch (-want +got):\n%s", diff)
	}
	if rep.Killed() != 0 {
		t.Errorf("Recover killed %d groups, want 0", rep.Killed())
	}
	if ps := proctest.Processes(t, proctest.ArgContains(marker)); len(ps) != 1 {
		t.Errorf("processes with marker %s after Recover = %v, want the one sleep", marker, ps)
	}
	for _, r := range records {
		if _, err := os.Lstat(filepath.Join(stateDir, state.WorkDir, r.name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("work directory %s left behind (stat error %v)", r.name, err)
		}
	}
	for _, p := range others {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s is not a job's work directory but was removed: %v", p, err)
		}
	}
}

func TestRecoverNothingThere(t *testing.T) {
	tests := []struct {
		name  string
		setup func(stateDir string) error
	}{
		{"no work directory", func(string) error { return nil }},
		{"empty work directory", func(d string) error { return os.Mkdir(filepath.Join(d, state.WorkDir), 0o700) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stateDir := t.TempDir()
			if err := tt.setup(stateDir); err != nil {
				t.Fatal(err)
			}
			rep, err := Recover(t.Context(), Options{StateDir: stateDir, Backends: []string{"overlay", "xenlvm", "unshare"}})
			if err != nil || len(rep.Jobs) != 0 || len(rep.Cleanups) != 0 {
				t.Errorf("Recover(%s) = %+v, %v, want an empty report", tt.name, rep, err)
			}
		})
	}
}

var (
	testDigest  = "sha256:" + strings.Repeat("0", 64)
	overlayImg  = image.Image{Release: "bookworm", Arch: "amd64", Backend: image.BackendOverlay, Format: image.FormatDirectory, Digest: testDigest}
	overlayImg2 = image.Image{Release: "trixie", Arch: "amd64", Backend: image.BackendOverlay, Format: image.FormatDirectory, Digest: testDigest}
	tarImg      = image.Image{Release: "bookworm", Arch: "amd64", Backend: image.BackendUnshare, Digest: testDigest}
	xenArgs     = []string{"--vg", "vg0", "--base", "sparegrid-base-bookworm", "--sudo", "/usr/bin/sudo"}
	xenImg      = image.Image{Release: "bookworm", Arch: "amd64", Backend: image.BackendXenLVM, Format: image.FormatXenLVM,
		Args: xenArgs, Device: "/dev/vg0/sparegrid-base-bookworm", Digest: testDigest}
	xenImg2 = image.Image{Release: "trixie", Arch: "amd64", Backend: image.BackendXenLVM, Format: image.FormatXenLVM,
		Args: xenArgs, Device: "/dev/vg0/sparegrid-base-bookworm", Digest: testDigest}
)

func withImages(t *testing.T, imgs ...image.Image) string {
	t.Helper()
	stateDir := t.TempDir()
	for _, img := range imgs {
		if err := image.WriteRecord(stateDir, img); err != nil {
			t.Fatal(err)
		}
	}
	return stateDir
}

func TestCleanupCommands(t *testing.T) {
	const virt = "/usr/bin/autopkgtest-virt-sparegrid"
	sudo := []string{"/usr/bin/sudo", "-n"}
	all := []string{"overlay", "xenlvm", "unshare"}
	tests := []struct {
		name     string
		imgs     []image.Image
		backends []string
		sudo     []string
		virt     string
		want     []Cleanup
	}{
		{"every backend", []image.Image{overlayImg, overlayImg2, xenImg, xenImg2, tarImg}, all, nil, virt, []Cleanup{
			{Backend: "overlay", Argv: []string{virt, "overlay", "--cleanup"}},
			{Backend: "xenlvm", Argv: append([]string{virt, "xenlvm", "--cleanup"}, xenArgs...)},
		}},
		{"overlay through sudo", []image.Image{overlayImg, xenImg}, all, sudo, virt, []Cleanup{
			{Backend: "overlay", Argv: []string{"/usr/bin/sudo", "-n", virt, "overlay", "--cleanup"}},
			{Backend: "xenlvm", Argv: append([]string{virt, "xenlvm", "--cleanup"}, xenArgs...)},
		}},
		{"backend order", []image.Image{overlayImg, xenImg}, []string{"xenlvm", "overlay"}, nil, virt, []Cleanup{
			{Backend: "xenlvm", Argv: append([]string{virt, "xenlvm", "--cleanup"}, xenArgs...)},
			{Backend: "overlay", Argv: []string{virt, "overlay", "--cleanup"}},
		}},
		{"virt server from PATH", []image.Image{overlayImg}, all, nil, "", []Cleanup{
			{Backend: "overlay", Argv: []string{"autopkgtest-virt-sparegrid", "overlay", "--cleanup"}},
		}},
		{"backend not used", []image.Image{overlayImg, xenImg}, []string{"unshare"}, nil, virt, nil},
		{"no image for the backend", []image.Image{tarImg}, all, sudo, virt, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{StateDir: withImages(t, tt.imgs...), Backends: tt.backends, Sudo: tt.sudo, VirtServer: tt.virt}
			got, err := cleanupCommands(opts)
			if err != nil {
				t.Fatalf("cleanupCommands: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("cleanupCommands mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCleanupCommandsRejectsRelativeSudo(t *testing.T) {
	opts := Options{StateDir: withImages(t, overlayImg), Backends: []string{"overlay"}, Sudo: []string{"/usr/bin/sudo", "-n"}}
	if got, err := cleanupCommands(opts); !errors.Is(err, ErrCleanup) {
		t.Errorf("cleanupCommands(sudo, virt server from PATH) = %q, %v, want %v", got, err, ErrCleanup)
	}
}

// fakeVirt writes a virt server script that appends its arguments to a
// log and exits with status, and returns its path and the log's.
func fakeVirt(t *testing.T, status int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	path := filepath.Join(dir, "autopkgtest-virt-sparegrid")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> '%s'\necho cleanup output >&2\nexit %d\n", log, status)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func TestRecoverRunsCleanup(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		wantCalls string
		wantErr   error
		wantDone  int
	}{
		{"cleanup succeeds", 0, "overlay --cleanup\nxenlvm --cleanup " + strings.Join(xenArgs, " ") + "\n", nil, 2},
		{"cleanup fails", 3, "overlay --cleanup\nxenlvm --cleanup " + strings.Join(xenArgs, " ") + "\n", ErrCleanup, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			virt, log := fakeVirt(t, tt.status)
			stateDir := withImages(t, overlayImg, xenImg)
			jobDir(t, stateDir, "job-7-1", "")
			rep, err := Recover(t.Context(), Options{StateDir: stateDir, Backends: []string{"overlay", "xenlvm"}, VirtServer: virt})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Recover error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "cleanup output") {
				t.Errorf("Recover error = %v, want it to quote the command's output", err)
			}
			if len(rep.Cleanups) != tt.wantDone {
				t.Errorf("Recover ran %d cleanups successfully (%+v), want %d", len(rep.Cleanups), rep.Cleanups, tt.wantDone)
			}
			if len(rep.Jobs) != 1 || !rep.Jobs[0].Removed {
				t.Errorf("Recover jobs = %+v, want job-7-1 removed", rep.Jobs)
			}
			calls, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantCalls, string(calls)); diff != "" {
				t.Errorf("virt server calls mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseJobName(t *testing.T) {
	tests := []struct {
		name    string
		id      int64
		attempt int
	}{
		{"job-12-1", 12, 1},
		{"job-9223372036854775807-3", 9223372036854775807, 3},
		{"job-12", 0, 0},
		{"job-a-1", 0, 0},
		{"job-12-b", 0, 0},
		{"job--1-1", 0, 0},
	}
	for _, tt := range tests {
		id, attempt := parseJobName(tt.name)
		if id != tt.id || attempt != tt.attempt {
			t.Errorf("parseJobName(%q) = %d, %d, want %d, %d", tt.name, id, attempt, tt.id, tt.attempt)
		}
	}
}
