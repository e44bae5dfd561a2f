package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/version"
)

// ErrNoImages means the state directory holds no testbed image for the
// host's architecture, so the agent could run nothing.
var ErrNoImages = errors.New("worker: no testbed images")

// ErrBadBackend means a backend preference names no known backend.
var ErrBadBackend = errors.New("worker: unknown testbed backend")

// DefaultBackends is the order backends are preferred in when the agent's
// configuration names none: overlay, whose revert costs milliseconds,
// then xenlvm, whose testbeds are whole machines, then autopkgtest's
// unshare backend.
func DefaultBackends() []string {
	return []string{image.BackendOverlay, image.BackendXenLVM, image.BackendUnshare}
}

// backendFormat is the image format each backend runs.
func backendFormat(backend string) (string, bool) {
	switch backend {
	case image.BackendOverlay:
		return image.FormatDirectory, true
	case image.BackendXenLVM:
		return image.FormatXenLVM, true
	case image.BackendUnshare:
		return image.FormatTar, true
	}
	return "", false
}

// ParseBackends reads a backend preference: one backend, or several
// separated by commas, most preferred first. An empty s gives
// DefaultBackends.
func ParseBackends(s string) ([]string, error) {
	if s == "" {
		return DefaultBackends(), nil
	}
	var backends []string
	for _, b := range strings.Split(s, ",") {
		if _, ok := backendFormat(b); !ok {
			return nil, fmt.Errorf("%w: %q, want %s", ErrBadBackend, b, strings.Join(DefaultBackends(), ", "))
		}
		if !slices.Contains(backends, b) {
			backends = append(backends, b)
		}
	}
	return backends, nil
}

// PreferredImage returns the image the agent tests release on arch with:
// the image of the first backend in backends that has one. Nil backends
// means DefaultBackends.
func PreferredImage(stateDir, release, arch string, backends []string) (image.Image, error) {
	if backends == nil {
		backends = DefaultBackends()
	}
	for _, b := range backends {
		format, ok := backendFormat(b)
		if !ok {
			return image.Image{}, fmt.Errorf("%w: %q", ErrBadBackend, b)
		}
		img, err := image.LookupFormat(stateDir, release, arch, format)
		if err == nil || !errors.Is(err, image.ErrNoImage) {
			return img, err
		}
	}
	return image.Image{}, fmt.Errorf("%w: %s/%s for backends %s", image.ErrNoImage, release, arch, strings.Join(backends, ", "))
}

// offer returns the releases imgs hold an image of for arch in one of
// backends, and the most preferred backend any of them uses.
func offer(imgs []image.Image, arch string, backends []string) (releases []string, backend string) {
	best := len(backends)
	for _, img := range imgs {
		i := slices.Index(backends, img.Backend)
		if img.Arch != arch || i < 0 {
			continue
		}
		if format, _ := backendFormat(img.Backend); img.FormatName() != format {
			continue
		}
		best = min(best, i)
		if !slices.Contains(releases, img.Release) {
			releases = append(releases, img.Release)
		}
	}
	if best < len(backends) {
		backend = backends[best]
	}
	return releases, backend
}

// usedBackends returns the backends the agent runs some release on: for
// each release, the most preferred of backends it has a usable image for.
func usedBackends(imgs []image.Image, arch string, backends []string) []string {
	best := map[string]int{}
	for _, img := range imgs {
		i := slices.Index(backends, img.Backend)
		if img.Arch != arch || i < 0 {
			continue
		}
		if format, _ := backendFormat(img.Backend); img.FormatName() != format {
			continue
		}
		if cur, ok := best[img.Release]; !ok || i < cur {
			best[img.Release] = i
		}
	}
	var out []string
	for _, i := range best {
		if !slices.Contains(out, backends[i]) {
			out = append(out, backends[i])
		}
	}
	slices.Sort(out)
	return out
}

// isolationRank orders isolations from none to machine.
func isolationRank(i dep8.Isolation) int {
	return slices.Index([]dep8.Isolation{dep8.IsolationNone, dep8.IsolationContainer, dep8.IsolationMachine}, i)
}

// CapabilityOptions are the agent's settings that DetectCapabilities
// advertises, and the readers it measures the host with.
type CapabilityOptions struct {
	// Backends are the testbed backends the agent may use, most
	// preferred first; nil means DefaultBackends.
	Backends []string
	// Labels are the names the volunteer gives the machine, each checked
	// with dep8.ValidLabel; see ParseLabels.
	Labels []string
	// NoInternet says tests must not reach the internet from this
	// machine, whatever the backend allows.
	NoInternet bool
	// ReadFile reads /proc/meminfo; nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
	// FreeDisk returns the bytes free in the file system holding a path;
	// nil means statfs.
	FreeDisk func(path string) (int64, error)
}

// meminfoPath is where Linux reports the machine's memory.
const meminfoPath = "/proc/meminfo"

