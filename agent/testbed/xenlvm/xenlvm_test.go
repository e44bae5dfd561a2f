package xenlvm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/installer/sudoers"
)

func TestOpenRevertClose(t *testing.T) {
	tests := []struct {
		name  string
		cow   string
		saved bool
		open  []string // commands of Open, without the ssh probe
		stop  []string // commands that remove testbed ID1
	}{
		{
			name: "lvm snapshot",
			cow:  CoWLVM,
			open: []string{
				"lvcreate --snapshot --name sparegrid-tb-ID1 --size 4G sparegrid/sparegrid-base-bookworm",
				"lvs --noheadings -o origin sparegrid/sparegrid-tb-ID1",
				"xl create LOCK/sparegrid-tb-ID1.cfg",
				"ssh root@192.0.2.10",
			},
			stop: []string{
				"xl list",
				"lvs --noheadings -o lv_name sparegrid",
				"xl destroy sparegrid-tb-ID1",
				"lvremove -f sparegrid/sparegrid-tb-ID1",
			},
		},
		{
			name: "dm snapshot over scratch",
			cow:  CoWDM,
			open: []string{
				"lvs --noheadings --units s --nosuffix -o lv_size sparegrid/sparegrid-base-bookworm",
				"dmsetup create sparegrid-tb-ID1 --table 0 16777216 snapshot /dev/sparegrid/sparegrid-base-bookworm /dev/sparegrid/sparegrid-scratch N 8",
				"dmsetup table sparegrid-tb-ID1",
				"xl create LOCK/sparegrid-tb-ID1.cfg",
				"ssh root@192.0.2.10",
			},
			stop: []string{
				"xl list",
				"dmsetup ls",
				"xl destroy sparegrid-tb-ID1",
				"dmsetup remove sparegrid-tb-ID1",
			},
		},
		{
			name:  "restore saved image",
			cow:   CoWLVM,
			saved: true,
			open: []string{
				"lvcreate --snapshot --name sparegrid-tb-ID1 --size 4G sparegrid/sparegrid-base-bookworm",
				"lvs --noheadings -o origin sparegrid/sparegrid-tb-ID1",
				"xl restore LOCK/sparegrid-tb-ID1.cfg SAVED",
				"ssh root@192.0.2.10",
			},
			stop: []string{
				"xl list",
				"lvs --noheadings -o lv_name sparegrid",
				"xl destroy sparegrid-tb-ID1",
				"lvremove -f sparegrid/sparegrid-tb-ID1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t)
			c := h.config(tt.cow)
			if tt.saved {
				c.SavedImage = filepath.Join(t.TempDir(), "bookworm.save")
				if err := os.WriteFile(c.SavedImage, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b := newBackend(t, c)
			ctx := t.Context()
			fix := func(lines []string) []string {
				return normalise(strings.Split(strings.ReplaceAll(strings.Join(lines, "\n"), "SAVED", c.SavedImage), "\n"))
			}

			argv, err := b.Open(ctx)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if diff := cmp.Diff(fix(tt.open), h.log(c)); diff != "" {
				t.Errorf("Open commands (-want +got):\n%s", diff)
			}
			g := h.guests()
			if len(g) != 1 {
				t.Fatalf("guests after Open = %v, want one", g)
			}
			for name, disk := range g {
				if want := b.diskPath(name); disk != want {
					t.Errorf("guest %s disk = %q, want the snapshot %q", name, disk, want)
				}
			}
			run(t, argv, "sh", "-c", `printf '%s' "$1" > mark`, "sh", "it's changed")
			if got, _ := os.ReadFile(filepath.Join(h.state, "root", "mark")); string(got) != "it's changed" {
				t.Errorf("file written through the prefix = %q, want %q", got, "it's changed")
			}
			h.log(c)

			if _, err := b.Revert(ctx); err != nil {
				t.Fatalf("Revert: %v", err)
			}
			wantRevert := slices.Concat(tt.stop, strings.Split(strings.ReplaceAll(strings.Join(tt.open, "\n"), "ID1", "ID2"), "\n"))
			if diff := cmp.Diff(fix(wantRevert), h.log(c)); diff != "" {
				t.Errorf("Revert commands (-want +got):\n%s", diff)
			}

			if err := b.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if diff := cmp.Diff(tt.stop, h.log(c)); diff != "" {
				t.Errorf("Close commands (-want +got):\n%s", diff)
			}
			if got := h.ours(c.VG); len(got) != 0 {
				t.Errorf("testbed objects after Close = %v, want none", got)
			}
			wantLocks := []string{prefix + "sparegrid:sparegrid-base-bookworm.lock"}
			if tt.cow == CoWDM {
				wantLocks = append(wantLocks, prefix+"sparegrid:sparegrid-scratch.lock")
			}
			if diff := cmp.Diff(wantLocks, lockFiles(t, c.LockDir)); diff != "" {
				t.Errorf("lock dir after Close (-want +got):\n%s", diff)
			}

			if err := b.Close(ctx); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if got := h.log(c); len(got) != 0 {
				t.Errorf("second Close ran %q, want nothing", got)
			}
		})
	}
}

// run runs argv through an exec prefix and fails the test on error.
func run(t *testing.T, prefix []string, argv ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), prefix[0], append(slices.Clone(prefix[1:]), argv...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("run %q: %v: %s", argv, err, out)
	}
	return string(out)
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		user string
		want []string
	}{
		{"root", "root", []string{"revert", "revert-full-system", "isolation-machine", "root-on-testbed"}},
		{"normal user", "debci", []string{"revert", "revert-full-system", "isolation-machine"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeHost(t).config(CoWLVM)
			c.SSHUser = tt.user
			b := newBackend(t, c)
			if diff := cmp.Diff(tt.want, b.Capabilities()); diff != "" {
				t.Errorf("Capabilities() (-want +got):\n%s", diff)
			}
			if got := b.Name(); got != "xenlvm" {
				t.Errorf("Name() = %q, want xenlvm", got)
			}
		})
	}
}

