package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sparegrid/sparegrid/agent/internal/procgroup"
)

// FormatName returns img's format, FormatTar when none is recorded.
func (img Image) FormatName() string {
	if img.Format == "" {
		return FormatTar
	}
	return img.Format
}

// recordSuffix is what follows <release>-<arch> in the name of a record
// of an image in format.
func recordSuffix(format string) string {
	switch format {
	case FormatDirectory:
		return ".dir.json"
	case FormatXenLVM:
		return ".xenlvm.json"
	}
	return ".json"
}

// mmdebstrapDirArgs returns mmdebstrap's arguments for a root filesystem
// directory at target. Directory images are for the overlay backend, which
// runs as root and uses the files' owners as they are, so mmdebstrap runs in
// root mode: unshare mode would leave files owned by subordinate ids.
func mmdebstrapDirArgs(release, arch, mirror, target string) []string {
	return []string{
		"--mode=root",
		"--variant=apt",
		"--format=directory",
		"--architectures=" + arch,
		"--include=ca-certificates",
		"--",
		release,
		target,
		fmt.Sprintf("deb %s %s main", mirror, release),
		fmt.Sprintf("deb-src %s %s main", mirror, release),
	}
}

// buildDir builds a directory image into a temporary directory next to
// the final one, computes its digest and moves it into place. The names
// must already be validated.
func buildDir(ctx context.Context, stateDir, release, arch, mirror string, logw io.Writer) (Image, error) {
	dir := Dir(stateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	base := baseName(release, arch)
	unlock, err := lock(filepath.Join(dir, "."+base+".dir.lock"))
	if err != nil {
		return Image{}, err
	}
	defer unlock()

	final := filepath.Join(dir, base+".dir")
	tmp, err := os.MkdirTemp(dir, "."+base+".dir.tmp-*")
	if err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	defer removeTree(tmp)
	target := filepath.Join(tmp, "rootfs")

	tail := &tailBuffer{max: 4096}
	cmd := exec.Command("mmdebstrap", mmdebstrapDirArgs(release, arch, mirror, target)...)
	out := io.MultiWriter(logw, tail)
	cmd.Stdout = out
	cmd.Stderr = out
	if _, err := procgroup.Run(ctx, cmd, killGrace); err != nil {
		if ctx.Err() != nil {
			return Image{}, fmt.Errorf("%w: %w", ErrBuild, context.Cause(ctx))
		}
		return Image{}, fmt.Errorf("%w: mmdebstrap: %w: %s", ErrBuild, err, strings.TrimSpace(tail.String()))
	}
	if err := os.Chmod(target, 0o755); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	h := sha256.New()
	size, err := DirManifest(h, target)
	if err != nil {
		return Image{}, err
	}
	if err := ctx.Err(); err != nil {
		return Image{}, fmt.Errorf("%w: %w", ErrBuild, context.Cause(ctx))
	}
	img := Image{
		Release: release,
		Arch:    arch,
		Backend: BackendOverlay,
		Format:  FormatDirectory,
		Path:    final,
		Digest:  digestString(h),
		Mirror:  mirror,
		BuiltAt: time.Now().UTC().Truncate(time.Second),
		Size:    size,
	}
	syscall.Sync()
	if err := os.Rename(final, filepath.Join(tmp, "old")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(target, final); err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	if err := writeRecord(filepath.Join(dir, base+recordSuffix(FormatDirectory)), img); err != nil {
		return Image{}, err
	}
	if err := syncDir(dir); err != nil {
		return Image{}, err
	}
	return img, nil
}

// removeTree deletes dir after detaching anything mounted below it (a
// killed mmdebstrap in root mode can leave /proc or /dev mounts behind),
// so that deleting never reaches into a host file system.
func removeTree(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if mp := unescapeMountinfo(f[4]); strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, mp := range mounts {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("image: unmount %s: %w", mp, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space and so on)
// in a /proc/self/mountinfo path.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// DirDigest returns the digest of the directory tree at dir: "sha256:" and
// the lower-case hex sha256 of its DirManifest.
func DirDigest(dir string) (string, error) {
	h := sha256.New()
	if _, err := DirManifest(h, dir); err != nil {
		return "", err
	}
	return digestString(h), nil
}

// DirManifest writes the manifest of the directory tree at dir to w and
// returns the total size of its regular files. The manifest has one line
// per entry, dir itself first, then depth first with the entries of each
// directory in byte order of their names:
//
//	PATH MODE UID GID DETAIL [XATTRS]
//
// PATH is the path relative to dir ("." for dir), Go-quoted; MODE is the
// octal st_mode (file type, permission and set-id bits); DETAIL is, for a
// regular file, its size and "sha256:" and the hex sha256 of its content;
// for a symbolic link "->" and the Go-quoted target; for a device,
// "MAJOR,MINOR"; otherwise "-". XATTRS, for files and directories that
// have extended attributes, is "xattr" and NAME=HEX pairs sorted by name.
// Timestamps, link counts and inode numbers are left out, so copies of a
// tree have the same manifest.
func DirManifest(w io.Writer, dir string) (int64, error) {
	bw := bufio.NewWriter(w)
	var total int64
	buf := make([]byte, 256<<10)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("no stat for %s", path)
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "%s %o %d %d ", strconv.Quote(rel), st.Mode, st.Uid, st.Gid)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			sum, err := hashFile(path, buf)
			if err != nil {
				return err
			}
			total += st.Size
			fmt.Fprintf(bw, "%d sha256:%s", st.Size, sum)
		case syscall.S_IFLNK:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, "-> %s", strconv.Quote(target))
		case syscall.S_IFCHR, syscall.S_IFBLK:
			fmt.Fprintf(bw, "%d,%d", (st.Rdev>>8)&0xfff|(st.Rdev>>32)&^0xfff, st.Rdev&0xff|(st.Rdev>>12)&^0xff)
		default:
			bw.WriteString("-")
		}
		if mode := st.Mode & syscall.S_IFMT; mode == syscall.S_IFREG || mode == syscall.S_IFDIR {
			x, err := xattrs(path)
			if err != nil {
				return err
			}
			if x != "" {
				bw.WriteString(" xattr " + x)
			}
		}
		return bw.WriteByte('\n')
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %w", ErrNoImage, err)
	}
	if err != nil {
		return 0, fmt.Errorf("image: manifest of %s: %w", dir, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("image: %w", err)
	}
	return total, nil
}

func hashFile(path string, buf []byte) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// xattrs returns path's extended attributes as sorted NAME=HEX pairs.
func xattrs(path string) (string, error) {
	sz, err := syscall.Listxattr(path, nil)
	if errors.Is(err, syscall.ENOTSUP) {
		return "", nil
	}
	if err != nil || sz == 0 {
		return "", err
	}
	list := make([]byte, sz)
	if sz, err = syscall.Listxattr(path, list); err != nil {
		return "", err
	}
	var names []string
	for _, n := range strings.Split(string(list[:sz]), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var pairs []string
	for _, n := range names {
		vsz, err := syscall.Getxattr(path, n, nil)
		if err != nil {
			return "", err
		}
		v := make([]byte, vsz)
		if vsz, err = syscall.Getxattr(path, n, v); err != nil {
			return "", err
		}
		pairs = append(pairs, strconv.Quote(n)+"="+hex.EncodeToString(v[:vsz]))
	}
	return strings.Join(pairs, " "), nil
}

// verifyDir recomputes a directory image's digest and size.
func verifyDir(img Image) error {
	h := sha256.New()
	n, err := DirManifest(h, img.Path)
	if err != nil {
		return err
	}
	if got := digestString(h); got != img.Digest || n != img.Size {
		return fmt.Errorf("%w: %s: got %s (%d bytes), want %s (%d bytes)", ErrDigestMismatch, img.Path, got, n, img.Digest, img.Size)
	}
	return nil
}
