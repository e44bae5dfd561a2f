package recovery

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/internal/procgroup"
)

// CleanupArg, right after the backend's name, puts autopkgtest-virt-sparegrid
// in cleanup mode: it removes what crashed servers of that backend left
// behind and exits, without serving a session.
const CleanupArg = "--cleanup"

// virtServerName is the virt server found on PATH when Options.VirtServer
// is empty.
const virtServerName = "autopkgtest-virt-sparegrid"

// cleanupGrace is how long a cleanup command gets after SIGTERM when it
// runs out of time.
const cleanupGrace = 10 * time.Second

// cleanupCommands returns the cleanup commands for the backends in
// opts.Backends that the agent has images for: the overlay backend's
// once, through opts.Sudo, and the xenlvm backend's once per distinct
// set of image arguments, which name the volume group and carry the
// backend's own --sudo.
func cleanupCommands(opts Options) ([]Cleanup, error) {
	imgs, err := image.List(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	virt := opts.VirtServer
	if virt == "" {
		virt = virtServerName
	}
	if len(opts.Sudo) > 0 && (!filepath.IsAbs(opts.Sudo[0]) || !filepath.IsAbs(virt)) {
		return nil, fmt.Errorf("%w: sudo %q and virt server %q must be absolute paths", ErrCleanup, opts.Sudo[0], virt)
	}
	var cmds []Cleanup
	seen := map[string]bool{}
	for _, b := range opts.Backends {
		for _, img := range imgs {
			if img.Backend != b {
				continue
			}
			var argv []string
			switch b {
			case image.BackendOverlay:
				argv = slices.Concat(opts.Sudo, []string{virt, image.BackendOverlay, CleanupArg})
			case image.BackendXenLVM:
				argv = slices.Concat([]string{virt, image.BackendXenLVM, CleanupArg}, img.Args)
			default:
				continue
			}
			key := strings.Join(argv, "\x00")
			if !seen[key] {
				seen[key] = true
				cmds = append(cmds, Cleanup{Backend: b, Argv: argv})
			}
		}
	}
	return cmds, nil
}

// runCleanup runs one cleanup command, bounded by timeout.
func runCleanup(ctx context.Context, argv []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out tail
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if _, err := procgroup.Run(ctx, cmd, cleanupGrace); err != nil {
		return fmt.Errorf("%w: %s: %w: %s", ErrCleanup, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tail keeps the last bytes written to it.
type tail []byte

// maxTail bounds what a cleanup error quotes of the command's output.
const maxTail = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	*t = append(*t, p...)
	if len(*t) > maxTail {
		*t = slices.Clone((*t)[len(*t)-maxTail:])
	}
	return len(p), nil
}
