package dep8

import (
	"regexp"
	"strings"
	"testing"
)

func TestValidSource(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"plain", "hello", true},
		{"digits", "gcc-14", true},
		{"plus", "libstdc++", true},
		{"dots", "python3.12", true},
		{"starts with digit", "0ad", true},
		{"two characters", "xz", true},
		{"at the cap", strings.Repeat("a", 100), true},
		{"empty", "", false},
		{"one character", "a", false},
		{"upper case", "Hello", false},
		{"leading hyphen", "-hello", false},
		{"leading plus", "+hello", false},
		{"leading dot", ".hello", false},
		{"underscore", "hello_world", false},
		{"slash", "hello/1.0", false},
		{"space", "hel lo", false},
		{"option", "--help", false},
		{"non-ascii", "héllo", false},
		{"over the cap", strings.Repeat("a", 101), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidSource(tt.in); got != tt.want {
				t.Errorf("ValidSource(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidVersion(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"native", "1.0", true},
		{"with revision", "2.10-3", true},
		{"epoch and stable update", "1:2.36-9+deb12u4", true},
		{"tilde", "1.0~rc1", true},
		{"backport", "6.12.9-1~bpo12+1", true},
		{"ubuntu", "2.39-0ubuntu8.3", true},
		{"upper case", "1.0RC1-1", true},
		{"hyphen in upstream", "1.0-beta-2", true},
		{"single digit", "1", true},
		{"at the cap", "1" + strings.Repeat("a", 99), true},
		{"empty", "", false},
		{"starts with letter", "v2", false},
		{"starts with tilde", "~1", false},
		{"starts with colon", ":1", false},
		{"underscore", "1.0_1", false},
		{"slash", "1.0/2", false},
		{"space", "2.41 -1", false},
		{"newline", "1.0\n", false},
		{"non-ascii", "1.0é", false},
		{"over the cap", "1" + strings.Repeat("a", 100), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidVersion(tt.in); got != tt.want {
				t.Errorf("ValidVersion(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidTrigger(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"plain", "glibc/2.41-1", true},
		{"backport", "linux/6.12.9-1~bpo12+1", true},
		{"epoch", "gcc-14/1:14.2.0-1", true},
		{"no slash", "glibc", false},
		{"no source", "/2.41", false},
		{"no version", "glibc/", false},
		{"space in version", "glibc/2.41 -1", false},
		{"upper-case source", "Glibc/2.41", false},
		{"version starts with letter", "glibc/v2", false},
		{"two slashes", "a/b/c", false},
		{"two slashes, valid halves", "glibc/2.41/1", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidTrigger(tt.in); got != tt.want {
				t.Errorf("ValidTrigger(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidSuite(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"release", "bookworm", true},
		{"arch", "amd64", true},
		{"arch with hyphen", "kfreebsd-amd64", true},
		{"dotted", "ubuntu-24.04", true},
		{"one character", "a", true},
		{"at the cap", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"option", "--include=evil", false},
		{"leading hyphen", "-x", false},
		{"leading dot", ".hidden", false},
		{"upper case", "Bookworm", false},
		{"space", "book worm", false},
		{"slash", "../etc", false},
		{"semicolon", "amd64;true", false},
		{"plus", "bookworm+1", false},
		{"over the cap", strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidSuite(tt.in); got != tt.want {
				t.Errorf("ValidSuite(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzValidNames(f *testing.F) {
	for _, s := range []string{
		"glibc/2.41-1",
		"gcc-14/1:14.2.0-1",
		"libstdc++/1.0~rc1",
		"bookworm",
		"ubuntu-24.04",
		"a/b/c",
		"-x/1",
		"x/",
		"Glibc/2.41",
		"\xff",
		"",
	} {
		f.Add(s)
	}
	sourceRe := regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{1,99}$`)
	versionRe := regexp.MustCompile(`^[0-9][A-Za-z0-9.+~:-]{0,99}$`)
	suiteRe := regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidSource(s), sourceRe.MatchString(s); got != want {
			t.Errorf("ValidSource(%q) = %v, want %v", s, got, want)
		}
		if got, want := ValidVersion(s), versionRe.MatchString(s); got != want {
			t.Errorf("ValidVersion(%q) = %v, want %v", s, got, want)
		}
		if got, want := ValidSuite(s), suiteRe.MatchString(s); got != want {
			t.Errorf("ValidSuite(%q) = %v, want %v", s, got, want)
		}
		if ValidSuite(s) && len(s) >= 2 && !ValidSource(s) {
			t.Errorf("ValidSuite(%q) = true but ValidSource = false", s)
		}
		if ValidSource(s) || ValidVersion(s) || ValidSuite(s) {
			if strings.ContainsAny(s, "/ \t\n\x00") || s[0] == '-' {
				t.Errorf("name %q accepted with a separator or a leading hyphen", s)
			}
		}
		src, ver, ok := strings.Cut(s, "/")
		halves := ok && ValidSource(src) && ValidVersion(ver)
		if got := ValidTrigger(s); got != halves {
			t.Errorf("ValidTrigger(%q) = %v, want %v (source %q, version %q)", s, got, halves, src, ver)
		}
	})
}

func TestValidTestName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"smoke", true}, {"command1", true}, {"upstream-tests.sh", true}, {strings.Repeat("x", 100), true},
		{"", false}, {"two words", false}, {"a,b", false}, {"dir/test", false}, {"tab\t", false},
		{"caf\u00e9", false}, {strings.Repeat("x", 101), false},
	}
	for _, tt := range tests {
		if got := ValidTestName(tt.in); got != tt.want {
			t.Errorf("ValidTestName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
