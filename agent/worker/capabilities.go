package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/runner"
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

// DetectCapabilities describes what this host can run: its dpkg
// architecture, the releases it has images for in one of backends (nil
// means DefaultBackends), the most preferred backend it will use, the
// installed autopkgtest and this agent's version.
func DetectCapabilities(ctx context.Context, stateDir string, backends []string) (protocol.Capabilities, error) {
	if backends == nil {
		backends = DefaultBackends()
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
	return protocol.Capabilities{
		Arch:               arch,
		Releases:           releases,
		Backend:            backend,
		AutopkgtestVersion: apt,
		AgentVersion:       version.Version,
	}, nil
}
