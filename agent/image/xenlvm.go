package image

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
)

// BackendXenLVM names the xenlvm backend of sparegrid's virt server,
// which runs Xen guests on snapshots of a base logical volume.
const BackendXenLVM = "xenlvm"

// FormatXenLVM is a base logical volume that lives in the host's LVM, not
// in the agent's state directory. Its record, in
// <release>-<arch>.xenlvm.json, holds the backend's arguments and the
// sha256 of the volume's bytes.
const FormatXenLVM = "xenlvm"

// ErrRegister means a xenlvm testbed could not be registered.
var ErrRegister = errors.New("image: cannot register testbed")

// lvmName is what LVM accepts as a volume group or logical volume name.
var lvmName = regexp.MustCompile(`^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$`)

// RegisterOptions says which xenlvm testbed to register.
type RegisterOptions struct {
	StateDir string
	Release  string
	// Arch defaults to the host's dpkg architecture.
	Arch string
	// Args are the xenlvm backend's arguments, such as "--vg vg0 --base
	// sparegrid-base-bookworm --guest-config FILE ...". The caller
	// validates them; Register only reads --vg and --base.
	Args []string
	// Device is the base volume's block device, hashed for the digest;
	// empty means /dev/<vg>/<base>.
	Device string
}

// Register records a xenlvm testbed whose base volume already exists,
// replacing any earlier record of the same release and architecture. The
// digest is the sha256 of the base volume's bytes, read from its block
// device; the record is written atomically once hashing has finished.
func Register(ctx context.Context, opts RegisterOptions) (Image, error) {
	if opts.StateDir == "" {
		return Image{}, fmt.Errorf("%w: empty state directory", ErrRegister)
	}
	arch, err := releaseArch(ctx, opts.Release, opts.Arch)
	if err != nil {
		return Image{}, err
	}
	if len(opts.Args) == 0 {
		return Image{}, fmt.Errorf("%w: no backend arguments", ErrRegister)
	}
	device := opts.Device
	if device == "" {
		vg, base := volumeFlags(opts.Args)
		if !lvmName.MatchString(vg) || !lvmName.MatchString(base) {
			return Image{}, fmt.Errorf("%w: the arguments name no --vg and --base volume", ErrRegister)
		}
		device = "/dev/" + vg + "/" + base
	}
	if !filepath.IsAbs(device) {
		return Image{}, fmt.Errorf("%w: device %q is not an absolute path", ErrRegister, device)
	}

	dir := Dir(opts.StateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	base := baseName(opts.Release, arch)
	unlock, err := lock(filepath.Join(dir, "."+base+".xenlvm.lock"))
	if err != nil {
		return Image{}, err
	}
	defer unlock()

	digest, size, err := hashDevice(ctx, device)
	if err != nil {
		return Image{}, err
	}
	img := Image{
		Release: opts.Release,
		Arch:    arch,
		Backend: BackendXenLVM,
		Format:  FormatXenLVM,
		Args:    slices.Clone(opts.Args),
		Device:  device,
		Digest:  digest,
		BuiltAt: time.Now().UTC().Truncate(time.Second),
		Size:    size,
	}
	if err := writeRecord(filepath.Join(dir, base+recordSuffix(FormatXenLVM)), img); err != nil {
		return Image{}, err
	}
	if err := syncDir(dir); err != nil {
		return Image{}, err
	}
	return img, nil
}

// volumeFlags returns the values of --vg and --base in the xenlvm
// backend's arguments, which use Go's flag syntax.
func volumeFlags(args []string) (vg, base string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if name == "insecure-no-host-key-check" {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				break
			}
			i++
			value = args[i]
		}
		switch name {
		case "vg":
			vg = value
		case "base":
			base = value
		}
	}
	return vg, base
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

// hashDevice streams device through sha256.
func hashDevice(ctx context.Context, device string) (digest string, size int64, err error) {
	f, err := os.Open(device)
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, fmt.Errorf("%w: %s", ErrNoImage, device)
	}
	if err != nil {
		return "", 0, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxReader{ctx, f}, make([]byte, 1<<20))
	if err != nil {
		return "", 0, fmt.Errorf("image: read %s: %w", device, err)
	}
	return digestString(h), n, nil
}

// verifyXenLVM re-hashes a xenlvm testbed's base volume.
func verifyXenLVM(img Image) error {
	got, n, err := hashDevice(context.Background(), img.Device)
	if err != nil {
		return err
	}
	if got != img.Digest || n != img.Size {
		return fmt.Errorf("%w: %s: got %s (%d bytes), want %s (%d bytes)", ErrDigestMismatch, img.Device, got, n, img.Digest, img.Size)
	}
	return nil
}

// WriteRecord writes img's record into stateDir's images directory,
// atomically, under the name its release, architecture and format give.
// It is for tests and for tools that make images by other means; it does
// not look at the image itself.
func WriteRecord(stateDir string, img Image) error {
	if !dep8.ValidSuite(img.Release) || !dep8.ValidSuite(img.Arch) {
		return fmt.Errorf("%w: %q/%q", ErrBadName, img.Release, img.Arch)
	}
	if !validDigest(img.Digest) {
		return fmt.Errorf("%w: bad digest %q", ErrBadRecord, img.Digest)
	}
	switch img.FormatName() {
	case FormatTar, FormatDirectory, FormatXenLVM:
	default:
		return fmt.Errorf("%w: unknown format %q", ErrBadRecord, img.Format)
	}
	dir := Dir(stateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return writeRecord(filepath.Join(dir, baseName(img.Release, img.Arch)+recordSuffix(img.Format)), img)
}
