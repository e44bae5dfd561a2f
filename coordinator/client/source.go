package client

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/internal/deb822"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Errors of PackSource.
var (
	ErrNotSource   = errors.New("client: not a source package")
	ErrBadControl  = errors.New("client: bad control data")
	ErrUnsafeName  = errors.New("client: unsafe file name")
	ErrChecksum    = errors.New("client: checksum mismatch")
	errTooBigInput = errors.New("client: control file too large")
)

// maxControl caps a debian/control, debian/changelog or .dsc read whole.
const maxControl = 1 << 20

// Packed is a source package packed for upload: an uncompressed tar archive
// in a temporary file that the caller removes.
type Packed struct {
	// File is the path of the temporary tar archive.
	File   string
	SHA256 string
	Size   int64
	// Kind is KindTree for an unpacked source tree, KindDsc for a .dsc
	// with its files.
	Kind string
	// Entry is the path inside the archive to hand to autopkgtest: the
	// tree's directory ("hello/") or the .dsc's name ("hello_1.0-1.dsc").
	Entry string
	// Package is the source package name.
	Package string
	// Version is the source version when the tree's debian/changelog or
	// the .dsc names one, else empty.
	Version string
	// Skipped lists paths in the tree that were left out of the archive:
	// special files and symbolic links that leave the tree.
	Skipped []string
}

// Source returns the job source that names the archive once uploaded.
func (p Packed) Source() *Source {
	return &Source{SHA256: p.SHA256, Size: p.Size, Kind: p.Kind, Entry: p.Entry}
}

// PackSource packs the source package at path, which is either an unpacked
// source tree (a directory with debian/control) or a .dsc file whose files
// lie beside it.
//
// A tree is archived under its base name with its directories, regular
// files (modes kept, so test scripts stay executable) and the symbolic
// links that stay inside it; .git is left out. A .dsc is archived flat with
// every file it lists, each checked against the listed size and sha256.
func PackSource(path string) (Packed, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Packed{}, fmt.Errorf("client: source: %w", err)
	}
	switch {
	case fi.IsDir():
		return packTree(path)
	case fi.Mode().IsRegular() && strings.HasSuffix(path, ".dsc"):
		return packDsc(path)
	}
	return Packed{}, fmt.Errorf("%w: %s is neither a source tree (a directory with debian/control) nor a .dsc file", ErrNotSource, path)
}

func packTree(path string) (Packed, error) {
	root, err := filepath.Abs(path)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return Packed{}, fmt.Errorf("client: source %s: %w", path, err)
	}
	base := filepath.Base(root)
	if base == string(filepath.Separator) || base == "." {
		return Packed{}, fmt.Errorf("%w: refusing to pack %s", ErrNotSource, root)
	}
	controlPath := filepath.Join(root, "debian", "control")
	control, err := readRegular(controlPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Packed{}, fmt.Errorf("%w: %s has no debian/control", ErrNotSource, path)
		}
		return Packed{}, err
	}
	para, err := parseParagraph(control)
	if err != nil {
		return Packed{}, fmt.Errorf("%s: %w", controlPath, err)
	}
	name := para["source"]
	if err := checkSourceName(name); err != nil {
		return Packed{}, fmt.Errorf("%s: %w", controlPath, err)
	}
	p := Packed{Kind: KindTree, Entry: base + "/", Package: name}
	if cl, err := readRegular(filepath.Join(root, "debian", "changelog")); err == nil {
		p.Version = changelogVersion(cl)
	}

	err = writeArchive(&p, func(tw *tar.Writer) error {
		return filepath.WalkDir(root, func(file string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, file)
			if err != nil {
				return err
			}
			if rel != "." && d.Name() == ".git" {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			name := base
			if rel != "." {
				name += "/" + filepath.ToSlash(rel)
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode := info.Mode()
			hdr := &tar.Header{
				Name:    name,
				Mode:    int64(mode.Perm()),
				ModTime: info.ModTime().UTC().Truncate(time.Second),
			}
			switch {
			case mode.IsDir():
				hdr.Typeflag = tar.TypeDir
				hdr.Name += "/"
				return tw.WriteHeader(hdr)
			case mode.IsRegular():
				hdr.Typeflag = tar.TypeReg
				hdr.Size = info.Size()
				return copyFile(tw, hdr, file, nil)
			case mode&fs.ModeSymlink != 0:
				target, err := os.Readlink(file)
				if err != nil {
					return err
				}
				if !linkInside(root, rel, target) {
					p.Skipped = append(p.Skipped, filepath.ToSlash(rel))
					return nil
				}
				hdr.Typeflag = tar.TypeSymlink
				hdr.Linkname = target
				hdr.Mode = 0o777
				return tw.WriteHeader(hdr)
			}
			p.Skipped = append(p.Skipped, filepath.ToSlash(rel))
			return nil
		})
	})
	if err != nil {
		return Packed{}, fmt.Errorf("client: pack %s: %w", path, err)
	}
	return p, nil
}

