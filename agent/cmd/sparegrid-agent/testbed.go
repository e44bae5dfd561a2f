package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/state"
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
	cmd := &cobra.Command{
		Use:   "build --release RELEASE --state DIR",
		Short: "Build the base image for a release with mmdebstrap",
		Long: `Build makes the testbed base image for a release and architecture. When run
as root it first gives root subordinate user and group ids in /etc/subuid and
/etc/subgid, which autopkgtest's unshare backend needs. Progress goes to
stderr; the image digest is printed alone on stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireState(opts.StateDir); err != nil {
				return err
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
	c.stateFlag(cmd, &opts.StateDir)
	cmd.MarkFlagRequired("release")
	return cmd
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
