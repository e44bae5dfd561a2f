package virt

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    Command
		wantErr error
	}{
		{"capabilities", "capabilities\n", Command{Name: CmdCapabilities, Args: []string{}}, nil},
		{"surrounding space", "  open \t\n", Command{Name: CmdOpen, Args: []string{}}, nil},
		{"underscores", "auxverb_debug_fail", Command{Name: CmdAuxverbDebugFail, Args: []string{}}, nil},
		{"mixed spelling", "print_execute-command", Command{Name: CmdPrintExecuteCommand, Args: []string{}}, nil},
		{"encoded name", "cl%6Fse", Command{Name: CmdClose, Args: []string{}}, nil},
		{"copydown decodes", "copydown /h/a%20b%2Cc /t/%C3%A9",
			Command{Name: CmdCopydown, Args: []string{"/h/a b,c", "/t/é"}}, nil},
		{"plus is not space", "copyup /t/a+b /h/a+b", Command{Name: CmdCopyup, Args: []string{"/t/a+b", "/h/a+b"}}, nil},
		{"reboot prepare-only", "reboot prepare-only", Command{Name: CmdReboot, Args: []string{"prepare-only"}}, nil},
		{"shell with env", "shell / A%3D1 B%3D2", Command{Name: CmdShell, Args: []string{"/", "A=1", "B=2"}}, nil},
		{"blank", " \t \n", Command{}, ErrEmpty},
		{"empty", "", Command{}, ErrEmpty},
		{"unknown", "frobnicate", Command{}, ErrUnknownCommand},
		{"bad escape", "copyup /t/%zz /h/x", Command{}, ErrEncoding},
		{"truncated escape", "copyup /t/% /h/x", Command{}, ErrEncoding},
		{"nul byte", "copyup /t/%00 /h/x", Command{}, ErrEncoding},
		{"too many for open", "open now", Command{}, ErrArgCount},
		{"too many for reboot", "reboot a b", Command{}, ErrArgCount},
		{"too few for copyup", "copyup /t/x", Command{}, ErrArgCount},
		{"too many for copydown", "copydown a b c", Command{}, ErrArgCount},
		{"too few for shell", "shell", Command{}, ErrArgCount},
		{"too long", "capabilities " + strings.Repeat("x", MaxLine), Command{}, ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.line)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseCommand(%q) error = %v, want %v", tt.line, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseCommand(%q) mismatch (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	// Wants are what Python's urllib.parse.quote returns.
	tests := []struct {
		name, in, want string
	}{
		{"plain path", "/tmp/autopkgtest.AbC_1-2~x", "/tmp/autopkgtest.AbC_1-2~x"},
		{"space and comma", "a b,c", "a%20b%2Cc"},
		{"shell words", `cd "$0" && exec "$@"`, "cd%20%22%240%22%20%26%26%20exec%20%22%24%40%22"},
		{"utf-8", "é", "%C3%A9"},
		{"percent and plus", "%+=", "%25%2B%3D"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quote(tt.in); got != tt.want {
				t.Errorf("Quote(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "/tmp/a-b_c.d", "/tmp/a-b_c.d"},
		{"empty", "", "''"},
		{"space", "a b", "'a b'"},
		{"single quote", "it's", `'it'"'"'s'`},
		{"dollar", "$HOME", "'$HOME'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shellQuote(tt.in); got != tt.want {
				t.Errorf("shellQuote(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"capabilities\n", "open", "revert", "reboot prepare-only", "close", "quit",
		"print-execute-command", "auxverb_debug_fail",
		"copydown /h/a%20b/ /t/x/", "copyup /t/f /h/f", "shell / A%3D1",
		"", "  \t", "%", "copyup %zz x", "copyup %00 x", "open extra", "x_y-z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseCommand(line)
		if err != nil {
			return
		}
		minArgs, maxArgs, ok := arity(c.Name)
		if !ok {
			t.Fatalf("ParseCommand(%q) = name %q, not a known command", line, c.Name)
		}
		if len(c.Args) < minArgs || maxArgs >= 0 && len(c.Args) > maxArgs {
			t.Fatalf("ParseCommand(%q) = %d args, want %d..%d", line, len(c.Args), minArgs, maxArgs)
		}
		words := []string{c.Name}
		for _, a := range c.Args {
			if strings.IndexByte(a, 0) >= 0 {
				t.Fatalf("ParseCommand(%q) = arg %q with NUL", line, a)
			}
			words = append(words, Quote(a))
		}
		again := strings.Join(words, " ")
		c2, err := ParseCommand(again)
		if err != nil && !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("ParseCommand(%q) (re-quoted from %q) error = %v", again, line, err)
		}
		if err == nil {
			if diff := cmp.Diff(c, c2, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("re-quoted %q parses differently (-first +second):\n%s", line, diff)
			}
		}
	})
}
