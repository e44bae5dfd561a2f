package virt

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSudoOwner(t *testing.T) {
	tests := []struct {
		name     string
		euid     int
		uid, gid string
		want     *owner
	}{
		{"root through sudo", 0, "1000", "1001", &owner{uid: 1000, gid: 1001}},
		{"not root", 1000, "1000", "1000", nil},
		{"no sudo", 0, "", "", nil},
		{"uid only", 0, "1000", "", nil},
		{"negative uid", 0, "-1", "1000", nil},
		{"uid -1 as unsigned", 0, "4294967295", "1000", nil},
		{"uid too large", 0, "4294967296", "1000", nil},
		{"not a number", 0, "1000", "users", nil},
		{"space", 0, " 1000", "1000", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"SUDO_UID": tt.uid, "SUDO_GID": tt.gid}
			got := sudoOwner(tt.euid, func(k string) string { return env[k] })
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(owner{})); diff != "" {
				t.Errorf("sudoOwner(%d, %q, %q) mismatch (-want +got):\n%s", tt.euid, tt.uid, tt.gid, diff)
			}
		})
	}
}

func TestChownTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	const uid, gid = 65534, 65533
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "up")
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a/b/f", "top"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "c/link")); err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(single, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{root, single} {
		if err := chownTree(p, uid, gid); err != nil {
			t.Fatalf("chownTree(%s): %v", p, err)
		}
	}
	for _, rel := range []string{".", "a", "a/b", "a/b/f", "c", "c/link", "top"} {
		assertOwner(t, filepath.Join(root, rel), uid, gid)
	}
	assertOwner(t, single, uid, gid)
	assertOwner(t, outside, 0, 0)
}

func assertOwner(t *testing.T, p string, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("owner of %s = %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
}
