// Package deb822 reads the small Debian control files the coordinator
// meets outside the archive indices: the text out of an OpenPGP cleartext
// signed message (RFC 4880 section 7), as Debian signs .dsc and InRelease
// files, and the first paragraph of a deb822 file (a .dsc, debian/control)
// as fields.
//
// It must not verify signatures (callers that need it run gpgv and read
// only what gpgv writes out) or give the fields meaning.
package deb822

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Errors of Body.
var (
	ErrNotSigned = errors.New("deb822: not a cleartext signed message")
	ErrMalformed = errors.New("deb822: malformed cleartext signed message")
)

const (
	begin          = "-----BEGIN PGP SIGNED MESSAGE-----"
	signatureBegin = "-----BEGIN PGP SIGNATURE-----"
)

// IsSigned reports whether msg starts, after leading blank lines, like a
// cleartext signed message.
func IsSigned(msg []byte) bool {
	first, _, _ := bytes.Cut(bytes.TrimLeft(msg, " \t\r\n"), []byte("\n"))
	return string(bytes.TrimRight(first, "\r \t")) == begin
}

// Body returns the signed text of msg: the lines between the armour
// headers and the signature, dash-unescaped, each ending in a newline.
// Only "Hash:" armour headers are accepted, and every line of the text
// that starts with a dash must be dash-escaped. Errors wrap ErrNotSigned
// or ErrMalformed.
func Body(msg []byte) ([]byte, error) {
	if !IsSigned(msg) {
		return nil, ErrNotSigned
	}
	text := strings.TrimLeft(strings.ReplaceAll(string(msg), "\r\n", "\n"), " \t\n")
	lines := strings.Split(text, "\n")
	i := 1
	for ; i < len(lines) && strings.TrimRight(lines[i], " \t") != ""; i++ {
		if !strings.HasPrefix(lines[i], "Hash:") {
			return nil, fmt.Errorf("%w: unexpected armour header %q", ErrMalformed, lines[i])
		}
	}
	if i == len(lines) {
		return nil, fmt.Errorf("%w: armour without a message", ErrMalformed)
	}
	var body strings.Builder
	for i++; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimRight(line, " \t") == signatureBegin {
			return []byte(body.String()), nil
		}
		if strings.HasPrefix(line, "-") {
			if !strings.HasPrefix(line, "- ") {
				return nil, fmt.Errorf("%w: unescaped dash line %q", ErrMalformed, line)
			}
			line = line[2:]
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	return nil, fmt.Errorf("%w: no signature block", ErrMalformed)
}

// Unsign returns the signed text of msg when it is a cleartext signed
// message (see Body), and otherwise msg itself with CRLF line ends made
// LF.
func Unsign(msg []byte) ([]byte, error) {
	if !IsSigned(msg) {
		return []byte(strings.ReplaceAll(string(msg), "\r\n", "\n")), nil
	}
	return Body(msg)
}
