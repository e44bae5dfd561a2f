package worker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
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
		// wantUsed are the backends some release runs on.
		wantUsed []string
	}{
		{"default prefers overlay", []string{"bookworm"}, []string{"trixie"}, []string{"sid"}, DefaultBackends(), []string{"bookworm", "sid", "trixie"}, image.BackendOverlay,
			[]string{image.BackendOverlay, image.BackendUnshare, image.BackendXenLVM}},
		{"default with xenlvm and unshare", []string{"bookworm"}, nil, []string{"trixie"}, DefaultBackends(), []string{"bookworm", "trixie"}, image.BackendXenLVM,
			[]string{image.BackendUnshare, image.BackendXenLVM}},
		{"unshare only", []string{"bookworm"}, nil, nil, DefaultBackends(), []string{"bookworm"}, image.BackendUnshare, []string{image.BackendUnshare}},
		{"overlay wins where both exist", []string{"bookworm"}, []string{"bookworm"}, nil, DefaultBackends(), []string{"bookworm"}, image.BackendOverlay, []string{image.BackendOverlay}},
		{"xenlvm chosen leaves other releases out", []string{"bookworm"}, []string{"bookworm"}, []string{"trixie"}, []string{image.BackendXenLVM}, []string{"trixie"}, image.BackendXenLVM,
			[]string{image.BackendXenLVM}},
		{"unshare preferred", []string{"bookworm"}, []string{"trixie"}, nil, []string{image.BackendUnshare, image.BackendOverlay}, []string{"bookworm", "trixie"}, image.BackendUnshare,
			[]string{image.BackendOverlay, image.BackendUnshare}},
		{"chosen backend has no images", []string{"bookworm"}, nil, nil, []string{image.BackendXenLVM}, nil, "", nil},
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
			if diff := cmp.Diff(tt.wantUsed, usedBackends(imgs, "amd64", tt.backends)); diff != "" {
				t.Errorf("usedBackends(%q) mismatch (-want +got):\n%s", tt.backends, diff)
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

func TestParseLabels(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr error
	}{
		{"none", nil, nil, nil},
		{"empty list", []string{}, nil, nil},
		{"one", []string{"gpu"}, []string{"gpu"}, nil},
		{"sorted and unique", []string{"gpu", "big-disk", "gpu", "arm:v8", "x_1.2"}, []string{"arm:v8", "big-disk", "gpu", "x_1.2"}, nil},
		{"longest", []string{strings.Repeat("a", dep8.MaxLabelLen)}, []string{strings.Repeat("a", dep8.MaxLabelLen)}, nil},
		{"empty", []string{"gpu", ""}, nil, dep8.ErrBadLabel},
		{"upper case", []string{"GPU"}, nil, dep8.ErrBadLabel},
		{"leading dash", []string{"-gpu"}, nil, dep8.ErrBadLabel},
		{"comma", []string{"gpu,fast"}, nil, dep8.ErrBadLabel},
		{"space", []string{"gpu fast"}, nil, dep8.ErrBadLabel},
		{"capability setting", []string{"internet=no"}, nil, dep8.ErrBadLabel},
		{"too long", []string{strings.Repeat("a", dep8.MaxLabelLen+1)}, nil, dep8.ErrBadLabel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLabels(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" || !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseLabels(%q) = %q, %v, want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestMemTotalMB(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr error
	}{
		{"real", "MemTotal:       16314296 kB\nMemFree:         9275424 kB\nMemAvailable:   13009608 kB\n", 15931, nil},
		{"not first", "MemFree:         9275424 kB\nMemTotal:        2048000 kB\n", 2000, nil},
		{"no trailing newline", "MemTotal: 1024 kB", 1, nil},
		{"less than a MiB", "MemTotal: 1023 kB\n", 0, nil},
		{"missing", "MemFree:         9275424 kB\n", 0, ErrMeminfo},
		{"empty", "", 0, ErrMeminfo},
		{"no unit", "MemTotal: 16314296\n", 0, ErrMeminfo},
		{"other unit", "MemTotal: 16314296 MB\n", 0, ErrMeminfo},
		{"not a number", "MemTotal: lots kB\n", 0, ErrMeminfo},
		{"negative", "MemTotal: -5 kB\n", 0, ErrMeminfo},
		{"zero", "MemTotal: 0 kB\n", 0, ErrMeminfo},
		{"absurd", "MemTotal: 9223372036854775807 kB\n", 0, ErrMeminfo},
		{"prefix of another field", "MemTotalish: 5 kB\n", 0, ErrMeminfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MemTotalMB([]byte(tt.in))
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("MemTotalMB(%q) = %d, %v, want %d, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzMemTotalMB(f *testing.F) {
	f.Add([]byte("MemTotal:       16314296 kB\nMemFree:         9275424 kB\n"))
	f.Add([]byte("MemTotal: 1 kB"))
	f.Add([]byte("MemTotal: -1 kB\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		mb, err := MemTotalMB(in)
		if err != nil {
			if !errors.Is(err, ErrMeminfo) || mb != 0 {
				t.Errorf("MemTotalMB(%q) = %d, %v, want 0 and %v", in, mb, err, ErrMeminfo)
			}
			return
		}
		if mb < 0 || mb > maxMemoryKB>>10 {
			t.Errorf("MemTotalMB(%q) = %d, want 0 to %d", in, mb, maxMemoryKB>>10)
		}
	})
}

func TestDescribeTestbeds(t *testing.T) {
	tests := []struct {
		name    string
		backend string
		facts   hostFacts
		want    protocol.Capabilities
		wantErr error
	}{
		{
			name:    "overlay",
			backend: image.BackendOverlay,
			facts:   hostFacts{labels: []string{"gpu"}, memoryMB: 15931, freeDisk: 20<<30 + 5},
			want: protocol.Capabilities{Backend: image.BackendOverlay, Isolation: "container", Root: true, RevertFullSystem: true,
				Internet: true, Labels: []string{"gpu"}, MemoryMB: 15931, DiskMB: 20 << 10},
		},
		{
			name:    "overlay without internet",
			backend: image.BackendOverlay,
			facts:   hostFacts{noInternet: true, memoryMB: 2000, freeDisk: 1 << 30},
			want: protocol.Capabilities{Backend: image.BackendOverlay, Isolation: "container", Root: true, RevertFullSystem: true,
				MemoryMB: 2000, DiskMB: 1 << 10},
		},
		{
			name:    "xenlvm",
			backend: image.BackendXenLVM,
			facts:   hostFacts{memoryMB: 64000, freeDisk: 100 << 30},
			want: protocol.Capabilities{Backend: image.BackendXenLVM, Isolation: "machine", Root: true, RevertFullSystem: true,
				Internet: true, MemoryMB: 64000, DiskMB: 100 << 10},
		},
		{
			name:    "unshare",
			backend: image.BackendUnshare,
			facts:   hostFacts{labels: []string{"big-disk", "gpu"}, memoryMB: 1, freeDisk: 1<<20 - 1},
			want: protocol.Capabilities{Backend: image.BackendUnshare, Isolation: "none", Root: true, RevertFullSystem: true,
				Internet: true, Labels: []string{"big-disk", "gpu"}, MemoryMB: 1},
		},
		{
			name:    "free disk misreported",
			backend: image.BackendUnshare,
			facts:   hostFacts{freeDisk: -1},
			want:    protocol.Capabilities{Backend: image.BackendUnshare, Isolation: "none", Root: true, RevertFullSystem: true, Internet: true},
		},
		{
			name:    "overlay, but one release only on unshare",
			backend: image.BackendOverlay,
			facts:   hostFacts{also: []string{image.BackendOverlay, image.BackendUnshare}, memoryMB: 2000},
			want: protocol.Capabilities{Backend: image.BackendOverlay, Isolation: "none", Root: true, RevertFullSystem: true,
				Internet: true, MemoryMB: 2000},
		},
		{
			name:    "xenlvm and overlay",
			backend: image.BackendXenLVM,
			facts:   hostFacts{also: []string{image.BackendOverlay}},
			want: protocol.Capabilities{Backend: image.BackendXenLVM, Isolation: "container", Root: true, RevertFullSystem: true,
				Internet: true},
		},
		{
			name:    "unknown backend",
			backend: "bochs",
			wantErr: dep8.ErrUnknownBackend,
		},
		{
			name:    "unknown other backend",
			backend: image.BackendOverlay,
			facts:   hostFacts{also: []string{"bochs"}},
			wantErr: dep8.ErrUnknownBackend,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.Capabilities{Backend: tt.backend}
			err := describeTestbeds(&got, tt.facts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("describeTestbeds(%s, %+v) error = %v, want %v", tt.backend, tt.facts, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("describeTestbeds(%s, %+v) mismatch (-want +got):\n%s", tt.backend, tt.facts, diff)
			}
			if tt.facts.noInternet && got.AgentCaps(1).Internet {
				t.Errorf("describeTestbeds(%s, no internet).AgentCaps(1).Internet = true, want false", tt.backend)
			}
		})
	}
}

// TestDetectCapabilities runs dpkg and dpkg-query for the host's
// architecture and autopkgtest's version, and reads memory and disk
// through fakes.
func TestDetectCapabilities(t *testing.T) {
	arch, err := image.HostArch(t.Context())
	if err != nil {
		t.Skipf("no dpkg: %v", err)
	}
	if _, err := runner.AutopkgtestVersion(t.Context()); err != nil {
		t.Skipf("no autopkgtest: %v", err)
	}
	state := t.TempDir()
	digest := "sha256:" + strings.Repeat("ab", 32)
	if err := image.WriteRecord(state, image.Image{Release: "bookworm", Arch: arch, Backend: image.BackendOverlay, Format: image.FormatDirectory, Digest: digest}); err != nil {
		t.Fatal(err)
	}
	meminfo := func(name string) ([]byte, error) {
		if name != "/proc/meminfo" {
			t.Errorf("ReadFile(%q), want /proc/meminfo", name)
		}
		return []byte("MemTotal:        4096000 kB\n"), nil
	}
	free := func(path string) (int64, error) {
		if path != state {
			t.Errorf("FreeDisk(%q), want the state directory %q", path, state)
		}
		return 30 << 30, nil
	}
	errRead := errors.New("read failed")
	tests := []struct {
		name    string
		o       CapabilityOptions
		want    protocol.Capabilities
		wantErr error
	}{
		{
			name: "labels",
			o:    CapabilityOptions{Labels: []string{"gpu", "big-disk", "gpu"}, ReadFile: meminfo, FreeDisk: free},
			want: protocol.Capabilities{Arch: arch, Releases: []string{"bookworm"}, Backend: image.BackendOverlay, Isolation: "container",
				Root: true, RevertFullSystem: true, Internet: true, Labels: []string{"big-disk", "gpu"}, MemoryMB: 4000, DiskMB: 30 << 10},
		},
		{
			name: "no internet",
			o:    CapabilityOptions{NoInternet: true, ReadFile: meminfo, FreeDisk: free},
			want: protocol.Capabilities{Arch: arch, Releases: []string{"bookworm"}, Backend: image.BackendOverlay, Isolation: "container",
				Root: true, RevertFullSystem: true, MemoryMB: 4000, DiskMB: 30 << 10},
		},
		{
			name:    "bad label",
			o:       CapabilityOptions{Labels: []string{"GPU"}, ReadFile: meminfo, FreeDisk: free},
			wantErr: dep8.ErrBadLabel,
		},
		{
			name:    "no meminfo",
			o:       CapabilityOptions{ReadFile: func(string) ([]byte, error) { return nil, errRead }, FreeDisk: free},
			wantErr: ErrMeminfo,
		},
		{
			name:    "no statfs",
			o:       CapabilityOptions{ReadFile: meminfo, FreeDisk: func(string) (int64, error) { return 0, errRead }},
			wantErr: errRead,
		},
		{
			name:    "no image for the backends",
			o:       CapabilityOptions{Backends: []string{image.BackendUnshare}, ReadFile: meminfo, FreeDisk: free},
			wantErr: ErrNoImages,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectCapabilities(t.Context(), state, tt.o)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DetectCapabilities(%+v) error = %v, want %v", tt.o, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			opts := cmpopts.IgnoreFields(protocol.Capabilities{}, "AutopkgtestVersion", "AgentVersion")
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("DetectCapabilities(%+v) mismatch (-want +got):\n%s", tt.o, diff)
			}
		})
	}
}
