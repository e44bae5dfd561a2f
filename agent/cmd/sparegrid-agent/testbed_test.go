package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/testbed/xenlvm"
)

func TestKernelHasOverlay(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    bool
	}{
		{"overlay listed", "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n", true},
		{"no overlay", "nodev\tsysfs\n\text4\n", false},
		{"overlay as a prefix only", "nodev\toverlayfs-ish\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "filesystems")
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := kernelHasOverlay(p); got != tt.want {
				t.Errorf("kernelHasOverlay(%q) = %v, want %v", tt.content, got, tt.want)
			}
		})
	}
	if kernelHasOverlay(filepath.Join(t.TempDir(), "missing")) {
		t.Errorf("kernelHasOverlay(missing file) = true, want false")
	}
}

func TestTestbedBuildXenLVM(t *testing.T) {
	flags := []string{"--vg", "vg0", "--base", "sparegrid-base-bookworm", "--guest-config", "/etc/sparegrid/xen/guest.cfg",
		"--address", "192.0.2.10", "--ssh-key", "/etc/sparegrid/xen/id_ed25519", "--known-hosts", "/etc/sparegrid/xen/known_hosts",
		"--sudo", "/usr/bin/sudo"}
	content := []byte("base volume bytes")
	sum := sha256.Sum256(content)
	wantDigest := "sha256:" + hex.EncodeToString(sum[:])
	tests := []struct {
		name    string
		args    func(state, dev string) []string
		wantErr error
		wantOut string
	}{
		{
			name: "registers",
			args: func(state, dev string) []string {
				return append([]string{"testbed", "build", "--backend", "xenlvm", "--release", "bookworm", "--arch", "amd64", "--state", state, "--device", dev, "--"}, flags...)
			},
			wantOut: wantDigest + "\n",
		},
		{
			name: "no backend flags",
			args: func(state, dev string) []string {
				return []string{"testbed", "build", "--backend", "xenlvm", "--release", "bookworm", "--arch", "amd64", "--state", state, "--device", dev}
			},
			wantErr: errXenArgs,
		},
		{
			name: "flags the backend refuses",
			args: func(state, dev string) []string {
				return []string{"testbed", "build", "--backend", "xenlvm", "--release", "bookworm", "--arch", "amd64", "--state", state, "--device", dev,
					"--", "--vg", "vg0", "--base", "b", "--cow", "none"}
			},
			wantErr: xenlvm.ErrNoCopyOnWrite,
		},
		{
			name: "missing device",
			args: func(state, dev string) []string {
				return append([]string{"testbed", "build", "--backend", "xenlvm", "--release", "bookworm", "--arch", "amd64", "--state", state, "--device", dev + ".missing", "--"}, flags...)
			},
			wantErr: image.ErrNoImage,
		},
		{
			name: "arguments for another backend",
			args: func(state, dev string) []string {
				return []string{"testbed", "build", "--backend", "unshare", "--release", "bookworm", "--state", state, "--", "--vg", "vg0"}
			},
			wantErr: errBuildArgs,
		},
		{
			name: "device for another backend",
			args: func(state, dev string) []string {
				return []string{"testbed", "build", "--backend", "overlay", "--release", "bookworm", "--state", state, "--device", dev}
			},
			wantErr: errDeviceFlag,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			dev := filepath.Join(t.TempDir(), "base")
			if err := os.WriteFile(dev, content, 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			cmd := newRootCmd(&out, &errb, func(string) string { return "" })
			cmd.SetArgs(tt.args(state, dev))
			err := cmd.Execute()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("testbed build error = %v, want %v", err, tt.wantErr)
			}
			if got := out.String(); got != tt.wantOut {
				t.Errorf("testbed build stdout = %q, want %q", got, tt.wantOut)
			}
			imgs, err := image.List(state)
			if err != nil {
				t.Fatalf("image.List: %v", err)
			}
			var want []image.Image
			if tt.wantErr == nil {
				want = []image.Image{{Release: "bookworm", Arch: "amd64", Backend: image.BackendXenLVM, Format: image.FormatXenLVM,
					Args: flags, Device: dev, Digest: wantDigest, Size: int64(len(content))}}
			}
			if diff := cmp.Diff(want, imgs, cmpopts.IgnoreFields(image.Image{}, "BuiltAt")); diff != "" {
				t.Errorf("records after testbed build (-want +got):\n%s", diff)
			}
		})
	}
}
