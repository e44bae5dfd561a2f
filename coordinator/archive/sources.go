package archive

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/ulikunitz/xz"
)

// Source is the newest paragraph of one source package in a Sources index.
type Source struct {
	Package string
	Version string
	// Binaries are the binary packages it builds (the Binary field).
	Binaries []string
	// Testsuite is the Testsuite field split on commas, such as
	// ["autopkgtest", "autopkgtest-pkg-python"].
	Testsuite []string
	// TestsuiteTriggers are names (mostly binary packages) whose upload
	// should rerun this source's tests; entries such as "@builddeps@" are
	// kept as written.
	TestsuiteTriggers []string
	// Architecture is the Architecture field split on white space.
	Architecture []string
	// Directory is where the source's files are, relative to the archive
	// root ("pool/main/h/hello"); empty when the paragraph has none or it
	// is not a relative path without ".." components.
	Directory string
	// Files are the files of the Checksums-Sha256 field, the .dsc among
	// them, in field order, kept only for a Testable source: nothing else
	// has tests to read, and the checksums would triple the memory and
	// saved state of a snapshot. They are empty when the field is missing
	// or any of its lines is malformed; the rest of the paragraph is kept.
	Files []File
}

// File is one file of a source package as a Sources index lists it.
type File struct {
	// Name is a plain file name, without "/" or "..".
	Name   string
	Size   int64
	SHA256 string // lowercase hex
}

// Testable reports whether autopkgtest can run tests for the source: its
// Testsuite names "autopkgtest" (debian/tests/control) or an autodep8
// flavour "autopkgtest-pkg-*", which autopkgtest generates tests for.
func (s Source) Testable() bool {
	for _, t := range s.Testsuite {
		if t == "autopkgtest" || strings.HasPrefix(t, "autopkgtest-pkg-") {
			return true
		}
	}
	return false
}

// ParseSources reads a decompressed Sources index. It skips paragraphs
// marked Extra-Source-Only and counts (in rejected) paragraphs without a
// valid Package or Version; any deb822 syntax error or limit ends it with an
// error. A source listed more than once keeps its newest version.
func ParseSources(r io.Reader, lim ParseLimits) (sources []Source, rejected int, err error) {
	p := NewParser(r, lim)
	byName := make(map[string]int)
	for {
		para, err := p.Next()
		if err == io.EOF {
			return sources, rejected, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if v, _ := para.Get("Extra-Source-Only"); strings.EqualFold(v, "yes") {
			continue
		}
		s, ok := sourceFrom(para)
		if !ok {
			rejected++
			continue
		}
		if i, seen := byName[s.Package]; seen {
			if CompareVersions(s.Version, sources[i].Version) > 0 {
				sources[i] = s
			}
			continue
		}
		byName[s.Package] = len(sources)
		sources = append(sources, s)
	}
}

func sourceFrom(p Paragraph) (Source, bool) {
	name, _ := p.Get("Package")
	version, _ := p.Get("Version")
	if !validPackageName(name) {
		return Source{}, false
	}
	if _, err := ParseVersion(version); err != nil {
		return Source{}, false
	}
	s := Source{Package: name, Version: version}
	if v, ok := p.Get("Binary"); ok {
		s.Binaries = splitList(v)
	}
	if v, ok := p.Get("Testsuite"); ok {
		s.Testsuite = splitList(v)
	}
	if v, ok := p.Get("Testsuite-Triggers"); ok {
		s.TestsuiteTriggers = splitList(v)
	}
	if v, ok := p.Get("Architecture"); ok {
		s.Architecture = strings.Fields(v)
	}
	if v, ok := p.Get("Directory"); ok && validDirectory(v) {
		s.Directory = strings.Clone(v)
	}
	if v, ok := p.Get("Checksums-Sha256"); ok && s.Testable() {
		s.Files, _ = parseChecksums(v)
	}
	return s, true
}

// parseChecksums reads a Checksums-Sha256 value: one "sha256 size name"
// line per file. Any malformed line, or a name given twice, fails it.
func parseChecksums(v string) ([]File, bool) {
	var files []File
	for line := range strings.SplitSeq(v, "\n") {
		parts := strings.Fields(line)
		if len(parts) == 0 {
			continue
		}
		if len(parts) != 3 {
			return nil, false
		}
		f, ok := parseFile(parts[2], parts[1], parts[0])
		if !ok || slices.ContainsFunc(files, func(o File) bool { return o.Name == f.Name }) {
			return nil, false
		}
		files = append(files, f)
	}
	return files, true
}

// parseFile checks one file's name, decimal size and sha256.
func parseFile(name, size, sum string) (File, bool) {
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 || !validFileName(name) || !isSHA256Hex(sum) {
		return File{}, false
	}
	// Clone, so that a snapshot does not keep the whole field alive.
	return File{Name: strings.Clone(name), Size: n, SHA256: strings.Clone(sum)}, true
}

// validFileName accepts a plain file name: printable ASCII without white
// space, "/", "\\" or "..".
func validFileName(s string) bool {
	if s == "" || len(s) > 255 || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '\\' {
			return false
		}
	}
	return true
}

