package images

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeLVM installs fakes of lvs and lvcreate that keep volumes as files in
// state/VG/ and log their argv to state/log, and returns the PATH to use.
func fakeLVM(t *testing.T, vg string, lvs ...string) (path, state string) {
	t.Helper()
	dir := t.TempDir()
	bin, state := filepath.Join(dir, "bin"), filepath.Join(dir, "state")
	for _, d := range []string{bin, filepath.Join(state, vg)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, lv := range lvs {
		if err := os.WriteFile(filepath.Join(state, vg, lv), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	head := "#!/bin/sh\nSTATE='" + state + "'\necho \"${0##*/} $*\" >>\"$STATE/log\"\n"
	fakes := map[string]string{
		"lvs": `for a; do t=$a; done
[ -e "$STATE/$t" ] || { echo "Volume group \"$t\" not found" >&2; exit 5; }
case $t in */*) echo "  ${t#*/}" ;; *) for f in "$STATE/$t"/*; do [ -e "$f" ] && echo "  ${f##*/}"; done ;; esac
exit 0
`,
		"lvcreate": `[ "$1 $2" = "--yes --name" ] && [ "$4" = --size ] || { echo "fake lvcreate: unexpected $*" >&2; exit 3; }
[ ! -e "$STATE/$6/$3" ] || { echo "exists" >&2; exit 5; }
: >"$STATE/$6/$3"
`,
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(head+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin + ":" + os.Getenv("PATH"), state
}

func script(t *testing.T, path, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "./"+name, args...)
	cmd.Env = append(os.Environ(), "PATH="+path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out), 0
}

func logOf(t *testing.T, state string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(state, "log"))
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestHelp(t *testing.T) {
	for _, name := range []string{"sparegrid-xen-lvm-setup", "sparegrid-xen-image-build"} {
		t.Run(name, func(t *testing.T) {
			out, code := script(t, os.Getenv("PATH"), name, "--help")
			if code != 0 || !strings.HasPrefix(out, "Usage: "+name) {
				t.Errorf("%s --help = %d, %q; want 0 and usage", name, code, out)
			}
			if _, code := script(t, os.Getenv("PATH"), name, "--bogus"); code != 2 {
				t.Errorf("%s --bogus exit = %d, want 2", name, code)
			}
		})
	}
}

func TestLVMSetup(t *testing.T) {
	args := []string{"--vg", "sparegrid", "--release", "bookworm", "--release", "trixie"}
	path, state := fakeLVM(t, "sparegrid", "sparegrid-base-bookworm", "root")

	out, code := script(t, path, "sparegrid-xen-lvm-setup", append(args, "--dry-run")...)
	if code != 0 {
		t.Fatalf("--dry-run exit = %d: %s", code, out)
	}
	wantDry := []string{
		"+ lvcreate --yes --name sparegrid-base-trixie --size 10G sparegrid",
		"+ lvcreate --yes --name sparegrid-scratch --size 8G sparegrid",
	}
	if diff := cmp.Diff(wantDry, plusLines(out)); diff != "" {
		t.Errorf("--dry-run commands (-want +got):\n%s", diff)
	}
	if !strings.Contains(out, "exists: sparegrid/sparegrid-base-bookworm") {
		t.Errorf("--dry-run output %q does not report the existing base", out)
	}
	if diff := cmp.Diff([]string{"lvs --noheadings -o lv_name sparegrid"}, logOf(t, state)); diff != "" {
		t.Errorf("--dry-run ran (-want +got):\n%s", diff)
	}

	if out, code := script(t, path, "sparegrid-xen-lvm-setup", args...); code != 1 || !strings.Contains(out, "--yes") {
		t.Errorf("without --yes = %d, %q; want 1 and a hint to use --yes", code, out)
	}
	if got := logOf(t, state); len(got) != 1 {
		t.Errorf("without --yes ran %q, want only lvs", got)
	}

	if out, code := script(t, path, "sparegrid-xen-lvm-setup", append(args, "--yes")...); code != 0 {
		t.Fatalf("--yes exit = %d: %s", code, out)
	}
	want := []string{
		"lvs --noheadings -o lv_name sparegrid",
		"lvcreate --yes --name sparegrid-base-trixie --size 10G sparegrid",
		"lvcreate --yes --name sparegrid-scratch --size 8G sparegrid",
	}
	if diff := cmp.Diff(want, logOf(t, state)); diff != "" {
		t.Errorf("--yes ran (-want +got):\n%s", diff)
	}

	out, code = script(t, path, "sparegrid-xen-lvm-setup", append(args, "--yes")...)
	if code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("second --yes = %d, %q; want 0 and nothing to do", code, out)
	}
	if diff := cmp.Diff([]string{"lvs --noheadings -o lv_name sparegrid"}, logOf(t, state)); diff != "" {
		t.Errorf("second --yes ran (-want +got):\n%s", diff)
	}

	if out, code := script(t, path, "sparegrid-xen-lvm-setup", "--vg", "missing", "--yes"); code != 1 {
		t.Errorf("missing volume group = %d, %q; want 1", code, out)
	}
}

func plusLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "+ ") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestImageBuildDryRun(t *testing.T) {
	path, state := fakeLVM(t, "sparegrid", "sparegrid-base-bookworm")
	key := filepath.Join(t.TempDir(), "id.pub")
	if err := os.WriteFile(key, []byte("ssh-ed25519 AAAA test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--vg", "sparegrid", "--release", "bookworm", "--authorized-key", key,
		"--address", "192.0.2.10/24", "--gateway", "192.0.2.1",
		"--config-dir", "/C", "--images-dir", "/I", "--ssh-key", "/K",
	}
	if out, code := script(t, path, "sparegrid-xen-image-build", args...); code != 2 || !strings.Contains(out, "--yes") {
		t.Errorf("without --yes = %d, %q; want 2 and a hint to use --yes", code, out)
	}
	out, code := script(t, path, "sparegrid-xen-image-build", append(args, "--save", "--dry-run")...)
	if code != 0 {
		t.Fatalf("--dry-run exit = %d: %s", code, out)
	}
	got := plusLines(out)
	var mnt string
	for _, l := range got {
		if m, ok := strings.CutPrefix(l, "+ mount /dev/sparegrid/sparegrid-base-bookworm "); ok {
			mnt = m
		}
	}
	if mnt == "" {
		t.Fatalf("no mount in %q", got)
	}
	got = strings.Split(strings.ReplaceAll(strings.Join(got, "\n"), mnt, "MNT"), "\n")
	ssh := `ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/C/bookworm.known_hosts -o IdentitiesOnly=yes -i /K root@192.0.2.10 --`
	want := []string{
		"+ mkfs.ext4 -q -F -L sparegrid-root /dev/sparegrid/sparegrid-base-bookworm",
		"+ mount /dev/sparegrid/sparegrid-base-bookworm MNT",
		"+ mmdebstrap --variant=minbase --include=systemd-sysv\\,udev\\,openssh-server\\,linux-image-amd64\\,iproute2\\,ca-certificates bookworm MNT http://deb.debian.org/debian",
		"+ install -d -m 0700 MNT/root/.ssh",
		"+ install -m 0600 " + key + " MNT/root/.ssh/authorized_keys",
		"+ write MNT/etc/systemd/network/50-sparegrid.network",
		"+ write MNT/etc/fstab",
		"+ write MNT/etc/hostname",
		"+ chroot MNT systemctl enable systemd-networkd ssh",
		"+ install -d -m 0755 /C /I/bookworm",
		"+ write /C/bookworm.known_hosts",
		"+ copy the newest MNT/boot/vmlinuz-\\* and its initrd to /I/bookworm",
		"+ umount MNT",
		"+ write /C/bookworm.cfg.in",
		"+ write /I/bookworm.build.cfg",
		"+ xl create /I/bookworm.build.cfg",
		"+ " + ssh + " true",
		"+ " + ssh + " sync",
		"+ xl save sparegrid-build-bookworm /I/bookworm.save",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("--dry-run commands (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"lvs --noheadings -o lv_name sparegrid/sparegrid-base-bookworm"}, logOf(t, state)); diff != "" {
		t.Errorf("--dry-run ran (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(mnt); err == nil {
		t.Errorf("temporary mount point %s left behind", mnt)
	}

	if out, code := script(t, path, "sparegrid-xen-image-build", "--vg", "sparegrid", "--release", "trixie", "--authorized-key", key,
		"--address", "192.0.2.10/24", "--gateway", "192.0.2.1", "--dry-run"); code == 0 {
		t.Errorf("missing base volume = 0, %q; want failure", out)
	}
}

func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck)")
	}
	out, err := exec.CommandContext(t.Context(), sc, "sparegrid-xen-lvm-setup", "sparegrid-xen-image-build").CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
