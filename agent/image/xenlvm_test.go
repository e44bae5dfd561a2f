package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var xenArgs = []string{"--vg", "vg0", "--base", "sparegrid-base-bookworm", "--guest-config", "/etc/sparegrid/guest.cfg",
	"--address", "192.0.2.10", "--ssh-key", "/etc/sparegrid/id", "--known-hosts", "/etc/sparegrid/known_hosts"}

func writeDevice(t *testing.T, content string) string {
	t.Helper()
	dev := filepath.Join(t.TempDir(), "base-volume")
	if err := os.WriteFile(dev, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dev
}

func TestRegisterListLookup(t *testing.T) {
	state := t.TempDir()
	dev := writeDevice(t, "base volume bytes")
	img, err := Register(t.Context(), RegisterOptions{StateDir: state, Release: "bookworm", Arch: "amd64", Args: xenArgs, Device: dev})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	sum := sha256.Sum256([]byte("base volume bytes"))
	want := Image{
		Release: "bookworm", Arch: "amd64", Backend: BackendXenLVM, Format: FormatXenLVM,
		Args: xenArgs, Device: dev, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len("base volume bytes")),
	}
	ignoreTime := cmpopts.IgnoreFields(Image{}, "BuiltAt")
	if diff := cmp.Diff(want, img, ignoreTime); diff != "" {
		t.Errorf("Register mismatch (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(Dir(state), "bookworm-amd64.xenlvm.json")); err != nil {
		t.Errorf("record: %v", err)
	}
	got, err := LookupFormat(state, "bookworm", "amd64", FormatXenLVM)
	if err != nil {
		t.Fatalf("LookupFormat(xenlvm): %v", err)
	}
	if diff := cmp.Diff(img, got); diff != "" {
		t.Errorf("LookupFormat(xenlvm) mismatch (-want +got):\n%s", diff)
	}
	if _, err := Lookup(state, "bookworm", "amd64"); !errors.Is(err, ErrNoImage) {
		t.Errorf("Lookup(tar) error = %v, want %v", err, ErrNoImage)
	}
	list, err := List(state)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if diff := cmp.Diff([]Image{img}, list); diff != "" {
		t.Errorf("List mismatch (-want +got):\n%s", diff)
	}
}

func TestRegisterDefaultDevice(t *testing.T) {
	// /dev/vg0/... does not exist here, so the default device path shows
	// in the error.
	_, err := Register(t.Context(), RegisterOptions{StateDir: t.TempDir(), Release: "bookworm", Arch: "amd64", Args: xenArgs})
	if !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), "/dev/vg0/sparegrid-base-bookworm") {
		t.Errorf("Register(no device) error = %v, want %v naming /dev/vg0/sparegrid-base-bookworm", err, ErrNoImage)
	}
}

func TestRegisterRejects(t *testing.T) {
	dev := writeDevice(t, "x")
	tests := []struct {
		name string
		opts RegisterOptions
		want error
	}{
		{"bad release", RegisterOptions{Release: "--help", Arch: "amd64", Args: xenArgs, Device: dev}, ErrBadName},
		{"bad arch", RegisterOptions{Release: "bookworm", Arch: "amd64;x", Args: xenArgs, Device: dev}, ErrBadName},
		{"no arguments", RegisterOptions{Release: "bookworm", Arch: "amd64", Device: dev}, ErrRegister},
		{"no volume named", RegisterOptions{Release: "bookworm", Arch: "amd64", Args: []string{"--address", "192.0.2.1"}}, ErrRegister},
		{"volume name with slash", RegisterOptions{Release: "bookworm", Arch: "amd64", Args: []string{"--vg", "vg0", "--base", "../sda"}}, ErrRegister},
		{"relative device", RegisterOptions{Release: "bookworm", Arch: "amd64", Args: xenArgs, Device: "base"}, ErrRegister},
		{"missing device", RegisterOptions{Release: "bookworm", Arch: "amd64", Args: xenArgs, Device: filepath.Join(t.TempDir(), "none")}, ErrNoImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			tt.opts.StateDir = state
			if _, err := Register(t.Context(), tt.opts); !errors.Is(err, tt.want) {
				t.Errorf("Register(%+v) error = %v, want %v", tt.opts, err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(Dir(state), "bookworm-amd64.xenlvm.json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Register(%+v) left a record (stat error %v)", tt.opts, err)
			}
		})
	}
}

