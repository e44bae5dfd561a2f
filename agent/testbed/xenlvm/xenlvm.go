// Package xenlvm owns the xenlvm testbed backend: a Xen guest, driven with
// xl, whose only disk is a copy-on-write snapshot (an LVM snapshot, or a
// non-persistent device-mapper snapshot over a scratch volume) of a
// prepared base logical volume, with commands run in it over ssh. It owns
// the names, locks and rendered guest configs of its testbeds, and the
// removal of what crashed servers left behind.
//
// It must never start a guest whose disk is the base volume, never remove
// or change a host object whose name lacks testbed.Prefix, and never
// touch a testbed that a live server holds the lock of. It must not speak
// the virt-server protocol (package virt does) or build images (the
// installer's scripts do).
package xenlvm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/agent/testbed"
)

const prefix = testbed.Prefix

// closeTimeout bounds Close, which runs even when its caller's context is
// already cancelled so that a dying server still stops its guest.
const closeTimeout = 2 * time.Minute

// nameRE matches the names of the objects of one testbed: guest, snapshot
// volume or device-mapper device, lock file and guest config all share it.
var nameRE = regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `[0-9a-f]{16}$`)

// Backend runs testbeds as Xen guests on snapshots of a base volume.
type Backend struct {
	cfg       Config
	baseLocks []*fileLock

	cur     string // name of the running testbed, "" when none
	curLock *fileLock
}

var _ testbed.Backend = (*Backend)(nil)

// FromArgs builds a Backend from command-line arguments such as
// "--vg vg0 --base sparegrid-base-bookworm --guest-config FILE".
func FromArgs(args []string) (testbed.Backend, error) {
	c, err := parse(args)
	if err != nil {
		return nil, err
	}
	return New(c)
}

// New returns a Backend for a valid c.
func New(c Config) (*Backend, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Backend{cfg: c}, nil
}

// Name implements testbed.Backend.
func (b *Backend) Name() string { return "xenlvm" }

// Capabilities implements testbed.Backend. Reboot is not claimed: a
// guest restarted by Xen keeps its snapshot, but nothing here waits for
// the old boot to go away before probing ssh again.
func (b *Backend) Capabilities() []string {
	caps := []string{"revert", "revert-full-system", "isolation-machine"}
	if b.cfg.SSHUser == "root" {
		caps = append(caps, "root-on-testbed")
	}
	return caps
}

// Open takes the base volume's lock, makes a fresh snapshot, starts a
// guest on it and waits until ssh answers. The returned prefix is a small
// sh program that quotes the argv appended to it for ssh.
func (b *Backend) Open(ctx context.Context) ([]string, error) {
	if err := b.stop(ctx); err != nil {
		return nil, err
	}
	if err := b.lockBase(); err != nil {
		return nil, err
	}
	return b.start(ctx)
}

// Revert destroys the guest and its snapshot and starts a new one from the
// base, so nothing done through an older prefix survives.
func (b *Backend) Revert(ctx context.Context) ([]string, error) {
	return b.Open(ctx)
}

// Close destroys the guest and its snapshot and releases the base volume.
// It runs even when ctx is cancelled, bounded by its own timeout.
func (b *Backend) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	err := b.stop(ctx)
	for _, l := range b.baseLocks {
		err = errors.Join(err, l.release(false))
	}
	b.baseLocks = nil
	return err
}

// Cleanup removes guests, snapshot volumes, device-mapper devices and
// files named with testbed.Prefix whose owning server is gone, which it
// knows by taking the testbed's lock. Testbeds of live servers are left
// alone.
func (b *Backend) Cleanup(ctx context.Context) error {
	inv, err := b.list(ctx, true, true)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, n := range slices.Concat(inv.guests, inv.dms, inv.lvs) {
		names[n] = true
	}
	ents, err := os.ReadDir(b.cfg.LockDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("xenlvm: read lock dir: %w", err)
	}
	for _, e := range ents {
		n := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".lock"), ".cfg")
		names[n] = true
	}
	if err := os.MkdirAll(b.cfg.LockDir, 0o755); err != nil {
		return fmt.Errorf("xenlvm: lock dir: %w", err)
	}
	var errs []error
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if !nameRE.MatchString(n) || n == b.cur {
			continue
		}
		l, held, err := tryLock(b.path(n, ".lock"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if held {
			continue
		}
		errs = append(errs, b.destroy(ctx, inv, n), l.release(true))
	}
	return errors.Join(errs...)
}

// lockBase takes the locks that keep two servers off one base volume (and
// one scratch volume), unless this backend holds them already.
func (b *Backend) lockBase() error {
	if b.baseLocks != nil {
		return nil
	}
	if err := os.MkdirAll(b.cfg.LockDir, 0o755); err != nil {
		return fmt.Errorf("xenlvm: lock dir: %w", err)
	}
	vols := []string{b.cfg.Base}
	if b.cfg.CoW == CoWDM {
		vols = append(vols, b.cfg.Scratch)
	}
	var locks []*fileLock
	for _, v := range vols {
		l, held, err := tryLock(filepath.Join(b.cfg.LockDir, prefix+b.cfg.VG+":"+v+".lock"))
		if err == nil && held {
			err = fmt.Errorf("%w: %s/%s", ErrBusy, b.cfg.VG, v)
		}
		if err != nil {
			for _, l := range locks {
				l.release(false)
			}
			return err
		}
		locks = append(locks, l)
	}
	b.baseLocks = locks
	return nil
}

