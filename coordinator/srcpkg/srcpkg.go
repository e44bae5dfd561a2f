// Package srcpkg owns reading, out of an uploaded source archive, what the
// coordinator needs before it routes a job: the package's
// debian/tests/control and its Testsuite field. The archive is the
// uncompressed tar that `sparegrid submit` uploads, holding either an
// unpacked source tree or a .dsc with the files it lists.
//
// The contract:
//
//   - TestsControl reads the archive once, front to back, without seeking.
//     A tree gives ENTRY/debian/tests/control and the Testsuite field of
//     ENTRY/debian/control's source paragraph. A .dsc gives its own
//     Testsuite field and debian/tests/control as dpkg-source would unpack
//     it: from the debian tarball (3.0 (quilt)), from the one tarball
//     (3.0 (native) and native 1.0), or from the orig tarball with the
//     1.0 diff applied.
//   - A package without debian/tests/control is no error: Control.Data is
//     nil. Errors wrap ErrBadArchive (the archive is malformed), ErrTooLarge
//     (a Limits bound was hit) or ErrUnsupported (a valid archive this
//     package cannot read); an error reading r itself is returned wrapped
//     as it is.
//   - Everything is untrusted and bounded by Limits: bytes of each file
//     read whole, tar members scanned, bytes decompressed and the xz
//     dictionary, which is checked before it is allocated. Member paths
//     with ".." are refused.
//
// It must not write to disk, run programs, verify signatures or checksums
// (dpkg-source on the agent does), or know about the store, the scheduler
// or the HTTP API: bytes go in, a Control comes out.
package srcpkg

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Errors.
var (
	ErrBadArchive  = errors.New("srcpkg: malformed source archive")
	ErrTooLarge    = errors.New("srcpkg: over a size limit")
	ErrUnsupported = errors.New("srcpkg: unsupported source archive")
)

// Defaults of Limits.
const (
	DefaultMaxControl      = 256 << 10
	DefaultMaxMembers      = 200_000
	DefaultMaxDecompressed = 2 << 30
	DefaultMaxDict         = 64 << 20
)

// Limits bound the work of one TestsControl call. Zero fields take the
// Default values.
type Limits struct {
	// MaxControl bounds each file read whole: debian/tests/control, the
	// .dsc, the source paragraph of debian/control, and the part of a 1.0
	// diff that touches debian/tests/control.
	MaxControl int64
	// MaxMembers bounds the tar members scanned, in the archive and in the
	// tarballs inside it together.
	MaxMembers int
	// MaxDecompressed bounds the bytes read through decompressors, all
	// tarballs and diffs together.
	MaxDecompressed int64
	// MaxDict bounds the dictionary an xz block may ask for. xz -9 uses
	// 64 MiB.
	MaxDict int64
}

func (l Limits) orDefault() Limits {
	if l.MaxControl <= 0 {
		l.MaxControl = DefaultMaxControl
	}
	if l.MaxMembers <= 0 {
		l.MaxMembers = DefaultMaxMembers
	}
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = DefaultMaxDecompressed
	}
	if l.MaxDict <= 0 {
		l.MaxDict = DefaultMaxDict
	}
	return l
}

// Control is what a source package says about its tests.
type Control struct {
	// Data is debian/tests/control as unpacked, or nil when the package
	// has none.
	Data []byte
	// Testsuite is the Testsuite field of the .dsc, or of the source
	// paragraph of debian/control for a tree, on one line; empty when
	// absent.
	Testsuite string
	// Path says where Data came from, for messages: a path in the
	// archive, or in a tarball or diff inside it
	// ("hello_1.0-1.debian.tar.xz:debian/tests/control"). Empty when Data
	// is nil.
	Path string
}

// Tests parses Data with dep8.ParseTestsControl. A Control without Data
// has no tests and no error.
func (c Control) Tests() ([]dep8.TestStanza, error) {
	if c.Data == nil {
		return nil, nil
	}
	return dep8.ParseTestsControl(bytes.NewReader(c.Data))
}

// testsControl is where every source format keeps the file, relative to
// the top of the unpacked package.
const testsControl = "debian/tests/control"

