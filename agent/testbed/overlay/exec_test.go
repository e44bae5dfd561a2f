package overlay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExecArgs(t *testing.T) {
	const id = "sparegrid-tb-0123456789abcdef"
	tests := []struct {
		name    string
		args    []string
		wantPID int
		wantCmd []string
		wantErr error
	}{
		{"good", []string{id, "42", "--", "sh", "-c", "true"}, 42, []string{"sh", "-c", "true"}, nil},
		{"no command", []string{id, "42", "--"}, 0, nil, ErrUsage},
		{"no separator", []string{id, "42", "sh", "x"}, 0, nil, ErrUsage},
		{"bad id", []string{"../../etc", "42", "--", "sh"}, 0, nil, ErrUsage},
		{"id of another prefix", []string{"mytb-0123456789abcdef", "42", "--", "sh"}, 0, nil, ErrUsage},
		{"pid 1", []string{id, "1", "--", "sh"}, 0, nil, ErrUsage},
		{"pid not a number", []string{id, "self", "--", "sh"}, 0, nil, ErrUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotID, pid, cmd, err := ExecArgs(tt.args)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ExecArgs(%q) error = %v, want %v", tt.args, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if gotID != id || pid != tt.wantPID || !cmp.Equal(cmd, tt.wantCmd) {
				t.Errorf("ExecArgs(%q) = %q, %d, %q; want %q, %d, %q", tt.args, gotID, pid, cmd, id, tt.wantPID, tt.wantCmd)
			}
		})
	}
}

// fakeProc builds a /proc with "self" and one process 4242 that passes
// every check of CheckTestbed; edit then breaks one thing.
func fakeProc(t *testing.T, id string, edit func(proc, p string)) string {
	t.Helper()
	proc := t.TempDir()
	bin := filepath.Join(t.TempDir(), "autopkgtest-virt-sparegrid")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(proc, "self")
	p := filepath.Join(proc, "4242")
	for _, d := range []string{filepath.Join(self, "ns"), filepath.Join(p, "ns"), filepath.Join(p, "root", "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(bin, filepath.Join(self, "exe")))
	must(os.Symlink(bin, filepath.Join(p, "exe")))
	must(os.Symlink("user:[4026531837]", filepath.Join(self, "ns", "user")))
	must(os.Symlink("user:[4026531837]", filepath.Join(p, "ns", "user")))
	argv := []string{bin, InitArg, "/rootfs", "/w/upper", "/w/work", "/w/merged", id}
	must(os.WriteFile(filepath.Join(p, "cmdline"), []byte(strings.Join(argv, "\x00")+"\x00"), 0o644))
	must(os.WriteFile(filepath.Join(p, "status"), []byte("Name:\tsparegrid\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"), 0o644))
	must(os.WriteFile(filepath.Join(p, "root", "run", id), nil, 0o644))
	if edit != nil {
		edit(proc, p)
	}
	return proc
}

func TestCheckTestbed(t *testing.T) {
	const id = "sparegrid-tb-0123456789abcdef"
	replace := func(name, content string) func(proc, p string) {
		return func(proc, p string) {
			os.Remove(filepath.Join(p, name))
			if err := os.WriteFile(filepath.Join(p, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	relink := func(name, target string) func(proc, p string) {
		return func(proc, p string) {
			os.Remove(filepath.Join(p, name))
			if err := os.Symlink(target, filepath.Join(p, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	otherBin := filepath.Join(t.TempDir(), "sh")
	if err := os.WriteFile(otherBin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(proc, p string)
		want error
	}{
		{"live testbed", nil, nil},
		{"another program", relink("exe", otherBin), ErrNotTestbed},
		{"not an init", replace("cmdline", "/bin/sh\x00-c\x00true\x00"), ErrNotTestbed},
		{"init of another testbed", replace("cmdline", "/x\x00"+InitArg+"\x00a\x00b\x00c\x00d\x00sparegrid-tb-ffffffffffffffff\x00"), ErrNotTestbed},
		{"not root", replace("status", "Uid:\t1000\t1000\t1000\t1000\nGid:\t0\t0\t0\t0\n"), ErrNotTestbed},
		{"status without gid", replace("status", "Uid:\t0\t0\t0\t0\n"), ErrNotTestbed},
		{"user namespace", relink("ns/user", "user:[4026532999]"), ErrNotTestbed},
		{"testbed gone", func(proc, p string) { os.Remove(filepath.Join(p, "root", "run", id)) }, ErrNotTestbed},
		{"no such process", func(proc, p string) { os.RemoveAll(p) }, ErrNotTestbed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc := fakeProc(t, id, tt.edit)
			if err := CheckTestbed(proc, id, 4242); !errors.Is(err, tt.want) {
				t.Errorf("CheckTestbed = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSudoFor(t *testing.T) {
	env := func(uid string) func(string) string {
		return func(k string) string {
			if k == "SUDO_UID" {
				return uid
			}
			return ""
		}
	}
	tests := []struct {
		name string
		euid int
		uid  string
		want bool
	}{
		{"root under sudo for a user", 0, "64055", true},
		{"root, no sudo", 0, "", false},
		{"root under sudo by root", 0, "0", false},
		{"not root", 64055, "64055", false},
		{"garbage SUDO_UID", 0, "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sudoFor(tt.euid, env(tt.uid))
			if (got != "") != tt.want || (got != "" && !filepath.IsAbs(got)) {
				t.Errorf("sudoFor(%d, SUDO_UID=%q) = %q, want set: %v", tt.euid, tt.uid, got, tt.want)
			}
		})
	}
}