func TestVerifyXenLVM(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dev string)
		want   error
	}{
		{"good", func(*testing.T, string) {}, nil},
		{"missing device", func(t *testing.T, dev string) {
			if err := os.Remove(dev); err != nil {
				t.Fatal(err)
			}
		}, ErrNoImage},
		{"tampered device", func(t *testing.T, dev string) {
			if err := os.WriteFile(dev, []byte("base volume byteS"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, ErrDigestMismatch},
		{"grown device", func(t *testing.T, dev string) {
			if err := os.WriteFile(dev, []byte("base volume bytes\x00"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			dev := writeDevice(t, "base volume bytes")
			if _, err := Register(t.Context(), RegisterOptions{StateDir: state, Release: "bookworm", Arch: "amd64", Args: xenArgs, Device: dev}); err != nil {
				t.Fatalf("Register: %v", err)
			}
			tt.change(t, dev)
			img, err := LookupFormat(state, "bookworm", "amd64", FormatXenLVM)
			if err != nil {
				t.Fatalf("LookupFormat: %v", err)
			}
			if err := Verify(img); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

func TestVolumeFlags(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		wantVG, wantLV string
	}{
		{"separate values", xenArgs, "vg0", "sparegrid-base-bookworm"},
		{"equals and single dash", []string{"-vg=vg1", "--base=b"}, "vg1", "b"},
		{"after a boolean flag", []string{"--insecure-no-host-key-check", "--vg", "v", "--base", "b"}, "v", "b"},
		{"value that looks like a flag name", []string{"--ssh-user", "--vg", "--base", "b"}, "", "b"},
		{"stops at a positional argument", []string{"--vg", "v", "extra", "--base", "b"}, "v", ""},
		{"missing value", []string{"--vg"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vg, lv := volumeFlags(tt.args)
			if vg != tt.wantVG || lv != tt.wantLV {
				t.Errorf("volumeFlags(%q) = %q, %q, want %q, %q", tt.args, vg, lv, tt.wantVG, tt.wantLV)
			}
		})
	}
}

func TestReadRecordRejectsXenLVM(t *testing.T) {
	digest := `"digest":"sha256:` + strings.Repeat("ab", 32) + `","mirror":"","built_at":"2024-01-01T00:00:00Z","size":1`
	tests := []struct {
		name string
		file string
		json string
	}{
		{"no arguments", "bookworm-amd64.xenlvm.json", `{"release":"bookworm","arch":"amd64","backend":"xenlvm","format":"xenlvm","path":"","device":"/dev/vg0/b",` + digest + `}`},
		{"relative device", "bookworm-amd64.xenlvm.json", `{"release":"bookworm","arch":"amd64","backend":"xenlvm","format":"xenlvm","path":"","args":["--vg","v"],"device":"b",` + digest + `}`},
		{"wrong backend", "bookworm-amd64.xenlvm.json", `{"release":"bookworm","arch":"amd64","backend":"unshare","format":"xenlvm","path":"","args":["--vg","v"],"device":"/dev/v/b",` + digest + `}`},
		{"tar record name", "bookworm-amd64.json", `{"release":"bookworm","arch":"amd64","backend":"xenlvm","format":"xenlvm","path":"","args":["--vg","v"],"device":"/dev/v/b",` + digest + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(path, []byte(tt.json), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := readRecord(path); !errors.Is(err, ErrBadRecord) {
				t.Errorf("readRecord(%s) error = %v, want %v", tt.json, err, ErrBadRecord)
			}
		})
	}
}

func TestWriteRecord(t *testing.T) {
	state := t.TempDir()
	digest := "sha256:" + strings.Repeat("ab", 32)
	imgs := []Image{
		{Release: "bookworm", Arch: "amd64", Backend: BackendUnshare, Digest: digest},
		{Release: "bookworm", Arch: "amd64", Backend: BackendOverlay, Format: FormatDirectory, Digest: digest},
		{Release: "trixie", Arch: "amd64", Backend: BackendXenLVM, Format: FormatXenLVM, Args: []string{"--vg", "v"}, Device: "/dev/v/b", Digest: digest},
	}
	for _, img := range imgs {
		if err := WriteRecord(state, img); err != nil {
			t.Fatalf("WriteRecord(%+v): %v", img, err)
		}
	}
	got, err := List(state)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != len(imgs) {
		t.Fatalf("List = %d images, want %d", len(got), len(imgs))
	}
	if err := WriteRecord(state, Image{Release: "bookworm", Arch: "amd64", Digest: "md5:x"}); !errors.Is(err, ErrBadRecord) {
		t.Errorf("WriteRecord(bad digest) error = %v, want %v", err, ErrBadRecord)
	}
	if err := WriteRecord(state, Image{Release: "../x", Arch: "amd64", Digest: digest}); !errors.Is(err, ErrBadName) {
		t.Errorf("WriteRecord(bad release) error = %v, want %v", err, ErrBadName)
	}
}