func TestRefusesWithoutCopyOnWrite(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(h *fakeHost, c *Config)
		usage  bool // refused by New, before any command
		wantIs error
	}{
		{
			name:   "no cow",
			setup:  func(_ *fakeHost, c *Config) { c.CoW = "none" },
			usage:  true,
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name:   "scratch is the base",
			setup:  func(_ *fakeHost, c *Config) { c.CoW, c.Scratch = CoWDM, c.Base },
			usage:  true,
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name: "guest config names the base",
			setup: func(h *fakeHost, c *Config) {
				writeTemplate(h.t, c, strings.ReplaceAll(template, "@DISK@", "/dev/sparegrid/sparegrid-base-bookworm")+"# @DISK@\n")
			},
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name: "guest config names the base through device-mapper",
			setup: func(h *fakeHost, c *Config) {
				writeTemplate(h.t, c, strings.ReplaceAll(template, "@DISK@", "/dev/mapper/sparegrid-sparegrid--base--bookworm")+"# @DISK@\n")
			},
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name: "guest config names the scratch volume",
			setup: func(h *fakeHost, c *Config) {
				c.CoW = CoWDM
				writeTemplate(h.t, c, template+"disk2 = 'phy:/dev/sparegrid/sparegrid-scratch'\n")
			},
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name: "guest config without the snapshot disk",
			setup: func(h *fakeHost, c *Config) {
				writeTemplate(h.t, c, strings.ReplaceAll(template, "@DISK@", "/dev/xvda"))
			},
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name:   "lvcreate fails",
			setup:  func(h *fakeHost, _ *Config) { h.inject("lvcreate") },
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name:   "snapshot has the wrong origin",
			setup:  func(h *fakeHost, _ *Config) { h.inject("lvcreate-wrong-origin") },
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name:   "dmsetup create fails",
			setup:  func(h *fakeHost, c *Config) { c.CoW = CoWDM; h.inject("dmsetup-create") },
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name:   "dm device is not a snapshot",
			setup:  func(h *fakeHost, c *Config) { c.CoW = CoWDM; h.inject("dmsetup-linear") },
			wantIs: ErrNoCopyOnWrite,
		},
		{
			name:   "base volume missing",
			setup:  func(_ *fakeHost, c *Config) { c.Base = "sparegrid-base-trixie" },
			wantIs: ErrNoCopyOnWrite,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t)
			c := h.config(CoWLVM)
			tt.setup(h, &c)
			b, err := New(c)
			if tt.usage {
				if !errors.Is(err, tt.wantIs) {
					t.Fatalf("New = %v, want %v", err, tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			_, err = b.Open(t.Context())
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("Open = %v, want %v", err, tt.wantIs)
			}
			for _, l := range h.log(c) {
				if strings.HasPrefix(l, "xl create") || strings.HasPrefix(l, "xl restore") {
					t.Errorf("Open ran %q, want no guest started", l)
				}
			}
			if err := b.Close(t.Context()); err != nil {
				t.Errorf("Close: %v", err)
			}
			if got := h.ours(c.VG); len(got) != 0 {
				t.Errorf("testbed objects after refusal = %v, want none", got)
			}
		})
	}
}