// linkInside reports whether the symbolic link at rel (relative to root)
// with the given target resolves inside root, both as written and, when
// the target exists, as the file system resolves it.
func linkInside(root, rel, target string) bool {
	if target == "" || filepath.IsAbs(target) {
		return false
	}
	if !relInside(filepath.Join(filepath.Dir(rel), target)) {
		return false
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(root, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	r, err := filepath.Rel(root, resolved)
	return err == nil && relInside(r)
}

func relInside(rel string) bool {
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func packDsc(path string) (Packed, error) {
	data, err := readRegular(path)
	if err != nil {
		return Packed{}, err
	}
	dsc, err := parseDsc(data)
	if err != nil {
		return Packed{}, fmt.Errorf("%s: %w", path, err)
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	for _, f := range dsc.Files {
		if f.Name == base {
			return Packed{}, fmt.Errorf("%s: %w: the .dsc lists itself", path, ErrUnsafeName)
		}
		fi, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil {
			return Packed{}, fmt.Errorf("%s lists %s: %w", path, f.Name, err)
		}
		if !fi.Mode().IsRegular() {
			return Packed{}, fmt.Errorf("%w: %s lists %s, which is not a regular file", ErrNotSource, path, f.Name)
		}
		if fi.Size() != f.Size {
			return Packed{}, fmt.Errorf("%w: %s is %d bytes, %s says %d", ErrChecksum, f.Name, fi.Size(), base, f.Size)
		}
	}
	p := Packed{Kind: KindDsc, Entry: base, Package: dsc.Source, Version: dsc.Version}
	err = writeArchive(&p, func(tw *tar.Writer) error {
		if err := writeFlat(tw, dir, base, nil); err != nil {
			return err
		}
		for _, f := range dsc.Files {
			if err := writeFlat(tw, dir, f.Name, &f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Packed{}, fmt.Errorf("client: pack %s: %w", path, err)
	}
	return p, nil
}

func writeFlat(tw *tar.Writer, dir, name string, want *dscFile) error {
	file := filepath.Join(dir, name)
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     int64(fi.Mode().Perm()),
		Size:     fi.Size(),
		ModTime:  fi.ModTime().UTC().Truncate(time.Second),
	}
	return copyFile(tw, hdr, file, want)
}

// copyFile writes hdr and exactly hdr.Size bytes of file, and checks them
// against want's sha256 when it names one.
func copyFile(tw *tar.Writer, hdr *tar.Header, file string, want *dscFile) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	var w io.Writer = tw
	var h hash.Hash
	if want != nil && want.SHA256 != "" {
		h = sha256.New()
		w = io.MultiWriter(tw, h)
	}
	if _, err := io.CopyN(w, f, hdr.Size); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s shrank while it was read", file)
		}
		return err
	}
	if h != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
			return fmt.Errorf("%w: %s has sha256 %s, the .dsc says %s", ErrChecksum, want.Name, got, want.SHA256)
		}
	}
	return nil
}

// writeArchive creates p's temporary file, lets fill write the entries and
// sets p's File, SHA256 and Size. It removes the file on error.
func writeArchive(p *Packed, fill func(*tar.Writer) error) (err error) {
	f, err := os.CreateTemp("", "sparegrid-source-*.tar")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriter(cw)
	tw := tar.NewWriter(bw)
	if err := fill(tw); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	p.File, p.SHA256, p.Size = f.Name(), hex.EncodeToString(h.Sum(nil)), cw.n
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// readRegular reads a small regular file whole, refusing anything else.
func readRegular(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotSource, path)
	}
	if fi.Size() > maxControl {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", errTooBigInput, path, maxControl)
	}
	return os.ReadFile(path)
}

