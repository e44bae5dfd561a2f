package worker

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// ErrUnsafeArchive means a source archive tried to write outside its
// directory, through a symlink, or to make something other than regular
// files, directories and contained links.
var ErrUnsafeArchive = errors.New("worker: unsafe source archive")

// Limits on an extracted source archive.
const (
	maxArchiveEntries = 200_000
	maxArchiveBytes   = 4 << 30
)

// Extract unpacks the tar stream r into dir, which must exist. It keeps
// permission bits (without set-id bits) and refuses, with an error wrapping
// ErrUnsafeArchive: absolute names, names with "..", names that pass through
// a symlink, entries that replace an existing file, symlinks whose target is
// absolute or leaves dir, hard links to anything but an earlier regular
// file, and device files, FIFOs and other special entries.
func Extract(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("worker: extract: %w", err)
	}
	defer root.Close()
	x := extractor{root: root, regular: map[string]bool{}}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return x.checkSymlinks()
		}
		if err != nil {
			return fmt.Errorf("worker: read source archive: %w", err)
		}
		if n >= maxArchiveEntries {
			return fmt.Errorf("%w: more than %d entries", ErrUnsafeArchive, maxArchiveEntries)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
}

type extractor struct {
	root     *os.Root
	written  int64
	symlinks []string
	// regular holds the names of extracted regular files, the only
	// targets a hard link may have.
	regular map[string]bool
}

func unsafe(name, why string) error {
	return fmt.Errorf("%w: %q: %s", ErrUnsafeArchive, name, why)
}

// cleanName validates an entry name and returns it in canonical form; ""
// means the archive's root directory.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", unsafe(name, "empty name")
	}
	if strings.ContainsRune(name, 0) {
		return "", unsafe(name, "NUL in name")
	}
	if strings.HasPrefix(name, "/") {
		return "", unsafe(name, "absolute path")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", unsafe(name, `".." in path`)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// checkParents refuses a name whose parent directories include anything
// but real directories.
func (x *extractor) checkParents(name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := x.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // MkdirAll makes the rest
		}
		if err != nil {
			return fmt.Errorf("worker: extract %q: %w", name, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return unsafe(name, "path passes through symlink "+p)
		}
		if !fi.IsDir() {
			return unsafe(name, "path passes through non-directory "+p)
		}
	}
	return nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		if hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return unsafe(hdr.Name, "not a directory")
	}
	if err := x.checkParents(name); err != nil {
		return err
	}
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("worker: extract %q: %w", name, err)
		}
	}
	existing, err := x.root.Lstat(name)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("worker: extract %q: %w", name, err)
	}
	perm := fs.FileMode(hdr.Mode) & fs.ModePerm

	switch hdr.Typeflag {
	case tar.TypeDir:
		if exists {
			if !existing.IsDir() {
				return unsafe(hdr.Name, "directory replaces an existing entry")
			}
		} else if err := x.root.Mkdir(name, 0o700); err != nil {
			return fmt.Errorf("worker: extract %q: %w", name, err)
		}
		// The owner keeps full access, so that later entries can be
		// written into it and the work directory can be removed.
		return x.chmod(name, perm|0o700)
	case tar.TypeReg:
		return x.file(hdr, name, exists, perm, r)
	case tar.TypeSymlink:
		if exists {
			return unsafe(hdr.Name, "symlink replaces an existing entry")
		}
		if err := checkLinkTarget(name, hdr.Linkname); err != nil {
			return err
		}
		if err := x.root.Symlink(hdr.Linkname, name); err != nil {
			return fmt.Errorf("worker: extract %q: %w", name, err)
		}
		x.symlinks = append(x.symlinks, name)
		return nil
	case tar.TypeLink:
		if exists {
			return unsafe(hdr.Name, "hard link replaces an existing entry")
		}
		target, err := cleanName(hdr.Linkname)
		if err != nil || !x.regular[target] {
			return unsafe(hdr.Name, "hard link to "+hdr.Linkname+", which is not an earlier regular file")
		}
		if err := x.root.Link(target, name); err != nil {
			return fmt.Errorf("worker: extract %q: %w", name, err)
		}
		return nil
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	}
	return unsafe(hdr.Name, fmt.Sprintf("entry type %q is not allowed", hdr.Typeflag))
}

func (x *extractor) file(hdr *tar.Header, name string, exists bool, perm fs.FileMode, r io.Reader) error {
	if exists {
		return unsafe(hdr.Name, "file replaces an existing entry")
	}
	if hdr.Size < 0 || x.written+hdr.Size > maxArchiveBytes {
		return fmt.Errorf("%w: more than %d bytes", ErrUnsafeArchive, int64(maxArchiveBytes))
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("worker: extract %q: %w", name, err)
	}
	n, err := io.Copy(f, io.LimitReader(r, hdr.Size))
	x.written += n
	if err != nil {
		f.Close()
		return fmt.Errorf("worker: extract %q: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("worker: extract %q: %w", name, err)
	}
	x.regular[name] = true
	return x.chmod(name, perm)
}

func (x *extractor) chmod(name string, perm fs.FileMode) error {
	if err := x.root.Chmod(name, perm); err != nil {
		return fmt.Errorf("worker: extract %q: %w", name, err)
	}
	return nil
}

// checkLinkTarget refuses a symlink target that is absolute or, resolved
// lexically from the link's directory, leaves the archive.
func checkLinkTarget(name, target string) error {
	if target == "" || strings.ContainsRune(target, 0) {
		return unsafe(name, "symlink with empty or invalid target")
	}
	if strings.HasPrefix(target, "/") {
		return unsafe(name, "symlink to absolute path "+target)
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return unsafe(name, "symlink to "+target+" leaves the archive")
	}
	return nil
}

// checkSymlinks resolves every extracted symlink inside the root, which
// catches chains of links that escape together although each one alone
// stays inside.
func (x *extractor) checkSymlinks() error {
	for _, name := range x.symlinks {
		if _, err := x.root.Stat(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return unsafe(name, "symlink resolves outside the archive")
		}
	}
	return nil
}
