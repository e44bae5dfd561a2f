package xenlvm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestShellQuote(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "abc", "abc"},
		{"path", "/usr/bin/apt-get", "/usr/bin/apt-get"},
		{"empty", "", "''"},
		{"space", "a b", "'a b'"},
		{"single quote", "it's", `'it'\''s'`},
		{"only a quote", "'", `''\'''`},
		{"dollar", "$HOME", "'$HOME'"},
		{"command substitution", "$(reboot)", "'$(reboot)'"},
		{"backquote", "`id`", "'`id`'"},
		{"glob", "*", "'*'"},
		{"newline", "a\nb", "'a\nb'"},
		{"backslash", `a\b`, `'a\b'`},
		{"leading dash is fine", "-x", "-x"},
		{"tilde", "~root", "'~root'"},
		{"semicolon", "a;b", "'a;b'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ShellQuote(tt.in); got != tt.want {
				t.Errorf("ShellQuote(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// viaSh returns the argv that sh gets back from command line line.
func viaSh(t *testing.T, line string) []string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "/bin/sh", "-c", `printf '%s\0' x `+line).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")[1:]
}

// viaPrefix returns the argv that arrives in the guest when argv is
// appended to the ssh exec prefix, with an ssh that runs its command line
// with sh -c as sshd does.
func viaPrefix(t *testing.T, fakeSSH string, argv []string) []string {
	t.Helper()
	prefix := sshPrefix([]string{fakeSSH, "-o", "BatchMode=yes", "root@192.0.2.10", "--"})
	full := append(slices.Clone(prefix[1:]), "printf", `%s\0`, "x")
	out, err := exec.CommandContext(t.Context(), prefix[0], append(full, argv...)...).Output()
	if err != nil {
		t.Fatalf("prefix with %q: %v", argv, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")[1:]
}

func plainSSH(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "ssh")
	script := "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec /bin/sh -c \"$*\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

var quoteCases = [][]string{
	{"plain"},
	{""},
	{"it's", "a b", "'", "''", `\`, `\'`},
	{"$(touch pwned)", "`touch pwned`", "; touch pwned", "| cat", "&&", "$HOME", "*", "~"},
	{"trailing newline\n", "\n", "\t", "a\nb"},
	{"--", "-o", "ProxyCommand=touch pwned"},
	{"ünïcödé", "\x01\x7f"},
}

func TestShellJoinRoundTrip(t *testing.T) {
	ssh := plainSSH(t)
	for _, argv := range quoteCases {
		t.Run(strings.Join(argv, ","), func(t *testing.T) {
			if got := viaSh(t, ShellJoin(argv)); !cmp.Equal(got, argv) {
				t.Errorf("sh -c ShellJoin(%q) = %q, want %q", argv, got, argv)
			}
			if got := viaPrefix(t, ssh, argv); !cmp.Equal(got, argv) {
				t.Errorf("ssh prefix with %q = %q, want %q", argv, got, argv)
			}
		})
	}
}

func fuzzArgv(data []byte) ([]string, bool) {
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, false
	}
	return strings.Split(string(data), "\x01"), true
}

func addQuoteSeeds(f *testing.F) {
	for _, argv := range quoteCases {
		if !slices.ContainsFunc(argv, func(s string) bool { return strings.Contains(s, "\x01") }) {
			f.Add([]byte(strings.Join(argv, "\x01")))
		}
	}
}

// FuzzShellJoin checks that any argv survives ShellJoin and sh -c.
func FuzzShellJoin(f *testing.F) {
	addQuoteSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		argv, ok := fuzzArgv(data)
		if !ok {
			t.Skip("argv cannot hold NUL")
		}
		if got := viaSh(t, ShellJoin(argv)); !cmp.Equal(got, argv) {
			t.Errorf("sh -c ShellJoin(%q) = %q", argv, got)
		}
	})
}

// FuzzSSHPrefix checks that any argv appended to the exec prefix arrives
// unchanged in the guest.
func FuzzSSHPrefix(f *testing.F) {
	addQuoteSeeds(f)
	ssh := plainSSH(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		argv, ok := fuzzArgv(data)
		if !ok {
			t.Skip("argv cannot hold NUL")
		}
		if got := viaPrefix(t, ssh, argv); !cmp.Equal(got, argv) {
			t.Errorf("ssh prefix with %q = %q", argv, got)
		}
	})
}
