package xenlvm

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Copy-on-write modes.
const (
	// CoWLVM makes each testbed's disk an LVM snapshot of the base
	// (lvcreate --snapshot).
	CoWLVM = "lvm"
	// CoWDM makes it a non-persistent device-mapper snapshot of the base
	// whose exceptions go to a scratch logical volume (dmsetup create).
	CoWDM = "dm"
)

// Config is everything a xenlvm backend needs. Every field has a flag of
// the same meaning in FromArgs.
type Config struct {
	VG           string // volume group holding the base and scratch volumes
	Base         string // base logical volume, never written by a testbed
	Scratch      string // scratch logical volume for CoWDM
	CoW          string // CoWLVM or CoWDM
	SnapshotSize string // lvcreate --size for CoWLVM, e.g. "4G"

	GuestConfig string // xl config template with @NAME@ and @DISK@
	SavedImage  string // when set, xl restore this instead of xl create

	Address                string // the guest's IP address
	SSHUser                string
	SSHKey                 string // private key file
	KnownHosts             string // known_hosts file holding the guest's host key
	InsecureNoHostKeyCheck bool   // accept any host key instead of KnownHosts
	SSHAttempts            int    // ssh probes before giving up on a booting guest
	SSHInterval            time.Duration

	LockDir string // locks and rendered guest configs; root's xl reads them

	// Sudo, when set, is the sudo binary: host commands run as
	// "sudo -n CMD ...", matching installer/sudoers/sparegrid-agent.
	Sudo string
	// Paths of the host commands.
	XL, LVCreate, LVRemove, LVS, DMSetup, SSH string
}

// Errors.
var (
	ErrUsage         = errors.New("xenlvm: bad arguments")
	ErrNoCopyOnWrite = errors.New("xenlvm: refusing to start a guest without copy-on-write")
	ErrBusy          = errors.New("xenlvm: base volume is in use by another server")
	ErrCommand       = errors.New("xenlvm: host command failed")
	ErrNotReady      = errors.New("xenlvm: guest did not answer ssh")
)

// lvmName is what LVM accepts as a VG or LV name; the leading character
// rule also keeps names from being read as options.
var lvmName = regexp.MustCompile(`^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$`)

// sizeRE is an lvcreate --size with an optional unit.
var sizeRE = regexp.MustCompile(`^[0-9]+[bBsSkKmMgGtT]?$`)

// DefaultConfig returns the defaults FromArgs starts from.
func DefaultConfig() Config {
	return Config{
		CoW:          CoWLVM,
		SnapshotSize: "4G",
		SSHUser:      "root",
		SSHAttempts:  60,
		SSHInterval:  2 * time.Second,
		LockDir:      "/run/sparegrid/xenlvm",
		XL:           "xl",
		LVCreate:     "lvcreate",
		LVRemove:     "lvremove",
		LVS:          "lvs",
		DMSetup:      "dmsetup",
		SSH:          "ssh",
	}
}

