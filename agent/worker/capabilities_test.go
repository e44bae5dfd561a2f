package worker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/agent/image"
)

// writeImages records, in a new state directory, a tar image for every
// release in tar, a directory image for every release in dir and a
// xenlvm testbed for every release in xen, all for amd64, and returns
// the state directory. Only the records are written.
func writeImages(t *testing.T, tar, dir, xen []string) string {
	t.Helper()
	state := t.TempDir()
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, r := range tar {
		if err := image.WriteRecord(state, image.Image{Release: r, Arch: "amd64", Backend: image.BackendUnshare, Digest: digest}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range dir {
		if err := image.WriteRecord(state, image.Image{Release: r, Arch: "amd64", Backend: image.BackendOverlay, Format: image.FormatDirectory, Digest: digest}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range xen {
		dev := filepath.Join(t.TempDir(), "base-"+r)
		if err := os.WriteFile(dev, []byte("volume of "+r), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := image.Register(t.Context(), image.RegisterOptions{StateDir: state, Release: r, Arch: "amd64",
			Args: []string{"--vg", "vg0", "--base", "sparegrid-base-" + r}, Device: dev}); err != nil {
			t.Fatal(err)
		}
	}
	return state
}

func TestPreferredImage(t *testing.T) {
	tests := []struct {
		name          string
		tar, dir, xen []string
		backends      []string
		want          string // backend of the chosen image; "" for none
	}{
		{"default prefers overlay", []string{"bookworm"}, []string{"bookworm"}, []string{"bookworm"}, nil, image.BackendOverlay},
		{"default takes xenlvm over unshare", []string{"bookworm"}, nil, []string{"bookworm"}, nil, image.BackendXenLVM},
		{"default falls back to unshare", []string{"bookworm"}, nil, nil, nil, image.BackendUnshare},
		{"xenlvm only", []string{"bookworm"}, []string{"bookworm"}, []string{"bookworm"}, []string{image.BackendXenLVM}, image.BackendXenLVM},
		{"unshare before overlay", []string{"bookworm"}, []string{"bookworm"}, nil, []string{image.BackendUnshare, image.BackendOverlay}, image.BackendUnshare},
		{"xenlvm only without a xenlvm image", []string{"bookworm"}, []string{"bookworm"}, nil, []string{image.BackendXenLVM}, ""},
		{"image of another release only", nil, nil, []string{"trixie"}, nil, ""},
		{"nothing", nil, nil, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := writeImages(t, tt.tar, tt.dir, tt.xen)
			img, err := PreferredImage(state, "bookworm", "amd64", tt.backends)
			if tt.want == "" {
				if !errors.Is(err, image.ErrNoImage) {
					t.Errorf("PreferredImage(%q) = %+v, %v, want %v", tt.backends, img, err, image.ErrNoImage)
				}
				return
			}
			if err != nil || img.Backend != tt.want || img.Release != "bookworm" {
				t.Errorf("PreferredImage(%q) = %s/%s %s, %v, want bookworm/amd64 %s", tt.backends, img.Release, img.Arch, img.Backend, err, tt.want)
			}
		})
	}
}

func TestPreferredImageRejectsUnknownBackend(t *testing.T) {
	state := writeImages(t, []string{"bookworm"}, nil, nil)
	if _, err := PreferredImage(state, "bookworm", "amd64", []string{"qemu", image.BackendUnshare}); !errors.Is(err, ErrBadBackend) {
		t.Errorf("PreferredImage(qemu) error = %v, want %v", err, ErrBadBackend)
	}
}

func TestOffer(t *testing.T) {
	tests := []struct {
		name          string
		tar, dir, xen []string
		backends      []string
		wantReleases  []string
		wantBackend   string
	}{
		{"default prefers overlay", []string{"bookworm"}, []string{"trixie"}, []string{"sid"}, DefaultBackends(), []string{"bookworm", "sid", "trixie"}, image.BackendOverlay},
		{"default with xenlvm and unshare", []string{"bookworm"}, nil, []string{"trixie"}, DefaultBackends(), []string{"bookworm", "trixie"}, image.BackendXenLVM},
		{"unshare only", []string{"bookworm"}, nil, nil, DefaultBackends(), []string{"bookworm"}, image.BackendUnshare},
		{"xenlvm chosen leaves other releases out", []string{"bookworm"}, []string{"bookworm"}, []string{"trixie"}, []string{image.BackendXenLVM}, []string{"trixie"}, image.BackendXenLVM},
		{"unshare preferred", []string{"bookworm"}, []string{"trixie"}, nil, []string{image.BackendUnshare, image.BackendOverlay}, []string{"bookworm", "trixie"}, image.BackendUnshare},
		{"chosen backend has no images", []string{"bookworm"}, nil, nil, []string{image.BackendXenLVM}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := writeImages(t, tt.tar, tt.dir, tt.xen)
			imgs, err := image.List(state)
			if err != nil {
				t.Fatal(err)
			}
			releases, backend := offer(imgs, "amd64", tt.backends)
			if diff := cmp.Diff(tt.wantReleases, releases); diff != "" || backend != tt.wantBackend {
				t.Errorf("offer(%q) = %q, %q, want %q, %q", tt.backends, releases, backend, tt.wantReleases, tt.wantBackend)
			}
			if releases, backend := offer(imgs, "arm64", tt.backends); releases != nil || backend != "" {
				t.Errorf("offer(arm64, %q) = %q, %q, want nothing", tt.backends, releases, backend)
			}
		})
	}
}

func TestParseBackends(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr error
	}{
		{"", DefaultBackends(), nil},
		{"xenlvm", []string{image.BackendXenLVM}, nil},
		{"unshare,overlay", []string{image.BackendUnshare, image.BackendOverlay}, nil},
		{"overlay,overlay,xenlvm", []string{image.BackendOverlay, image.BackendXenLVM}, nil},
		{"qemu", nil, ErrBadBackend},
		{"overlay,", nil, ErrBadBackend},
		{"Overlay", nil, ErrBadBackend},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBackends(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" || !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseBackends(%q) = %q, %v, want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
