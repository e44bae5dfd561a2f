package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/agent/testbed/xenlvm"
)

func (c *cli) testbedCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "testbed",
		Short: "Build and list testbed images",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(c.testbedBuildCmd(), c.testbedListCmd())
	return cmd
}

func (c *cli) testbedBuildCmd() *cobra.Command {
	var opts image.BuildOptions
	var backend, device string
	cmd := &cobra.Command{
		Use:   "build --release RELEASE --state DIR [--backend overlay|unshare|xenlvm] [--device PATH] [-- XENLVM-FLAGS...]",
		Short: "Build the base image for a release, or register a xenlvm base volume",
		Long: `Build makes the testbed base image for a release and architecture.

--backend overlay (the default where the kernel has overlayfs and the agent
runs as root) builds a root filesystem directory for sparegrid's own virt
server, whose revert throws away an overlay layer in milliseconds.
--backend unshare builds a tarball for autopkgtest's stock unshare server.

--backend xenlvm registers a base volume with the agent; it does not build
one. The volume needs LVM and Xen on the host and is created first by
installer/images/sparegrid-xen-image-build (see docs/testbeds.md). The
arguments after "--" are the flags of autopkgtest-virt-sparegrid xenlvm
(--vg, --base, --guest-config, --address, --ssh-key, --known-hosts,
--sudo, ...); they are checked, stored in the image record and passed to
the virt server for every test of the release. The digest is the sha256
of the base volume's bytes, read from /dev/VG/BASE (or --device), so
registering needs read access to that device and takes as long as reading
the volume once. Register again after rebuilding the volume.

When building an image as root it first gives root subordinate user and group ids in
/etc/subuid and /etc/subgid, which autopkgtest's unshare backend needs.
Progress goes to stderr; the image digest is printed alone on stdout.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireState(opts.StateDir); err != nil {
				return err
			}
			if backend == "" {
				backend = defaultBackend()
			}
			if backend == image.BackendXenLVM {
				return c.registerXenLVM(cmd.Context(), opts, device, args)
			}
			if len(args) > 0 {
				return fmt.Errorf("%w: %q", errBuildArgs, args[0])
			}
			if device != "" {
				return errDeviceFlag
			}
			switch backend {
			case image.BackendOverlay:
				opts.Format = image.FormatDirectory
			case image.BackendUnshare:
				opts.Format = image.FormatTar
			default:
				return fmt.Errorf("--backend %q: use overlay, unshare or xenlvm", backend)
			}
			if err := state.Init(opts.StateDir); err != nil {
				return err
			}
			if os.Geteuid() == 0 {
				u, err := user.Current()
				if err != nil {
					return err
				}
				if err := image.EnsureSubordinateIDs(u.Username, "/etc/subuid", "/etc/subgid"); err != nil {
					return fmt.Errorf("set up subordinate ids for the unshare backend: %w", err)
				}
			}
			opts.Log = c.stderr
			img, err := image.Build(cmd.Context(), opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, img.Digest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Release, "release", "", "Debian release, such as bookworm")
	f.StringVar(&opts.Arch, "arch", "", "Debian architecture (default: the host's)")
	f.StringVar(&opts.Mirror, "mirror", "", "Debian mirror URL (default "+image.DefaultMirror+")")
	f.StringVar(&backend, "backend", "", "testbed backend: overlay, unshare or xenlvm (default: overlay where supported, else unshare; xenlvm is never the default)")
	f.StringVar(&device, "device", "", "with --backend xenlvm: the base volume's block device to hash (default /dev/VG/BASE)")
	c.stateFlag(cmd, &opts.StateDir)
	cmd.MarkFlagRequired("release")
	return cmd
}

var (
	// errBuildArgs means arguments were given to a backend that takes none.
	errBuildArgs = errors.New("only --backend xenlvm takes arguments after --")
	// errDeviceFlag means --device was given for a backend other than xenlvm.
	errDeviceFlag = errors.New("--device is only for --backend xenlvm")
	// errMirrorFlag means --mirror was given with --backend xenlvm.
	errMirrorFlag = errors.New("--mirror does not apply to --backend xenlvm: the base volume is already built")
	// errXenArgs means --backend xenlvm was given no backend flags.
	errXenArgs = errors.New("--backend xenlvm needs the xenlvm backend's flags after --, such as -- --vg VG --base LV --guest-config FILE ...")
)

// registerXenLVM checks the xenlvm backend's flags, hashes the base
// volume and records it, printing the digest.
func (c *cli) registerXenLVM(ctx context.Context, opts image.BuildOptions, device string, args []string) error {
	if len(args) == 0 {
		return errXenArgs
	}
	if opts.Mirror != "" {
		return errMirrorFlag
	}
	// FromArgs only parses and validates: it runs no host command.
	if _, err := xenlvm.FromArgs(args); err != nil {
		return err
	}
	if err := state.Init(opts.StateDir); err != nil {
		return err
	}
	fmt.Fprintln(c.stderr, "hashing the base volume; this reads all of it")
	img, err := image.Register(ctx, image.RegisterOptions{
		StateDir: opts.StateDir,
		Release:  opts.Release,
		Arch:     opts.Arch,
		Args:     args,
		Device:   device,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, img.Digest)
	return nil
}

func (c *cli) testbedListCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --state DIR",
		Short: "List the testbed images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireState(dir); err != nil {
				return err
			}
			imgs, err := image.List(dir)
			if err != nil {
				return err
			}
			if asJSON {
				if imgs == nil {
					imgs = []image.Image{}
				}
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(imgs)
			}
			if len(imgs) == 0 {
				fmt.Fprintln(c.stderr, "no testbed images: run sparegrid-agent testbed build --release bookworm")
				return nil
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RELEASE\tARCH\tBACKEND\tBUILT\tSIZE\tDIGEST")
			for _, img := range imgs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", img.Release, img.Arch, img.Backend,
					img.BuiltAt.UTC().Format("2006-01-02 15:04"), img.Size, img.Digest)
			}
			return tw.Flush()
		},
	}
	c.stateFlag(cmd, &dir)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the images as JSON")
	return cmd
}

// defaultBackend picks overlay where this host can run it (root, and a
// kernel with overlayfs), and autopkgtest's unshare backend otherwise.
func defaultBackend() string {
	if os.Geteuid() == 0 && kernelHasOverlay("/proc/filesystems") {
		return image.BackendOverlay
	}
	return image.BackendUnshare
}

// kernelHasOverlay reports whether the filesystems list (the format of
// /proc/filesystems) names overlay.
func kernelHasOverlay(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == "overlay" {
			return true
		}
	}
	return false
}
