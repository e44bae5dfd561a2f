package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/version"
)

// ErrNoImages means the state directory holds no testbed image for the
// host's architecture, so the agent could run nothing.
var ErrNoImages = errors.New("worker: no testbed images")

// PreferredImage returns the image the agent tests release on arch with:
// an overlay directory image when there is one, since its revert costs
// milliseconds, otherwise an unshare tarball.
func PreferredImage(stateDir, release, arch string) (image.Image, error) {
	img, err := image.LookupFormat(stateDir, release, arch, image.FormatDirectory)
	if err == nil || !errors.Is(err, image.ErrNoImage) {
		return img, err
	}
	return image.Lookup(stateDir, release, arch)
}

// DetectCapabilities describes what this host can run: its dpkg
// architecture, the releases it has images for, the backend it prefers
// (overlay when any release has an overlay image), the installed
// autopkgtest and this agent's version.
func DetectCapabilities(ctx context.Context, stateDir string) (protocol.Capabilities, error) {
	arch, err := image.HostArch(ctx)
	if err != nil {
		return protocol.Capabilities{}, err
	}
	imgs, err := image.List(stateDir)
	if err != nil {
		return protocol.Capabilities{}, err
	}
	var releases []string
	backend := image.BackendUnshare
	for _, img := range imgs {
		if img.Arch != arch {
			continue
		}
		if img.Backend == image.BackendOverlay {
			backend = image.BackendOverlay
		}
		if !slices.Contains(releases, img.Release) {
			releases = append(releases, img.Release)
		}
	}
	if len(releases) == 0 {
		return protocol.Capabilities{}, fmt.Errorf("%w for %s in %s: run sparegrid-agent testbed build --release bookworm first", ErrNoImages, arch, stateDir)
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
