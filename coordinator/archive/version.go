package archive

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Version is a parsed Debian version: [epoch:]upstream[-revision].
type Version struct {
	Epoch    int
	Upstream string
	Revision string
}

// String writes the version so that ParseVersion reads it back: the epoch
// appears when it is not zero or the upstream part holds a colon, the
// hyphen when there is a revision or the upstream part holds a hyphen.
func (v Version) String() string {
	var b strings.Builder
	if v.Epoch != 0 || strings.Contains(v.Upstream, ":") {
		b.WriteString(strconv.Itoa(v.Epoch))
		b.WriteByte(':')
	}
	b.WriteString(v.Upstream)
	if v.Revision != "" || strings.Contains(v.Upstream, "-") {
		b.WriteByte('-')
		b.WriteString(v.Revision)
	}
	return b.String()
}

// ParseVersion parses s as dpkg's parseversion does, refusing everything it
// refuses (including what dpkg only warns about: an upstream part that does
// not start with a digit and characters outside the allowed set).
func ParseVersion(s string) (Version, error) {
	s = strings.Trim(s, " \t")
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrBadVersion)
	}
	if strings.ContainsAny(s, " \t\n\r") {
		return Version{}, fmt.Errorf("%w: %q has embedded whitespace", ErrBadVersion, s)
	}
	v := splitVersion(s)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		ep := s[:i]
		if ep == "" || strings.Trim(ep, "0123456789") != "" {
			return Version{}, fmt.Errorf("%w: %q has a bad epoch", ErrBadVersion, s)
		}
		n, err := strconv.ParseInt(ep, 10, 64)
		if err != nil || n > math.MaxInt32 {
			return Version{}, fmt.Errorf("%w: %q has an epoch that is too big", ErrBadVersion, s)
		}
		if v.Upstream == "" && i == len(s)-1 {
			return Version{}, fmt.Errorf("%w: %q has nothing after the colon", ErrBadVersion, s)
		}
	}
	if v.Upstream == "" {
		return Version{}, fmt.Errorf("%w: %q has an empty upstream version", ErrBadVersion, s)
	}
	if !isDigit(v.Upstream[0]) {
		return Version{}, fmt.Errorf("%w: %q does not start with a digit", ErrBadVersion, s)
	}
	for i := 0; i < len(v.Upstream); i++ {
		if c := v.Upstream[i]; !isAlnum(c) && !strings.ContainsRune(".-+~:", rune(c)) {
			return Version{}, fmt.Errorf("%w: %q has %q in its upstream version", ErrBadVersion, s, c)
		}
	}
	for i := 0; i < len(v.Revision); i++ {
		if c := v.Revision[i]; !isAlnum(c) && !strings.ContainsRune(".+~", rune(c)) {
			return Version{}, fmt.Errorf("%w: %q has %q in its revision", ErrBadVersion, s, c)
		}
	}
	return v, nil
}

// splitVersion splits s without validating it: the epoch is the number
// before the first colon, the revision follows the last hyphen.
func splitVersion(s string) Version {
	var v Version
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if n, err := strconv.Atoi(s[:i]); err == nil {
			v.Epoch = n
		}
		s = s[i+1:]
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		v.Upstream, v.Revision = s[:i], s[i+1:]
	} else {
		v.Upstream = s
	}
	return v
}

// CompareVersions orders two Debian versions the way dpkg does: negative
// when a is older than b, zero when they are equal, positive when a is newer.
// Strings that are not valid versions are compared after the same split
// dpkg would make; use ParseVersion to refuse them.
func CompareVersions(a, b string) int {
	return compareParsed(splitVersion(strings.Trim(a, " \t")), splitVersion(strings.Trim(b, " \t")))
}

func compareParsed(a, b Version) int {
	switch {
	case a.Epoch < b.Epoch:
		return -1
	case a.Epoch > b.Epoch:
		return 1
	}
	if r := verrevcmp(a.Upstream, b.Upstream); r != 0 {
		return r
	}
	return verrevcmp(a.Revision, b.Revision)
}

// order ranks one character of a non-digit run: '~' sorts before
// everything, even the end of the string; letters sort before the other
// characters.
func order(c byte) int {
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	case c != 0:
		return int(c) + 256
	}
	return 0
}

func verrevcmp(a, b string) int {
	at := func(s string, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		firstDiff := 0
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := order(at(a, i)), order(at(b, j))
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return sign(firstDiff)
		}
	}
	return 0
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