// start makes a new testbed; on any failure it removes what it made.
func (b *Backend) start(ctx context.Context) ([]string, error) {
	tmpl, err := os.ReadFile(b.cfg.GuestConfig)
	if err != nil {
		return nil, fmt.Errorf("xenlvm: guest config: %w", err)
	}
	var id [8]byte
	rand.Read(id[:])
	name := prefix + hex.EncodeToString(id[:])
	l, held, err := tryLock(b.path(name, ".lock"))
	if err == nil && held {
		err = fmt.Errorf("xenlvm: lock %s is held", name)
	}
	if err != nil {
		return nil, err
	}
	b.cur, b.curLock = name, l

	argv, err := b.boot(ctx, name, string(tmpl))
	if err != nil {
		return nil, errors.Join(err, b.stop(context.WithoutCancel(ctx)))
	}
	return argv, nil
}

func (b *Backend) boot(ctx context.Context, name, tmpl string) ([]string, error) {
	cfgText, err := b.render(tmpl, name)
	if err != nil {
		return nil, err
	}
	if err := b.makeSnapshot(ctx, name); err != nil {
		return nil, err
	}
	cfgPath := b.path(name, ".cfg")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		return nil, fmt.Errorf("xenlvm: write guest config: %w", err)
	}
	if b.cfg.SavedImage != "" {
		_, err = b.host(ctx, b.cfg.XL, "restore", cfgPath, b.cfg.SavedImage)
	} else {
		_, err = b.host(ctx, b.cfg.XL, "create", cfgPath)
	}
	if err != nil {
		return nil, err
	}
	argv := sshPrefix(b.sshArgv())
	if err := b.waitSSH(ctx, argv); err != nil {
		return nil, err
	}
	return argv, nil
}

// render fills the guest config template, refusing templates that could
// give the guest the base or scratch volume.
func (b *Backend) render(tmpl, name string) (string, error) {
	for _, p := range []string{"@NAME@", "@DISK@"} {
		if !strings.Contains(tmpl, p) {
			return "", fmt.Errorf("%w: guest config template lacks %s", ErrNoCopyOnWrite, p)
		}
	}
	forbidden := []string{b.cfg.Base, dmEscape(b.cfg.VG) + "-" + dmEscape(b.cfg.Base)}
	if b.cfg.CoW == CoWDM {
		forbidden = append(forbidden, b.cfg.Scratch, dmEscape(b.cfg.VG)+"-"+dmEscape(b.cfg.Scratch))
	}
	for _, f := range forbidden {
		if strings.Contains(tmpl, f) {
			return "", fmt.Errorf("%w: guest config template names %s", ErrNoCopyOnWrite, f)
		}
	}
	r := strings.NewReplacer("@NAME@", name, "@DISK@", b.diskPath(name), "@ADDRESS@", b.cfg.Address)
	return r.Replace(tmpl), nil
}

func (b *Backend) diskPath(name string) string {
	if b.cfg.CoW == CoWDM {
		return "/dev/mapper/" + name
	}
	return "/dev/" + b.cfg.VG + "/" + name
}

// dmEscape spells a VG or LV name as it appears in a /dev/mapper name.
func dmEscape(s string) string { return strings.ReplaceAll(s, "-", "--") }

// makeSnapshot creates the testbed's copy-on-write device and checks that
// it really is a snapshot of the base.
func (b *Backend) makeSnapshot(ctx context.Context, name string) error {
	vg := b.cfg.VG
	if b.cfg.CoW == CoWLVM {
		if _, err := b.host(ctx, b.cfg.LVCreate, "--snapshot", "--name", name, "--size", b.cfg.SnapshotSize, vg+"/"+b.cfg.Base); err != nil {
			return fmt.Errorf("%w: %w", ErrNoCopyOnWrite, err)
		}
		out, err := b.host(ctx, b.cfg.LVS, "--noheadings", "-o", "origin", vg+"/"+name)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNoCopyOnWrite, err)
		}
		if got := strings.TrimSpace(out); got != b.cfg.Base {
			return fmt.Errorf("%w: %s/%s has origin %q, want %q", ErrNoCopyOnWrite, vg, name, got, b.cfg.Base)
		}
		return nil
	}
	out, err := b.host(ctx, b.cfg.LVS, "--noheadings", "--units", "s", "--nosuffix", "-o", "lv_size", vg+"/"+b.cfg.Base)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoCopyOnWrite, err)
	}
	sectors, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil || sectors == 0 {
		return fmt.Errorf("%w: size of %s/%s: %q", ErrNoCopyOnWrite, vg, b.cfg.Base, out)
	}
	table := fmt.Sprintf("0 %d snapshot /dev/%s/%s /dev/%s/%s N 8", sectors, vg, b.cfg.Base, vg, b.cfg.Scratch)
	if _, err := b.host(ctx, b.cfg.DMSetup, "create", name, "--table", table); err != nil {
		return fmt.Errorf("%w: %w", ErrNoCopyOnWrite, err)
	}
	out, err = b.host(ctx, b.cfg.DMSetup, "table", name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoCopyOnWrite, err)
	}
	if f := strings.Fields(out); len(f) != 7 || f[2] != "snapshot" || f[5] != "N" {
		return fmt.Errorf("%w: %s is not a non-persistent snapshot: %q", ErrNoCopyOnWrite, name, out)
	}
	return nil
}