// checkSourceName reports whether name is a valid Debian source package
// name, as dep8.ValidSource decides.
func checkSourceName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: no Source field", ErrBadControl)
	}
	if !dep8.ValidSource(name) {
		return fmt.Errorf("%w: %q is not a valid source package name", ErrBadControl, name)
	}
	return nil
}

// changelogVersion returns the version of the first entry of a
// debian/changelog, or "" when it cannot tell.
func changelogVersion(data []byte) string {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	_, rest, ok := bytes.Cut(first, []byte("("))
	if !ok {
		return ""
	}
	v, _, ok := bytes.Cut(rest, []byte(")"))
	if !ok || len(v) == 0 || bytes.ContainsAny(v, " \t") {
		return ""
	}
	return string(v)
}

type dscInfo struct {
	Source  string
	Version string
	Files   []dscFile
}

type dscFile struct {
	Name   string
	Size   int64
	SHA256 string // empty when the .dsc has no Checksums-Sha256 line for it
}

// parseDsc reads a .dsc, with or without its OpenPGP clear-signature
// armour (which it does not check), and returns the source name, version
// and the files listed in Files and Checksums-Sha256.
func parseDsc(data []byte) (dscInfo, error) {
	body, err := stripClearsign(data)
	if err != nil {
		return dscInfo{}, err
	}
	para, err := parseParagraph(body)
	if err != nil {
		return dscInfo{}, err
	}
	info := dscInfo{Source: para["source"], Version: para["version"]}
	if err := checkSourceName(info.Source); err != nil {
		return dscInfo{}, err
	}
	index := map[string]int{}
	add := func(field string, sumLen int) error {
		for _, line := range strings.Split(para[field], "\n") {
			if line == "" {
				continue
			}
			parts := strings.Fields(line)
			if len(parts) != 3 {
				return fmt.Errorf("%w: %s line %q: want \"checksum size name\"", ErrBadControl, field, line)
			}
			sum, sizeText, name := strings.ToLower(parts[0]), parts[1], parts[2]
			if len(sum) != sumLen || !isHex(sum) {
				return fmt.Errorf("%w: %s line %q: bad checksum", ErrBadControl, field, line)
			}
			size, err := strconv.ParseInt(sizeText, 10, 64)
			if err != nil || size < 0 {
				return fmt.Errorf("%w: %s line %q: bad size", ErrBadControl, field, line)
			}
			if err := checkFlatName(name); err != nil {
				return err
			}
			i, seen := index[name]
			if !seen {
				i = len(info.Files)
				index[name] = i
				info.Files = append(info.Files, dscFile{Name: name, Size: size})
			}
			f := &info.Files[i]
			if f.Size != size {
				return fmt.Errorf("%w: %s is listed with sizes %d and %d", ErrBadControl, name, f.Size, size)
			}
			if field == "checksums-sha256" {
				if f.SHA256 != "" && f.SHA256 != sum {
					return fmt.Errorf("%w: %s is listed with two sha256 sums", ErrBadControl, name)
				}
				f.SHA256 = sum
			}
		}
		return nil
	}
	if err := add("files", 32); err != nil {
		return dscInfo{}, err
	}
	if err := add("checksums-sha256", 64); err != nil {
		return dscInfo{}, err
	}
	if len(info.Files) == 0 {
		return dscInfo{}, fmt.Errorf("%w: no Files field", ErrBadControl)
	}
	return info, nil
}

// checkFlatName refuses a .dsc file name that is not a plain name in the
// .dsc's own directory.
func checkFlatName(name string) error {
	if name == "" || name == "." || strings.Contains(name, "..") ||
		strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("%w: %q", ErrUnsafeName, name)
	}
	return nil
}

// stripClearsign returns the signed text of an OpenPGP clear-signed
// message without checking the signature, or data itself when it is not
// armoured.
func stripClearsign(data []byte) ([]byte, error) {
	body, err := deb822.Unsign(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadControl, err)
	}
	return body, nil
}

// parseParagraph parses the first paragraph of deb822 text into fields
// keyed by lower-case name (see deb822.Paragraph).
func parseParagraph(data []byte) (map[string]string, error) {
	fields, err := deb822.Paragraph(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadControl, err)
	}
	return fields, nil
}
