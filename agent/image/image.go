// Package image owns the agent's testbed base images and their records:
// root filesystem tarballs (for autopkgtest's unshare backend) and
// directories (for sparegrid's overlay backend) built by mmdebstrap, and
// the registrations of xenlvm base volumes made on the host by other
// means; the JSON record kept for each one, the digest that names an
// image's contents, and the host set-up (subordinate id ranges) that
// autopkgtest's unshare backend needs before it can unpack tarballs.
//
// It builds, registers, lists, looks up and verifies images. It must not
// run tests: running autopkgtest in a testbed made from an image belongs
// to agent/runner. It must not create or change logical volumes: it only
// reads a base volume to hash it.
package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sparegrid/sparegrid/agent/internal/procgroup"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Errors returned by this package.
var (
	ErrNoImage        = errors.New("image: no such image")
	ErrDigestMismatch = errors.New("image: digest mismatch")
	ErrBadName        = errors.New("image: bad release or architecture name")
	ErrBadMirror      = errors.New("image: bad mirror URL")
	ErrBadRecord      = errors.New("image: bad image record")
	ErrBuild          = errors.New("image: build failed")
)

// BackendUnshare names autopkgtest's unshare virt server, which runs
// tarball images.
const BackendUnshare = "unshare"

// BackendOverlay names sparegrid's overlay backend, which runs directory
// images.
const BackendOverlay = "overlay"

// Image formats.
const (
	// FormatTar is a tarball written by mmdebstrap --format=tar, in
	// <release>-<arch>.tar with its record in <release>-<arch>.json.
	FormatTar = "tar"
	// FormatDirectory is a root filesystem directory written by
	// mmdebstrap --format=directory, in <release>-<arch>.dir with its
	// record in <release>-<arch>.dir.json. Its digest is DirDigest's.
	FormatDirectory = "directory"
)

// DefaultMirror is the Debian archive used when BuildOptions.Mirror is empty.
const DefaultMirror = "http://deb.debian.org/debian"

// killGrace is how long mmdebstrap gets to clean up after SIGTERM before
// its process group is killed.
const killGrace = 30 * time.Second

// Image describes one testbed base image.
type Image struct {
	Release string `json:"release"`
	Arch    string `json:"arch"`
	Backend string `json:"backend"`
	// Format is FormatTar, FormatDirectory or FormatXenLVM; empty means
	// FormatTar.
	Format string `json:"format,omitempty"`
	// Path is the tarball or directory. Records read from disk always
	// point at the image next to the record, whatever path was stored.
	// It is empty for FormatXenLVM, whose image is not on the agent's
	// disk.
	Path string `json:"path"`
	// Args are the xenlvm backend's arguments (FormatXenLVM only).
	Args []string `json:"args,omitempty"`
	// Device is the base volume's block device whose bytes the digest
	// covers (FormatXenLVM only).
	Device string `json:"device,omitempty"`
	// Digest is "sha256:" and lower-case hex: the sha256 of the tarball
	// or of the base volume's bytes, or DirDigest of the directory.
	Digest  string    `json:"digest"`
	Mirror  string    `json:"mirror"`
	BuiltAt time.Time `json:"built_at"`
	// Size is the tarball's or base volume's size, or the total size of
	// a directory's regular files.
	Size int64 `json:"size"`
}

// BuildOptions says which image to build and where.
type BuildOptions struct {
	// StateDir is the agent's state directory; images live in its
	// "images" subdirectory.
	StateDir string
	Release  string
	// Arch defaults to the host's dpkg architecture.
	Arch string
	// Mirror defaults to DefaultMirror.
	Mirror string
	// Log receives mmdebstrap's progress output; nil discards it.
	Log io.Writer
	// Format is FormatTar (the default when empty) or FormatDirectory.
	Format string
}

func validMirror(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadMirror, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %q: scheme must be http or https", ErrBadMirror, s)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: %q: no host", ErrBadMirror, s)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%w: %q: contains space or control character", ErrBadMirror, s)
		}
	}
	return nil
}

// Dir returns the directory that holds a state directory's images.
func Dir(stateDir string) string {
	return filepath.Join(stateDir, "images")
}

func baseName(release, arch string) string {
	return release + "-" + arch
}

// HostArch returns the host's Debian architecture.
func HostArch(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg", "--print-architecture").Output()
	if err != nil {
		return "", fmt.Errorf("image: dpkg --print-architecture: %w", err)
	}
	arch := strings.TrimSpace(string(out))
	if !dep8.ValidSuite(arch) {
		return "", fmt.Errorf("%w: dpkg architecture %q", ErrBadName, arch)
	}
	return arch, nil
}