func writeTemplate(t *testing.T, c *Config, text string) {
	t.Helper()
	if err := os.WriteFile(c.GuestConfig, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFailedOpenLeavesNothing(t *testing.T) {
	tests := []struct {
		name   string
		inject func(h *fakeHost)
		wantIs error
	}{
		{"xl create fails", func(h *fakeHost) { h.inject("xl-create") }, ErrCommand},
		{"ssh never answers", func(h *fakeHost) { h.write("ssh-refuse", "99\n") }, ErrNotReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t)
			c := h.config(CoWLVM)
			tt.inject(h)
			b := newBackend(t, c)
			if _, err := b.Open(t.Context()); !errors.Is(err, tt.wantIs) {
				t.Fatalf("Open = %v, want %v", err, tt.wantIs)
			}
			if got := h.ours(c.VG); len(got) != 0 {
				t.Errorf("testbed objects after failed Open = %v, want none", got)
			}
		})
	}
}

func TestOpenWaitsForSSH(t *testing.T) {
	h := newFakeHost(t)
	c := h.config(CoWLVM)
	h.write("ssh-refuse", "2\n")
	b := newBackend(t, c)
	if _, err := b.Open(t.Context()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	var probes int
	for _, l := range h.log(c) {
		if strings.HasPrefix(l, "ssh ") {
			probes++
		}
	}
	if probes != 3 {
		t.Errorf("ssh probes = %d, want 3", probes)
	}
}

func TestCloseCancelledContextStillDestroys(t *testing.T) {
	h := newFakeHost(t)
	c := h.config(CoWDM)
	b := newBackend(t, c)
	if _, err := b.Open(t.Context()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := h.ours(c.VG); len(got) != 0 {
		t.Errorf("testbed objects after Close = %v, want none", got)
	}
}

func TestCloseWithoutOpen(t *testing.T) {
	h := newFakeHost(t)
	c := h.config(CoWLVM)
	b := newBackend(t, c)
	for i := range 2 {
		if err := b.Close(t.Context()); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if got := h.log(c); len(got) != 0 {
		t.Errorf("Close without Open ran %q, want nothing", got)
	}
}

func TestSecondServerOnSameBaseRefused(t *testing.T) {
	h := newFakeHost(t)
	c := h.config(CoWLVM)
	a := newBackend(t, c)
	if _, err := a.Open(t.Context()); err != nil {
		t.Fatalf("first Open: %v", err)
	}
	h.log(c)
	b := newBackend(t, c)
	if _, err := b.Open(t.Context()); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Open = %v, want %v", err, ErrBusy)
	}
	if got := h.log(c); len(got) != 0 {
		t.Errorf("refused Open ran %q, want nothing", got)
	}
	if err := b.Cleanup(t.Context()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := h.ours(c.VG); len(got) != 2 {
		t.Errorf("objects after another server's Cleanup = %v, want the live guest and snapshot", got)
	}
	if err := a.Close(t.Context()); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if _, err := b.Open(t.Context()); err != nil {
		t.Fatalf("second Open after first Close: %v", err)
	}
}

func TestCleanupNothingToDo(t *testing.T) {
	for _, cow := range []string{CoWLVM, CoWDM} {
		t.Run(cow, func(t *testing.T) {
			h := newFakeHost(t)
			c := h.config(cow)
			h.addLV("sparegrid", "home", 100)
			b := newBackend(t, c)
			for i := range 2 {
				if err := b.Cleanup(t.Context()); err != nil {
					t.Fatalf("Cleanup #%d: %v", i+1, err)
				}
			}
			want := []string{"xl list", "dmsetup ls", "lvs --noheadings -o lv_name sparegrid"}
			if diff := cmp.Diff(slices.Concat(want, want), h.log(c)); diff != "" {
				t.Errorf("Cleanup commands (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCleanupRemovesAbandonedTestbed(t *testing.T) {
	h := newFakeHost(t)
	c := h.config(CoWDM)
	a := newBackend(t, c)
	if _, err := a.Open(t.Context()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Abandon a as a crash would: the kernel drops its locks, nothing else
	// happens.
	a.curLock.f.Close()
	for _, l := range a.baseLocks {
		l.f.Close()
	}
	a.cur, a.curLock, a.baseLocks = "", nil, nil
	// A foreign volume and device with our prefix but not our name shape
	// must survive.
	h.addLV("sparegrid", prefix+"notours", 100)
	h.write("dm/"+prefix+"notours", "0 100 linear 254:1 0\n")
	h.log(c)

	b := newBackend(t, c)
	if err := b.Cleanup(t.Context()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	want := []string{
		"xl list", "dmsetup ls", "lvs --noheadings -o lv_name sparegrid",
		"xl destroy sparegrid-tb-ID1", "dmsetup remove sparegrid-tb-ID1",
	}
	if diff := cmp.Diff(want, h.log(c)); diff != "" {
		t.Errorf("Cleanup commands (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"dm " + prefix + "notours", "lv " + prefix + "notours"}, h.ours(c.VG)); diff != "" {
		t.Errorf("objects after Cleanup (-want +got):\n%s", diff)
	}
	if _, err := b.Open(t.Context()); err != nil {
		t.Fatalf("Open after Cleanup: %v", err)
	}
}

func TestHostCommandsThroughSudoAreAllowed(t *testing.T) {
	rules, err := sudoers.Parse(sudoers.AgentRules())
	if err != nil {
		t.Fatal(err)
	}
	for _, cow := range []string{CoWLVM, CoWDM} {
		t.Run(cow, func(t *testing.T) {
			h := newFakeHost(t)
			c := h.config(cow)
			c.Sudo = h.bin + "/sudo"
			c.SavedImage = filepath.Join(t.TempDir(), "bookworm.save")
			if err := os.WriteFile(c.SavedImage, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			b := newBackend(t, c)
			ctx := t.Context()
			if _, err := b.Open(ctx); err != nil {
				t.Fatalf("Open: %v", err)
			}
			if _, err := b.Revert(ctx); err != nil {
				t.Fatalf("Revert: %v", err)
			}
			if err := b.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := b.Cleanup(ctx); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			raw, err := os.ReadFile(filepath.Join(h.state, "log"))
			if err != nil {
				t.Fatal(err)
			}
			// Where the installed system keeps what the test keeps in
			// temp dirs.
			r := strings.NewReplacer(h.bin+"/sudo", "sudo", h.bin+"/", "/usr/sbin/",
				c.LockDir, "/run/sparegrid/xenlvm", c.SavedImage, "/var/lib/sparegrid/images/bookworm.save")
			var sudoed int
			pending := false
			for _, l := range strings.Split(strings.TrimSpace(r.Replace(string(raw))), "\n") {
				if strings.HasPrefix(l, "ssh ") {
					continue
				}
				if isHostTool(l) {
					if !pending {
						t.Errorf("host command %q did not go through sudo -n", l)
					}
					pending = false
					continue
				}
				argv, ok := strings.CutPrefix(l, "sudo -n ")
				if !ok {
					t.Errorf("unexpected log line %q", l)
					continue
				}
				sudoed, pending = sudoed+1, true
				if !sudoers.Allowed(rules, "sparegrid", strings.Fields(argv)) {
					t.Errorf("installer/sudoers/sparegrid-agent does not allow %q", argv)
				}
			}
			if sudoed < 10 {
				t.Errorf("%d commands went through sudo, want the whole lifecycle", sudoed)
			}
		})
	}
}

// isHostTool reports lines logged by a fake that fake sudo ran.
func isHostTool(l string) bool {
	for _, tool := range []string{"xl ", "lvcreate ", "lvremove ", "lvs ", "dmsetup "} {
		if strings.HasPrefix(l, tool) {
			return true
		}
	}
	return false
}
