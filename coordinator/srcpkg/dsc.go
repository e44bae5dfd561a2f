package srcpkg

import (
	"archive/tar"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// dscFile is a file a .dsc lists.
type dscFile struct {
	name string
	size int64
}

type dscInfo struct {
	format    string
	testsuite string
	files     []dscFile
}

func parseDsc(data []byte) (dscInfo, error) {
	body, err := stripClearsign(data)
	if err != nil {
		return dscInfo{}, err
	}
	para, err := parseParagraph(body)
	if err != nil {
		return dscInfo{}, err
	}
	d := dscInfo{format: oneLine(para["format"]), testsuite: oneLine(para["testsuite"])}
	if d.format == "" {
		d.format = "1.0"
	}
	for _, line := range strings.Split(para["files"], "\n") {
		parts := strings.Fields(line)
		if len(parts) == 0 {
			continue
		}
		if len(parts) != 3 {
			return dscInfo{}, fmt.Errorf("%w: Files line %q: want \"md5sum size name\"", ErrBadArchive, truncate(line))
		}
		size, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || size < 0 {
			return dscInfo{}, fmt.Errorf("%w: Files line %q: bad size", ErrBadArchive, truncate(line))
		}
		name := parts[2]
		if name == "." || strings.Contains(name, "..") || strings.ContainsAny(name, "/\\\x00") {
			return dscInfo{}, fmt.Errorf("%w: unsafe file name %q", ErrBadArchive, truncate(name))
		}
		d.files = append(d.files, dscFile{name: name, size: size})
	}
	if len(d.files) == 0 {
		return dscInfo{}, fmt.Errorf("%w: no Files field", ErrBadArchive)
	}
	return d, nil
}

// role is what a file listed in a .dsc is to the unpacked tree.
type role int

const (
	roleNone   role = iota
	roleDebian      // debian tarball of 3.0 (quilt): debian/tests/control at its top
	roleTop         // native or orig tarball: one leading directory
	roleDiff        // 1.0 diff.gz
)

// plan decides which listed files to read for the .dsc's format.
func (d dscInfo) plan() (map[string]role, error) {
	matching := func(ok func(string) bool) []dscFile {
		var out []dscFile
		for _, f := range d.files {
			if ok(f.name) {
				out = append(out, f)
			}
		}
		return out
	}
	one := func(what string, ok func(string) bool) (string, error) {
		fs := matching(ok)
		if len(fs) != 1 {
			return "", fmt.Errorf("%w: format %s wants one %s, the .dsc lists %d", ErrBadArchive, d.format, what, len(fs))
		}
		return fs[0].name, nil
	}
	isTar := func(n string) bool { return compressedTar(n) != "" }
	isOrig := func(n string) bool { return isTar(n) && strings.Contains(n, ".orig.tar.") }
	isDebian := func(n string) bool { return isTar(n) && strings.Contains(n, ".debian.tar.") }
	switch d.format {
	case "3.0 (quilt)":
		n, err := one("debian tarball", isDebian)
		return map[string]role{n: roleDebian}, err
	case "3.0 (native)":
		n, err := one("tarball", func(n string) bool { return isTar(n) && !isOrig(n) && !isDebian(n) })
		return map[string]role{n: roleTop}, err
	case "1.0":
		if len(matching(func(n string) bool { return strings.HasSuffix(n, ".diff.gz") })) == 0 {
			n, err := one("tarball", func(n string) bool { return strings.HasSuffix(n, ".tar.gz") })
			return map[string]role{n: roleTop}, err
		}
		orig, err := one("orig tarball", func(n string) bool { return strings.HasSuffix(n, ".orig.tar.gz") })
		if err != nil {
			return nil, err
		}
		diff, err := one("diff", func(n string) bool { return strings.HasSuffix(n, ".diff.gz") })
		return map[string]role{orig: roleTop, diff: roleDiff}, err
	}
	return nil, fmt.Errorf("%w: source format %q", ErrUnsupported, truncate(d.format))
}

// compressedTar returns the compression suffix of a tarball name, or ""
// when it is not one.
func compressedTar(name string) string {
	for _, c := range []string{".gz", ".xz", ".bz2", ".lzma"} {
		if strings.HasSuffix(name, ".tar"+c) {
			return c
		}
	}
	return ""
}

// dsc reads a .dsc named entry and the files it lists.
func (s *scan) dsc(r io.Reader, entry string) (Control, error) {
	if entry == "" || strings.Contains(entry, "..") || strings.ContainsAny(entry, "/\\\x00") {
		return Control{}, fmt.Errorf("%w: bad .dsc entry %q", ErrBadArchive, truncate(entry))
	}
	var (
		d       *dscInfo
		roles   map[string]role
		sizes   = map[string]int64{}
		pending int
		c       Control
		// For 1.0 with a diff: the orig tarball's file and the diff.
		orig     []byte
		origPath string
		withDiff bool
		patch    *filePatch
		diffName string
	)
	err := s.walk(r, func(hdr *tar.Header, name string, body io.Reader) (bool, error) {
		if d == nil {
			if hdr.Typeflag != tar.TypeReg {
				return false, nil
			}
			if name != entry {
				return false, fmt.Errorf("%w: the archive starts with %q, not the .dsc %s", ErrUnsupported, truncate(name), entry)
			}
			data, err := s.readWhole(hdr, body, name)
			if err != nil {
				return false, err
			}
			info, err := parseDsc(data)
			if err != nil {
				return false, fmt.Errorf("%s: %w", entry, err)
			}
			if roles, err = info.plan(); err != nil {
				return false, fmt.Errorf("%s: %w", entry, err)
			}
			d, pending, withDiff = &info, len(roles), hasRole(roles, roleDiff)
			c.Testsuite = info.testsuite
			for _, f := range info.files {
				sizes[f.name] = f.size
			}
			return false, nil
		}
		ro, ok := roles[name]
		if !ok {
			return false, nil
		}
		delete(roles, name)
		pending--
		if hdr.Typeflag != tar.TypeReg {
			return false, fmt.Errorf("%w: %s is not a regular file", ErrBadArchive, name)
		}
		if hdr.Size != sizes[name] {
			return false, fmt.Errorf("%w: %s is %d bytes, %s says %d", ErrBadArchive, name, hdr.Size, entry, sizes[name])
		}
		switch ro {
		case roleDebian:
			data, path, err := s.findInTarball(body, name, func(n string) bool { return n == testsControl })
			if err != nil {
				return false, err
			}
			c.Data, c.Path = data, path
		case roleTop:
			data, path, err := s.findInTarball(body, name, underTop)
			if err != nil {
				return false, err
			}
			if withDiff {
				orig, origPath = data, path
			} else {
				c.Data, c.Path = data, path
			}
		case roleDiff:
			zr, err := s.decompress(body, ".gz")
			if err != nil {
				return false, fmt.Errorf("%s: %w", name, err)
			}
			if patch, err = readDiff(zr, s.lim.MaxControl); err != nil {
				return false, fmt.Errorf("%s: %w", name, err)
			}
			diffName = name
		}
		return pending == 0, nil
	})
	if err != nil {
		return Control{}, err
	}
	if d == nil {
		return Control{}, fmt.Errorf("%w: no .dsc %s in the archive", ErrBadArchive, entry)
	}
	for n := range roles {
		return Control{}, fmt.Errorf("%w: %s lists %s, which the archive lacks", ErrBadArchive, entry, n)
	}
	if !withDiff {
		return c, nil
	}
	c.Data, c.Path = orig, origPath
	if patch == nil {
		return c, nil
	}
	data, err := patch.apply(orig, s.lim.MaxControl)
	if err != nil {
		return Control{}, fmt.Errorf("%s: %w", diffName, err)
	}
	c.Data = data
	switch {
	case data == nil:
		c.Path = ""
	case orig == nil:
		c.Path = diffName + ":" + patch.name
	default:
		c.Path = origPath + " patched by " + diffName
	}
	return c, nil
}

func hasRole(roles map[string]role, want role) bool {
	for _, r := range roles {
		if r == want {
			return true
		}
	}
	return false
}

// underTop matches debian/tests/control under one leading directory.
func underTop(name string) bool {
	top, rest, ok := strings.Cut(name, "/")
	return ok && top != "" && rest == testsControl
}

// findInTarball decompresses the tarball body, named name, and returns the
// first regular member that match accepts, or nil when there is none.
func (s *scan) findInTarball(body io.Reader, name string, match func(string) bool) ([]byte, string, error) {
	zr, err := s.decompress(body, compressedTar(name))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	var (
		data []byte
		path string
	)
	err = s.walk(zr, func(hdr *tar.Header, member string, mb io.Reader) (bool, error) {
		if !match(member) {
			return false, nil
		}
		path = name + ":" + member
		var rerr error
		data, rerr = s.readWhole(hdr, mb, path)
		return true, rerr
	})
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	return data, path, nil
}
