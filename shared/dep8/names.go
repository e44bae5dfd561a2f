package dep8

import "strings"

// maxNameLen bounds source package names and versions. Debian sets no
// limit; this one keeps oversized input out of command lines and logs.
const maxNameLen = 100

// maxSuiteLen bounds release and architecture names.
const maxSuiteLen = 64

// ValidSource reports whether s is a Debian source package name (Debian
// Policy 5.6.1): lower-case letters, digits, "+", "-" and ".", at least
// two characters, starting with a letter or digit.
func ValidSource(s string) bool {
	if len(s) < 2 || len(s) > maxNameLen || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// ValidVersion reports whether s is made only of the characters a Debian
// version may use (Debian Policy 5.6.12: alphanumerics and ".+~:-") and
// starts with a digit, as both an epoch and an upstream version do. It
// checks characters, not the epoch/upstream/revision structure: dpkg and
// apt remain the judges of whether a version exists.
func ValidVersion(s string) bool {
	if s == "" || len(s) > maxNameLen || !isDigit(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLowerAlnum(c) && !('A' <= c && c <= 'Z') && strings.IndexByte(".+~:-", c) < 0 {
			return false
		}
	}
	return true
}

// ValidTestName reports whether s can be an autopkgtest test name: 1 to
// 100 printable ASCII characters without space, comma or slash (test
// names are listed comma- or space-separated and never hold a slash).
func ValidTestName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ',' || c == '/' {
			return false
		}
	}
	return true
}

// ValidTrigger reports whether s is an autopkgtest trigger of the form
// "source/version", such as "glibc/2.36-9".
func ValidTrigger(s string) bool {
	src, ver, ok := strings.Cut(s, "/")
	return ok && ValidSource(src) && ValidVersion(ver)
}

// ValidSuite reports whether s is acceptable as a release or architecture
// name, such as "bookworm", "ubuntu-24.04" or "amd64": lower-case letters,
// digits, "." and "-", starting with a letter or digit, at most 64
// characters. Such a name never reads as a command-line option or a path.
func ValidSuite(s string) bool {
	if s == "" || len(s) > maxSuiteLen || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLowerAlnum(c byte) bool { return isDigit(c) || ('a' <= c && c <= 'z') }
