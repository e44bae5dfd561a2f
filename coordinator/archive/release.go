package archive

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/internal/deb822"
)

// FileHash is one entry of a Release file's SHA256 section.
type FileHash struct {
	Size   int64
	SHA256 string // lowercase hex
}

// Release is the part of a Release (or InRelease) file the watcher uses.
type Release struct {
	Origin        string
	Label         string
	Suite         string
	Codename      string
	Date          time.Time
	ValidUntil    time.Time // zero when the field is absent
	Components    []string
	Architectures []string
	AcquireByHash bool
	SHA256        map[string]FileHash // by path relative to the suite
}

// parseReleaseDate reads Date and Valid-Until in the forms archives use
// (RFC 2822 with a zone name or a numeric offset).
func parseReleaseDate(s string) (time.Time, error) {
	for _, layout := range [...]string{
		"Mon, 2 Jan 2006 15:04:05 MST",
		"Mon, 2 Jan 2006 15:04:05 -0700",
		"Mon, 02 Jan 2006 15:04:05 MST",
		"Mon, 02 Jan 2006 15:04:05 -0700",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: bad date %q", ErrBadRelease, s)
}

// ParseRelease parses the signed text of a Release file. It refuses a file
// without a SHA256 section (MD5Sum and SHA1 alone are not trusted).
func ParseRelease(data []byte) (Release, error) {
	p := NewParser(bytes.NewReader(data), ParseLimits{MaxParagraph: len(data) + 1})
	para, err := p.Next()
	if err == io.EOF {
		return Release{}, fmt.Errorf("%w: empty", ErrBadRelease)
	}
	if err != nil {
		return Release{}, fmt.Errorf("%w: %w", ErrBadRelease, err)
	}
	if _, err := p.Next(); err != io.EOF {
		return Release{}, fmt.Errorf("%w: more than one paragraph", ErrBadRelease)
	}
	var r Release
	r.Origin, _ = para.Get("Origin")
	r.Label, _ = para.Get("Label")
	r.Suite, _ = para.Get("Suite")
	r.Codename, _ = para.Get("Codename")
	if v, ok := para.Get("Date"); ok {
		if r.Date, err = parseReleaseDate(v); err != nil {
			return Release{}, err
		}
	}
	if v, ok := para.Get("Valid-Until"); ok {
		if r.ValidUntil, err = parseReleaseDate(v); err != nil {
			return Release{}, err
		}
	}
	if v, ok := para.Get("Components"); ok {
		r.Components = strings.Fields(v)
	}
	if v, ok := para.Get("Architectures"); ok {
		r.Architectures = strings.Fields(v)
	}
	if v, ok := para.Get("Acquire-By-Hash"); ok {
		r.AcquireByHash = strings.EqualFold(v, "yes")
	}
	sums, ok := para.Get("SHA256")
	if !ok {
		return Release{}, ErrNoSHA256
	}
	r.SHA256 = make(map[string]FileHash)
	for line := range strings.SplitSeq(sums, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return Release{}, fmt.Errorf("%w: SHA256 line %q", ErrBadRelease, line)
		}
		sum, err := hex.DecodeString(f[0])
		if err != nil || len(sum) != 32 {
			return Release{}, fmt.Errorf("%w: SHA256 line %q has a bad digest", ErrBadRelease, line)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return Release{}, fmt.Errorf("%w: SHA256 line %q has a bad size", ErrBadRelease, line)
		}
		path := f[2]
		if strings.HasPrefix(path, "/") || slices.Contains(strings.Split(path, "/"), "..") {
			return Release{}, fmt.Errorf("%w: SHA256 line %q has a bad path", ErrBadRelease, line)
		}
		r.SHA256[path] = FileHash{Size: size, SHA256: hex.EncodeToString(sum)}
	}
	if len(r.SHA256) == 0 {
		return Release{}, ErrNoSHA256
	}
	return r, nil
}

// MatchesSuite reports whether the Release names suite as its Suite or
// Codename; a Release that names neither is accepted.
func (r Release) MatchesSuite(suite string) bool {
	if r.Suite == "" && r.Codename == "" {
		return true
	}
	suite, _, _ = strings.Cut(suite, "/")
	return suite == r.Suite || suite == r.Codename
}

// isClearsigned reports whether msg starts like an OpenPGP cleartext
// signed message.
func isClearsigned(msg []byte) bool { return deb822.IsSigned(msg) }

// clearsignedBody returns the text of a cleartext signed message without
// checking its signature: the lines between the armor headers and the
// signature, dash-unescaped. It refuses anything else, with ErrUnsigned
// or ErrBadSignature.
func clearsignedBody(msg []byte) ([]byte, error) {
	body, err := deb822.Body(msg)
	switch {
	case errors.Is(err, deb822.ErrNotSigned):
		return nil, fmt.Errorf("%w: not a cleartext signed message", ErrUnsigned)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return body, nil
}