func (b *Backend) sshArgv() []string {
	argv := []string{b.cfg.SSH, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"}
	if b.cfg.InsecureNoHostKeyCheck {
		argv = append(argv, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null")
	} else {
		argv = append(argv, "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+b.cfg.KnownHosts)
	}
	return append(argv, "-o", "IdentitiesOnly=yes", "-i", b.cfg.SSHKey, b.cfg.SSHUser+"@"+b.cfg.Address, "--")
}

// waitSSH runs "true" in the guest until it works, at most SSHAttempts
// times.
func (b *Backend) waitSSH(ctx context.Context, prefix []string) error {
	var last error
	for i := range b.cfg.SSHAttempts {
		if i > 0 {
			t := time.NewTimer(b.cfg.SSHInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w: %w", ErrNotReady, context.Cause(ctx))
			case <-t.C:
			}
		}
		cmd := exec.CommandContext(ctx, prefix[0], append(slices.Clone(prefix[1:]), "true")...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if last = cmd.Run(); last == nil {
			return nil
		}
		last = fmt.Errorf("%w: %s", last, strings.TrimSpace(stderr.String()))
	}
	return fmt.Errorf("%w after %d attempts: %w", ErrNotReady, b.cfg.SSHAttempts, last)
}

// stop removes the current testbed, if any.
func (b *Backend) stop(ctx context.Context) error {
	if b.cur == "" {
		return nil
	}
	inv, err := b.list(ctx, b.cfg.CoW == CoWDM, b.cfg.CoW == CoWLVM)
	if err != nil {
		return err
	}
	if err := b.destroy(ctx, inv, b.cur); err != nil {
		return err
	}
	err = b.curLock.release(true)
	b.cur, b.curLock = "", nil
	return err
}

// inventory is what exists on the host, by name.
type inventory struct {
	guests, dms, lvs []string
}

func (b *Backend) list(ctx context.Context, dm, lv bool) (inventory, error) {
	var inv inventory
	out, err := b.host(ctx, b.cfg.XL, "list")
	if err != nil {
		return inv, err
	}
	inv.guests = firstFields(out, 1)
	if dm {
		out, err := b.host(ctx, b.cfg.DMSetup, "ls")
		if err != nil {
			return inv, err
		}
		if strings.TrimSpace(out) != "No devices found" {
			inv.dms = firstFields(out, 0)
		}
	}
	if lv {
		out, err := b.host(ctx, b.cfg.LVS, "--noheadings", "-o", "lv_name", b.cfg.VG)
		if err != nil {
			return inv, err
		}
		inv.lvs = firstFields(out, 0)
	}
	return inv, nil
}

// firstFields returns the first field of each line after skip header
// lines.
func firstFields(out string, skip int) []string {
	var names []string
	for i, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); i >= skip && len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// destroy removes the testbed called name: guest first, then the
// device-mapper device, then the snapshot volume, then its config file.
// It only touches what inv lists, so running it again is harmless.
func (b *Backend) destroy(ctx context.Context, inv inventory, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("xenlvm: refusing to remove %q", name)
	}
	var errs []error
	if slices.Contains(inv.guests, name) {
		_, err := b.host(ctx, b.cfg.XL, "destroy", name)
		errs = append(errs, err)
	}
	if slices.Contains(inv.dms, name) {
		_, err := b.host(ctx, b.cfg.DMSetup, "remove", name)
		errs = append(errs, err)
	}
	if slices.Contains(inv.lvs, name) {
		_, err := b.host(ctx, b.cfg.LVRemove, "-f", b.cfg.VG+"/"+name)
		errs = append(errs, err)
	}
	if err := os.Remove(b.path(name, ".cfg")); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (b *Backend) path(name, ext string) string {
	return filepath.Join(b.cfg.LockDir, name+ext)
}

// host runs a host command, through sudo -n when configured, and returns
// its stdout.
func (b *Backend) host(ctx context.Context, path string, args ...string) (string, error) {
	argv := append([]string{path}, args...)
	if b.cfg.Sudo != "" {
		argv = append([]string{b.cfg.Sudo, "-n"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s: %w: %s", ErrCommand, strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