// validDirectory accepts a relative path of plain names, none of them "."
// or "..".
func validDirectory(s string) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	for part := range strings.SplitSeq(s, "/") {
		if part == "." || !validFileName(part) {
			return false
		}
	}
	return true
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validPackageName follows Debian Policy 5.6.1: lowercase letters, digits,
// '+', '-', '.', at least two characters, starting with an alphanumeric.
func validPackageName(s string) bool {
	if len(s) < 2 || len(s) > 256 || !(isDigit(s[0]) || (s[0] >= 'a' && s[0] <= 'z')) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && !(c >= 'a' && c <= 'z') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// decompress returns a reader of the decompressed bytes of data, whose
// name ends in .xz or .gz, that fails with ErrTooLarge past max bytes. An
// xz file is checked first: its index must be sound, its total size at most
// max, and no block may ask for a dictionary over maxDict.
func decompress(name string, data []byte, max, maxDict int64) (io.Reader, error) {
	var r io.Reader
	switch {
	case strings.HasSuffix(name, ".xz"):
		if err := checkXZ(data, max, maxDict); err != nil {
			return nil, err
		}
		xr, err := xz.ReaderConfig{DictCap: 1 << 16}.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		r = xr
	case strings.HasSuffix(name, ".gz"):
		gr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		r = gr
	default:
		r = bytes.NewReader(data)
	}
	return &boundedReader{r: r, left: max}, nil
}

// boundedReader passes at most left bytes and then fails; it also turns
// decompression errors into ErrCorrupt.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(b.r, one[:]); n > 0 {
			return 0, fmt.Errorf("%w: decompressed data is larger than the limit", ErrTooLarge)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	return n, err
}

// checkXZ walks the xz container (streams from the end, each stream's
// index, each block header) without decompressing, so a hostile file cannot
// make the decoder allocate a huge dictionary or promise endless output.
func checkXZ(data []byte, max, maxDict int64) error {
	bad := func(what string) error { return fmt.Errorf("%w: xz: %s", ErrCorrupt, what) }
	var total int64
	end := len(data)
	streams := 0
	for end > 0 {
		for end >= 4 && bytes.Equal(data[end-4:end], []byte{0, 0, 0, 0}) {
			end -= 4
		}
		if end < 24 {
			return bad("truncated stream")
		}
		footer := data[end-12 : end]
		if footer[10] != 'Y' || footer[11] != 'Z' {
			return bad("no stream footer (truncated?)")
		}
		indexSize := (int64(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
		indexStart := int64(end-12) - indexSize
		if indexStart < 12 {
			return bad("index size out of range")
		}
		index := data[indexStart : end-12]
		if index[0] != 0 {
			return bad("no index indicator")
		}
		pos := 1
		count, ok := uvarint(index, &pos)
		if !ok || count > uint64(len(index)) {
			return bad("bad index record count")
		}
		type rec struct{ unpadded, size int64 }
		recs := make([]rec, 0, count)
		var blocks int64
		for range count {
			u, ok1 := uvarint(index, &pos)
			n, ok2 := uvarint(index, &pos)
			if !ok1 || !ok2 || u == 0 || u > uint64(len(data)) {
				return bad("bad index record")
			}
			if n > uint64(max) {
				return fmt.Errorf("%w: xz block decompresses to more than %d bytes", ErrTooLarge, max)
			}
			recs = append(recs, rec{int64(u), int64(n)})
			blocks += (int64(u) + 3) &^ 3
			total += int64(n)
			if total > max {
				return fmt.Errorf("%w: xz data decompresses to more than %d bytes", ErrTooLarge, max)
			}
		}
		start := indexStart - blocks - 12
		if start < 0 || !bytes.Equal(data[start:start+6], []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
			return bad("no stream header where the index says")
		}
		at := start + 12
		for _, r := range recs {
			if err := checkXZBlock(data[at:at+((r.unpadded+3)&^3)], maxDict); err != nil {
				return err
			}
			at += (r.unpadded + 3) &^ 3
		}
		end = int(start)
		streams++
	}
	if streams == 0 {
		return bad("empty")
	}
	return nil
}

// checkXZBlock reads one block header's filter chain and refuses an LZMA2
// dictionary over maxDict.
func checkXZBlock(block []byte, maxDict int64) error {
	bad := func(what string) error { return fmt.Errorf("%w: xz block: %s", ErrCorrupt, what) }
	if len(block) < 1 || block[0] == 0 {
		return bad("no header")
	}
	hlen := (int(block[0]) + 1) * 4
	if hlen > len(block) {
		return bad("header longer than block")
	}
	h := block[:hlen]
	flags := h[1]
	pos := 2
	if flags&0x40 != 0 {
		if _, ok := uvarint(h, &pos); !ok {
			return bad("bad compressed size")
		}
	}
	if flags&0x80 != 0 {
		if _, ok := uvarint(h, &pos); !ok {
			return bad("bad uncompressed size")
		}
	}
	for range int(flags&3) + 1 {
		id, ok1 := uvarint(h, &pos)
		n, ok2 := uvarint(h, &pos)
		if !ok1 || !ok2 || uint64(pos)+n > uint64(len(h)) {
			return bad("bad filter flags")
		}
		if id == 0x21 {
			if n != 1 {
				return bad("bad LZMA2 properties")
			}
			code := h[pos]
			if code > 40 {
				return bad("bad LZMA2 dictionary size")
			}
			dict := int64(0xffffffff)
			if code < 40 {
				dict = int64(2|code&1) << (code/2 + 11)
			}
			if dict > maxDict {
				return fmt.Errorf("%w: xz dictionary of %d bytes is over %d", ErrTooLarge, dict, maxDict)
			}
		}
		pos += int(n)
	}
	return nil
}

// uvarint reads an xz multibyte integer (at most 9 bytes).
func uvarint(b []byte, pos *int) (uint64, bool) {
	var v uint64
	for i := 0; i < 9; i++ {
		if *pos >= len(b) {
			return 0, false
		}
		c := b[*pos]
		*pos++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, true
		}
	}
	return 0, false
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