// TestsControl reads the archive r of kind apiv1.KindTree or
// apiv1.KindDsc, whose entry is the tree's top directory ("hello/") or
// the .dsc's name, and returns the package's debian/tests/control and
// Testsuite field.
//
// A .dsc must be the first file of the archive, before the files it
// lists. When a tar holds a path twice, the first copy is read.
func TestsControl(r io.Reader, kind, entry string, lim Limits) (Control, error) {
	s := &scan{lim: lim.orDefault()}
	s.left = s.lim.MaxDecompressed
	src := &sourceReader{r: r}
	var (
		c   Control
		err error
	)
	switch kind {
	case apiv1.KindTree:
		c, err = s.tree(src, entry)
	case apiv1.KindDsc:
		c, err = s.dsc(src, entry)
	default:
		return Control{}, fmt.Errorf("%w: source kind %q", ErrUnsupported, kind)
	}
	if err != nil {
		return Control{}, classify(err)
	}
	return c, nil
}

// classify gives every error one of the package's sentinels, except
// errors reading the caller's reader.
func classify(err error) error {
	var re *readError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("srcpkg: reading the archive: %w", re.err)
	case errors.Is(err, ErrBadArchive), errors.Is(err, ErrTooLarge), errors.Is(err, ErrUnsupported):
		return err
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: unexpected end of data", ErrBadArchive)
	}
	return fmt.Errorf("%w: %w", ErrBadArchive, err)
}

// readError marks an error of the caller's reader, so that it is not
// taken for a malformed archive.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

type sourceReader struct{ r io.Reader }

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// scan holds the budgets of one TestsControl call.
type scan struct {
	lim     Limits
	members int
	left    int64 // decompressed bytes still allowed
}

// walk calls fn for each member of the tar archive r, with its cleaned
// name, until fn says it is done or the archive ends.
func (s *scan) walk(r io.Reader, fn func(hdr *tar.Header, name string, body io.Reader) (done bool, err error)) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		s.members++
		if s.members > s.lim.MaxMembers {
			return fmt.Errorf("%w: more than %d tar members", ErrTooLarge, s.lim.MaxMembers)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		done, err := fn(hdr, name, tr)
		if err != nil || done {
			return err
		}
	}
}

// cleanName returns a tar member's path without "./" prefixes or a
// trailing "/", refusing absolute paths and ".." components.
func cleanName(name string) (string, error) {
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	name = strings.TrimSuffix(name, "/")
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: absolute path %q", ErrBadArchive, truncate(name))
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: path %q leaves its directory", ErrBadArchive, truncate(name))
		}
	}
	return name, nil
}

// readWhole reads a regular member of at most MaxControl bytes.
func (s *scan) readWhole(hdr *tar.Header, body io.Reader, where string) ([]byte, error) {
	switch hdr.Typeflag {
	case tar.TypeReg:
	case tar.TypeSymlink, tar.TypeLink:
		return nil, fmt.Errorf("%w: %s is a link to %q", ErrUnsupported, where, truncate(hdr.Linkname))
	default:
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrBadArchive, where)
	}
	if hdr.Size > s.lim.MaxControl {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrTooLarge, where, hdr.Size, s.lim.MaxControl)
	}
	data := make([]byte, hdr.Size)
	if _, err := io.ReadFull(body, data); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return data, nil
}

// tree reads an unpacked source tree under entry.
func (s *scan) tree(r io.Reader, entry string) (Control, error) {
	top, err := cleanName(entry)
	if err != nil {
		return Control{}, err
	}
	if top == "" {
		return Control{}, fmt.Errorf("%w: empty tree entry", ErrBadArchive)
	}
	controlName, testsName := top+"/debian/control", top+"/"+testsControl
	var (
		c                      Control
		haveControl, haveTests bool
	)
	err = s.walk(r, func(hdr *tar.Header, name string, body io.Reader) (bool, error) {
		switch {
		case name == testsName && !haveTests:
			data, err := s.readWhole(hdr, body, name)
			if err != nil {
				return false, err
			}
			c.Data, c.Path, haveTests = data, name, true
		case name == controlName && !haveControl:
			if hdr.Typeflag != tar.TypeReg {
				return false, fmt.Errorf("%w: %s is not a regular file", ErrUnsupported, name)
			}
			para, err := firstParagraph(body, s.lim.MaxControl)
			if err != nil {
				return false, fmt.Errorf("%s: %w", name, err)
			}
			c.Testsuite, haveControl = oneLine(para["testsuite"]), true
		}
		return haveControl && haveTests, nil
	})
	if err != nil {
		return Control{}, err
	}
	if !haveControl {
		return Control{}, fmt.Errorf("%w: no %s in the archive", ErrBadArchive, controlName)
	}
	return c, nil
}

// truncate shortens text quoted in error messages.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// oneLine folds a field's continuation lines into one line.
func oneLine(v string) string {
	return strings.Join(strings.Fields(v), " ")
}