// Build runs mmdebstrap to make the base image for opts.Release and
// opts.Arch, replacing any earlier image of the same name. mmdebstrap runs
// in unshare mode, so it mounts nothing on the host and needs a
// subordinate id range for the user (see EnsureSubordinateIDs). The tarball is
// written to a temporary file in the images directory and hashed as it is
// written; it is synced and renamed into place only when mmdebstrap
// succeeded, so a failed or cancelled build leaves the previous image (or
// none) and no partial file. On cancellation mmdebstrap's process group
// gets SIGTERM, then SIGKILL after a grace period.
func Build(ctx context.Context, opts BuildOptions) (Image, error) {
	if opts.StateDir == "" {
		return Image{}, fmt.Errorf("%w: empty state directory", ErrBuild)
	}
	arch, err := releaseArch(ctx, opts.Release, opts.Arch)
	if err != nil {
		return Image{}, err
	}
	mirror := opts.Mirror
	if mirror == "" {
		mirror = DefaultMirror
	}
	if err := validMirror(mirror); err != nil {
		return Image{}, err
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	switch opts.Format {
	case "", FormatTar:
	case FormatDirectory:
		return buildDir(ctx, opts.StateDir, opts.Release, arch, mirror, logw)
	default:
		return Image{}, fmt.Errorf("%w: unknown format %q", ErrBuild, opts.Format)
	}

	dir := Dir(opts.StateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	unlock, err := lock(filepath.Join(dir, "."+baseName(opts.Release, arch)+".lock"))
	if err != nil {
		return Image{}, err
	}
	defer unlock()

	final := filepath.Join(dir, baseName(opts.Release, arch)+".tar")
	tmp, err := os.CreateTemp(dir, "."+baseName(opts.Release, arch)+".tar.tmp-*")
	if err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	tail := &tailBuffer{max: 4096}
	args := mmdebstrapArgs(opts.Release, arch, mirror)
	cmd := exec.Command("mmdebstrap", args...)
	cmd.Stdout = cw
	cmd.Stderr = io.MultiWriter(logw, tail)
	if _, err := procgroup.Run(ctx, cmd, killGrace); err != nil {
		if ctx.Err() != nil {
			return Image{}, fmt.Errorf("%w: %w", ErrBuild, context.Cause(ctx))
		}
		return Image{}, fmt.Errorf("%w: mmdebstrap: %w: %s", ErrBuild, err, strings.TrimSpace(tail.String()))
	}
	if cw.n == 0 {
		return Image{}, fmt.Errorf("%w: mmdebstrap wrote an empty tarball", ErrBuild)
	}
	if err := tmp.Sync(); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Image{}, fmt.Errorf("%w: %w", ErrBuild, context.Cause(ctx))
	}
	img := Image{
		Release: opts.Release,
		Arch:    arch,
		Backend: BackendUnshare,
		Path:    final,
		Digest:  digestString(h),
		Mirror:  mirror,
		BuiltAt: time.Now().UTC().Truncate(time.Second),
		Size:    cw.n,
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	committed = true
	if err := writeRecord(filepath.Join(dir, baseName(opts.Release, arch)+".json"), img); err != nil {
		return Image{}, err
	}
	if err := syncDir(dir); err != nil {
		return Image{}, err
	}
	return img, nil
}

// mmdebstrapArgs returns mmdebstrap's arguments for a tarball written to
// standard output. The names must already be validated.
func mmdebstrapArgs(release, arch, mirror string) []string {
	return []string{
		"--mode=unshare",
		"--variant=apt",
		"--format=tar",
		"--architectures=" + arch,
		"--include=ca-certificates",
		"--",
		release,
		"-",
		fmt.Sprintf("deb %s %s main", mirror, release),
		fmt.Sprintf("deb-src %s %s main", mirror, release),
	}
}

func digestString(h hash.Hash) string {
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("image: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func writeRecord(path string, img Image) error {
	data, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("image: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("image: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("image: sync %s: %w", dir, err)
	}
	return nil
}

// maxRecordSize bounds an image record on disk.
const maxRecordSize = 64 << 10

// readRecord reads the record at path and points its Path at the tarball
// next to it.
func readRecord(path string) (Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return Image{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	if len(data) > maxRecordSize {
		return Image{}, fmt.Errorf("%w: %s: larger than %d bytes", ErrBadRecord, path, maxRecordSize)
	}
	var img Image
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&img); err != nil {
		return Image{}, fmt.Errorf("%w: %s: %w", ErrBadRecord, path, err)
	}
	if !dep8.ValidSuite(img.Release) || !dep8.ValidSuite(img.Arch) {
		return Image{}, fmt.Errorf("%w: %s: bad release or architecture", ErrBadRecord, path)
	}
	var suffix string
	switch img.Format {
	case "", FormatTar:
		suffix = ".tar"
	case FormatDirectory:
		suffix = ".dir"
	case FormatXenLVM:
		if img.Backend != BackendXenLVM || len(img.Args) == 0 || !filepath.IsAbs(img.Device) {
			return Image{}, fmt.Errorf("%w: %s: xenlvm record needs backend %q, arguments and an absolute device", ErrBadRecord, path, BackendXenLVM)
		}
	default:
		return Image{}, fmt.Errorf("%w: %s: unknown format %q", ErrBadRecord, path, img.Format)
	}
	want := baseName(img.Release, img.Arch) + recordSuffix(img.Format)
	if filepath.Base(path) != want {
		return Image{}, fmt.Errorf("%w: %s: names %s/%s (%s)", ErrBadRecord, path, img.Release, img.Arch, img.FormatName())
	}
	if !validDigest(img.Digest) {
		return Image{}, fmt.Errorf("%w: %s: bad digest %q", ErrBadRecord, path, img.Digest)
	}
	img.Path = ""
	if suffix != "" {
		img.Path = filepath.Join(filepath.Dir(path), baseName(img.Release, img.Arch)+suffix)
	}
	return img, nil
}

func validDigest(d string) bool {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(hexPart); i++ {
		c := hexPart[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// List returns the images recorded in stateDir, sorted by release,
// architecture and format. A state directory without images gives an empty list.
func List(stateDir string) ([]Image, error) {
	dir := Dir(stateDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	var imgs []Image
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		img, err := readRecord(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	sort.Slice(imgs, func(i, j int) bool {
		if imgs[i].Release != imgs[j].Release {
			return imgs[i].Release < imgs[j].Release
		}
		if imgs[i].Arch != imgs[j].Arch {
			return imgs[i].Arch < imgs[j].Arch
		}
		return imgs[i].FormatName() < imgs[j].FormatName()
	})
	return imgs, nil
}

// Lookup returns the tarball image for release and arch in stateDir, or an
// error wrapping ErrNoImage when there is none.
func Lookup(stateDir, release, arch string) (Image, error) {
	return LookupFormat(stateDir, release, arch, FormatTar)
}

// LookupFormat returns the image for release and arch in stateDir in the
// given format, or an error wrapping ErrNoImage when there is none.
func LookupFormat(stateDir, release, arch, format string) (Image, error) {
	if !dep8.ValidSuite(release) || !dep8.ValidSuite(arch) {
		return Image{}, fmt.Errorf("%w: %q/%q", ErrBadName, release, arch)
	}
	if format != FormatTar && format != FormatDirectory && format != FormatXenLVM {
		return Image{}, fmt.Errorf("%w: unknown format %q", ErrNoImage, format)
	}
	img, err := readRecord(filepath.Join(Dir(stateDir), baseName(release, arch)+recordSuffix(format)))
	if errors.Is(err, os.ErrNotExist) {
		return Image{}, fmt.Errorf("%w: %s/%s", ErrNoImage, release, arch)
	}
	if err != nil {
		return Image{}, err
	}
	return img, nil
}

// Verify hashes img's tarball, directory or base volume and compares it
// with the recorded digest and size. A difference gives an error wrapping
// ErrDigestMismatch; a missing image one wrapping ErrNoImage.
func Verify(img Image) error {
	if !validDigest(img.Digest) {
		return fmt.Errorf("%w: bad digest %q", ErrBadRecord, img.Digest)
	}
	switch img.Format {
	case FormatDirectory:
		return verifyDir(img)
	case FormatXenLVM:
		return verifyXenLVM(img)
	}
	f, err := os.Open(img.Path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNoImage, img.Path)
	}
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if got := digestString(h); got != img.Digest || n != img.Size {
		return fmt.Errorf("%w: %s: got %s (%d bytes), want %s (%d bytes)", ErrDigestMismatch, img.Path, got, n, img.Digest, img.Size)
	}
	return nil
}

// releaseArch checks a release name and an architecture, which defaults to
// the host's, and returns the architecture.
func releaseArch(ctx context.Context, release, arch string) (string, error) {
	if !dep8.ValidSuite(release) {
		return "", fmt.Errorf("%w: release %q", ErrBadName, release)
	}
	if arch == "" {
		var err error
		if arch, err = HostArch(ctx); err != nil {
			return "", err
		}
	}
	if !dep8.ValidSuite(arch) {
		return "", fmt.Errorf("%w: architecture %q", ErrBadName, arch)
	}
	return arch, nil
}