// Validate reports the first problem with c. It refuses every setting
// under which a guest could write the base volume.
func (c Config) Validate() error {
	switch c.CoW {
	case CoWLVM:
		if !sizeRE.MatchString(c.SnapshotSize) {
			return fmt.Errorf("%w: --snapshot-size %q is not a size like 4G", ErrUsage, c.SnapshotSize)
		}
	case CoWDM:
		if !lvmName.MatchString(c.Scratch) {
			return fmt.Errorf("%w: --cow dm needs --scratch, a logical volume name", ErrUsage)
		}
		if c.Scratch == c.Base {
			return fmt.Errorf("%w: --scratch is the base volume", ErrNoCopyOnWrite)
		}
	default:
		return fmt.Errorf("%w: --cow %q: only %q and %q keep the base volume unchanged", ErrNoCopyOnWrite, c.CoW, CoWLVM, CoWDM)
	}
	for _, f := range []struct{ flag, v string }{{"--vg", c.VG}, {"--base", c.Base}} {
		if !lvmName.MatchString(f.v) {
			return fmt.Errorf("%w: %s %q is not a volume name", ErrUsage, f.flag, f.v)
		}
	}
	if strings.HasPrefix(c.Base, prefix) {
		return fmt.Errorf("%w: --base must not start with the testbed prefix", ErrUsage)
	}
	if _, err := netip.ParseAddr(c.Address); err != nil {
		return fmt.Errorf("%w: --address: %w", ErrUsage, err)
	}
	if c.SSHUser == "" || strings.HasPrefix(c.SSHUser, "-") || strings.ContainsAny(c.SSHUser, "@ \t\n") {
		return fmt.Errorf("%w: --ssh-user %q", ErrUsage, c.SSHUser)
	}
	if c.KnownHosts == "" && !c.InsecureNoHostKeyCheck {
		return fmt.Errorf("%w: --known-hosts is required (or --insecure-no-host-key-check)", ErrUsage)
	}
	if c.SSHAttempts < 1 || c.SSHInterval < 0 {
		return fmt.Errorf("%w: --ssh-attempts must be at least 1", ErrUsage)
	}
	for _, f := range []struct{ flag, v string }{
		{"--guest-config", c.GuestConfig}, {"--ssh-key", c.SSHKey}, {"--lock-dir", c.LockDir},
	} {
		if !filepath.IsAbs(f.v) {
			return fmt.Errorf("%w: %s must be an absolute path", ErrUsage, f.flag)
		}
	}
	if c.SavedImage != "" && !filepath.IsAbs(c.SavedImage) {
		return fmt.Errorf("%w: --saved-image must be an absolute path", ErrUsage)
	}
	return nil
}

// parse fills a Config from the backend's command-line arguments.
func parse(args []string) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("xenlvm", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.VG, "vg", c.VG, "volume group")
	fs.StringVar(&c.Base, "base", c.Base, "base logical volume, e.g. sparegrid-base-bookworm")
	fs.StringVar(&c.Scratch, "scratch", c.Scratch, "scratch logical volume for --cow dm")
	fs.StringVar(&c.CoW, "cow", c.CoW, "copy-on-write: lvm or dm")
	fs.StringVar(&c.SnapshotSize, "snapshot-size", c.SnapshotSize, "snapshot size for --cow lvm")
	fs.StringVar(&c.GuestConfig, "guest-config", c.GuestConfig, "xl config template")
	fs.StringVar(&c.SavedImage, "saved-image", c.SavedImage, "xl save file to restore instead of booting")
	fs.StringVar(&c.Address, "address", c.Address, "guest IP address")
	fs.StringVar(&c.SSHUser, "ssh-user", c.SSHUser, "user to log in to the guest as")
	fs.StringVar(&c.SSHKey, "ssh-key", c.SSHKey, "ssh private key")
	fs.StringVar(&c.KnownHosts, "known-hosts", c.KnownHosts, "known_hosts file with the guest's host key")
	fs.BoolVar(&c.InsecureNoHostKeyCheck, "insecure-no-host-key-check", c.InsecureNoHostKeyCheck, "accept any guest host key")
	fs.IntVar(&c.SSHAttempts, "ssh-attempts", c.SSHAttempts, "ssh probes while the guest boots")
	fs.DurationVar(&c.SSHInterval, "ssh-interval", c.SSHInterval, "wait between ssh probes")
	fs.StringVar(&c.LockDir, "lock-dir", c.LockDir, "directory for locks and guest configs")
	fs.StringVar(&c.Sudo, "sudo", c.Sudo, "run host commands through this sudo with -n")
	fs.StringVar(&c.XL, "xl", c.XL, "xl command")
	fs.StringVar(&c.LVCreate, "lvcreate", c.LVCreate, "lvcreate command")
	fs.StringVar(&c.LVRemove, "lvremove", c.LVRemove, "lvremove command")
	fs.StringVar(&c.LVS, "lvs", c.LVS, "lvs command")
	fs.StringVar(&c.DMSetup, "dmsetup", c.DMSetup, "dmsetup command")
	fs.StringVar(&c.SSH, "ssh", c.SSH, "ssh command")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	return c, nil
}