// DetectCapabilities describes what this host can run: its dpkg
// architecture, the releases it has images for in one of o.Backends, the
// most preferred backend it will use, the installed autopkgtest and this
// agent's version, and what that backend's testbeds can do
// (dep8.BackendDefaults; Internet off with o.NoInternet), the machine's
// memory, the disk space free in stateDir, and o.Labels.
func DetectCapabilities(ctx context.Context, stateDir string, o CapabilityOptions) (protocol.Capabilities, error) {
	backends := o.Backends
	if backends == nil {
		backends = DefaultBackends()
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.FreeDisk == nil {
		o.FreeDisk = statfsFree
	}
	labels, err := ParseLabels(o.Labels)
	if err != nil {
		return protocol.Capabilities{}, err
	}
	arch, err := image.HostArch(ctx)
	if err != nil {
		return protocol.Capabilities{}, err
	}
	imgs, err := image.List(stateDir)
	if err != nil {
		return protocol.Capabilities{}, err
	}
	releases, backend := offer(imgs, arch, backends)
	if len(releases) == 0 {
		return protocol.Capabilities{}, fmt.Errorf("%w for %s and backends %s in %s: run sparegrid-agent testbed build --release bookworm first",
			ErrNoImages, arch, strings.Join(backends, ", "), stateDir)
	}
	apt, err := runner.AutopkgtestVersion(ctx)
	if err != nil {
		return protocol.Capabilities{}, err
	}
	meminfo, err := o.ReadFile(meminfoPath)
	if err != nil {
		return protocol.Capabilities{}, fmt.Errorf("%w: %w", ErrMeminfo, err)
	}
	mem, err := MemTotalMB(meminfo)
	if err != nil {
		return protocol.Capabilities{}, err
	}
	free, err := o.FreeDisk(stateDir)
	if err != nil {
		return protocol.Capabilities{}, fmt.Errorf("free disk space of %s: %w", stateDir, err)
	}
	caps := protocol.Capabilities{
		Arch:               arch,
		Releases:           releases,
		Backend:            backend,
		AutopkgtestVersion: apt,
		AgentVersion:       version.Version,
	}
	facts := hostFacts{labels: labels, noInternet: o.NoInternet, memoryMB: mem, freeDisk: free, also: usedBackends(imgs, arch, backends)}
	if err := describeTestbeds(&caps, facts); err != nil {
		return protocol.Capabilities{}, err
	}
	return caps, nil
}

// hostFacts is what the agent knows of its machine and its volunteer's
// wishes, apart from the backend.
type hostFacts struct {
	// also are the backends some releases run on, besides caps.Backend:
	// the capabilities advertised are those every one of them has.
	also       []string
	labels     []string
	noInternet bool
	memoryMB   int64
	freeDisk   int64 // bytes
}

// describeTestbeds fills in what caps.Backend's testbeds can do on this
// host: the backend's virt-server capabilities, with Internet off when
// the volunteer forbids it, and the host's memory, disk and labels.
func describeTestbeds(caps *protocol.Capabilities, h hostFacts) error {
	d, err := dep8.BackendDefaults(caps.Backend)
	if err != nil {
		return err
	}
	for _, b := range h.also {
		o, err := dep8.BackendDefaults(b)
		if err != nil {
			return err
		}
		if isolationRank(o.Isolation) < isolationRank(d.Isolation) {
			d.Isolation = o.Isolation
		}
		d.Root, d.RevertFullSystem, d.Reboot, d.Internet = d.Root && o.Root, d.RevertFullSystem && o.RevertFullSystem, d.Reboot && o.Reboot, d.Internet && o.Internet
	}
	caps.Isolation = string(d.Isolation)
	caps.Root = d.Root
	caps.RevertFullSystem = d.RevertFullSystem
	caps.Reboot = d.Reboot
	caps.Internet = d.Internet && !h.noInternet
	caps.Labels = h.labels
	caps.MemoryMB = h.memoryMB
	caps.DiskMB = max(h.freeDisk, 0) >> 20
	return nil
}

// ParseLabels returns labels sorted and without repeats, or an error
// wrapping dep8.ErrBadLabel for the first that is not a label.
func ParseLabels(labels []string) ([]string, error) {
	for _, l := range labels {
		if dep8.ValidLabel(l) {
			continue
		}
		if strings.Contains(l, "=") {
			return nil, fmt.Errorf("%w: %q: a label is a plain name such as \"gpu\"; capabilities such as internet=no are set with flags (--no-internet) or by an admin", dep8.ErrBadLabel, l)
		}
		return nil, fmt.Errorf("%w: %q: want lower-case letters, digits, \".\", \"_\", \":\" and \"-\", starting with a letter or digit, at most %d characters", dep8.ErrBadLabel, l, dep8.MaxLabelLen)
	}
	if len(labels) == 0 {
		return nil, nil
	}
	return slices.Compact(slices.Sorted(slices.Values(labels))), nil
}

// ErrMeminfo means the machine's memory could not be read from
// /proc/meminfo.
var ErrMeminfo = errors.New("worker: cannot read MemTotal from " + meminfoPath)

// maxMemoryKB bounds the MemTotal MemTotalMB accepts: 2^50 kB.
const maxMemoryKB = 1 << 50

// MemTotalMB returns the MemTotal line of a /proc/meminfo, such as
// "MemTotal:       16314296 kB", in MiB.
func MemTotalMB(meminfo []byte) (int64, error) {
	for line := range strings.SplitSeq(string(meminfo), "\n") {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%w: %q", ErrMeminfo, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb <= 0 || kb > maxMemoryKB {
			return 0, fmt.Errorf("%w: %q", ErrMeminfo, line)
		}
		return kb >> 10, nil
	}
	return 0, fmt.Errorf("%w: no MemTotal line", ErrMeminfo)
}
