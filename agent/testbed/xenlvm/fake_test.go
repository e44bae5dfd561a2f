package xenlvm

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeTools are the recording fakes in testdata/fake: they stand in for
// Xen, LVM and device-mapper, which cannot run on the test machines.
var fakeTools = []string{"xl", "lvcreate", "lvremove", "lvs", "dmsetup", "ssh", "sudo"}

// fakeHost is a temp dir with the fakes installed in bin and their state
// (volumes, devices, guests, guest root, command log) in state.
type fakeHost struct {
	t     *testing.T
	bin   string
	state string
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	dir := t.TempDir()
	h := &fakeHost{t: t, bin: filepath.Join(dir, "bin"), state: filepath.Join(dir, "state")}
	for _, d := range []string{h.bin, h.state + "/lv", h.state + "/dm", h.state + "/guests", h.state + "/root", h.state + "/fail"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range fakeTools {
		body, err := os.ReadFile(filepath.Join("testdata", "fake", tool))
		if err != nil {
			t.Fatal(err)
		}
		head := "#!/bin/sh\nset -u\nSTATE=" + ShellQuote(h.state) + "\n"
		if tool != "ssh" {
			head += "{ printf '%s' " + tool + "; for a; do printf ' %s' \"$a\"; done; echo; } >>\"$STATE/log\"\n"
		}
		if err := os.WriteFile(filepath.Join(h.bin, tool), []byte(head+string(body)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// addLV creates a volume group (if needed) and a plain volume in it.
func (h *fakeHost) addLV(vg, lv string, sectors int) {
	h.t.Helper()
	d := filepath.Join(h.state, "lv", vg, lv)
	if err := os.MkdirAll(d, 0o755); err != nil {
		h.t.Fatal(err)
	}
	h.write("lv/"+vg+"/"+lv+"/origin", "\n")
	h.write("lv/"+vg+"/"+lv+"/sectors", strconv.Itoa(sectors)+"\n")
}

func (h *fakeHost) write(rel, content string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.state, rel), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// inject makes the fake command named by what fail, e.g. "xl-create".
func (h *fakeHost) inject(what string) { h.write("fail/"+what, "") }

func (h *fakeHost) ls(rel string) []string {
	h.t.Helper()
	ents, err := os.ReadDir(filepath.Join(h.state, rel))
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// guests maps each running guest to its disk.
func (h *fakeHost) guests() map[string]string {
	h.t.Helper()
	m := map[string]string{}
	for _, g := range h.ls("guests") {
		b, err := os.ReadFile(filepath.Join(h.state, "guests", g))
		if err != nil {
			h.t.Fatal(err)
		}
		m[g] = strings.TrimSpace(string(b))
	}
	return m
}

// ours lists the host objects named with the testbed prefix.
func (h *fakeHost) ours(vg string) []string {
	var got []string
	for _, set := range []struct{ kind, dir string }{{"guest", "guests"}, {"dm", "dm"}, {"lv", "lv/" + vg}} {
		for _, n := range h.ls(set.dir) {
			if strings.HasPrefix(n, prefix) {
				got = append(got, set.kind+" "+n)
			}
		}
	}
	return got
}

// log returns the commands run so far, one per line, and empties it.
// Testbed ids become ID1, ID2, ... in order of appearance, c's lock dir
// becomes LOCK and the fakes' directory disappears from command paths.
func (h *fakeHost) log(c Config) []string {
	h.t.Helper()
	p := filepath.Join(h.state, "log")
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		h.t.Fatal(err)
	}
	os.Remove(p)
	r := strings.NewReplacer(c.LockDir, "LOCK", h.bin+"/", "")
	return normalise(strings.Split(r.Replace(string(b)), "\n"))
}

var idRE = regexp.MustCompile(regexp.QuoteMeta(prefix) + `[0-9a-f]{16}`)

func normalise(lines []string) []string {
	ids := map[string]string{}
	var out []string
	for _, l := range lines {
		if l == "" {
			continue
		}
		l = idRE.ReplaceAllStringFunc(l, func(id string) string {
			if _, ok := ids[id]; !ok {
				ids[id] = prefix + "ID" + strconv.Itoa(len(ids)+1)
			}
			return ids[id]
		})
		out = append(out, l)
	}
	return out
}

const template = `name = "@NAME@"
type = "pvh"
memory = 1024
disk = [ 'format=raw, vdev=xvda, access=rw, target=@DISK@' ]
vif = [ 'ip=@ADDRESS@' ]
`

// config returns a valid Config that drives the fakes of h.
func (h *fakeHost) config(cow string) Config {
	h.t.Helper()
	dir := h.t.TempDir()
	tmpl := filepath.Join(dir, "guest.cfg.in")
	if err := os.WriteFile(tmpl, []byte(template), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.addLV("sparegrid", "sparegrid-base-bookworm", 16777216)
	h.addLV("sparegrid", "sparegrid-scratch", 8388608)
	c := DefaultConfig()
	c.VG, c.Base, c.Scratch, c.CoW = "sparegrid", "sparegrid-base-bookworm", "sparegrid-scratch", cow
	c.GuestConfig = tmpl
	c.Address = "192.0.2.10"
	c.SSHKey = "/etc/sparegrid/xenlvm/id_ed25519"
	c.KnownHosts = "/etc/sparegrid/xenlvm/known_hosts"
	c.SSHAttempts, c.SSHInterval = 3, 0
	c.LockDir = filepath.Join(dir, "lock")
	c.XL, c.LVCreate, c.LVRemove = h.bin+"/xl", h.bin+"/lvcreate", h.bin+"/lvremove"
	c.LVS, c.DMSetup, c.SSH = h.bin+"/lvs", h.bin+"/dmsetup", h.bin+"/ssh"
	return c
}

func newBackend(t *testing.T, c Config) *Backend {
	t.Helper()
	b, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

func lockFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}
