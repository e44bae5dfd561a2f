package virt

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxLine is the longest command line Serve accepts, newline included.
const MaxLine = 64 << 10

// Command names, in the dashed spelling. The caller may also spell them
// with underscores, as autopkgtest does for auxverb_debug_fail.
const (
	CmdCapabilities        = "capabilities"
	CmdOpen                = "open"
	CmdRevert              = "revert"
	CmdReboot              = "reboot"
	CmdClose               = "close"
	CmdQuit                = "quit"
	CmdPrintExecuteCommand = "print-execute-command"
	CmdCopydown            = "copydown"
	CmdCopyup              = "copyup"
	CmdShell               = "shell"
	CmdAuxverbDebugFail    = "auxverb-debug-fail"
)

var (
	// ErrEmpty is returned by ParseCommand for a blank line, which the
	// server ignores.
	ErrEmpty = errors.New("virt: empty command line")
	// ErrLineTooLong means a command line is longer than MaxLine.
	ErrLineTooLong = errors.New("virt: command line too long")
	// ErrEncoding means a word of a command line is not valid
	// url-encoding or decodes to a string holding a NUL byte.
	ErrEncoding = errors.New("virt: bad url-encoding")
	// ErrUnknownCommand means the command name is not one of the Cmd
	// constants.
	ErrUnknownCommand = errors.New("virt: unknown command")
	// ErrArgCount means a command has too few or too many arguments.
	ErrArgCount = errors.New("virt: wrong number of arguments")
)

// Command is one parsed request line.
type Command struct {
	// Name is one of the Cmd constants.
	Name string
	// Args are the url-decoded arguments.
	Args []string
}

// arity returns how many arguments a command takes; max < 0 means no
// upper bound.
func arity(name string) (minArgs, maxArgs int, ok bool) {
	switch name {
	case CmdCapabilities, CmdOpen, CmdRevert, CmdClose, CmdQuit,
		CmdPrintExecuteCommand, CmdAuxverbDebugFail:
		return 0, 0, true
	case CmdReboot:
		return 0, 1, true
	case CmdCopydown, CmdCopyup:
		return 2, 2, true
	case CmdShell:
		return 1, -1, true
	}
	return 0, 0, false
}

// ParseCommand parses one line of the virt-server protocol: words
// separated by white space, each url-encoded, the first naming the
// command. It checks the command name and argument count but nothing that
// depends on the server's state.
func ParseCommand(line string) (Command, error) {
	if len(line) > MaxLine {
		return Command{}, fmt.Errorf("%w: %d bytes, at most %d", ErrLineTooLong, len(line), MaxLine)
	}
	words := strings.Fields(line)
	if len(words) == 0 {
		return Command{}, ErrEmpty
	}
	decoded := make([]string, len(words))
	for i, w := range words {
		d, err := url.PathUnescape(w)
		if err != nil || strings.IndexByte(d, 0) >= 0 {
			return Command{}, fmt.Errorf("%w: %q", ErrEncoding, w)
		}
		decoded[i] = d
	}
	name := strings.ReplaceAll(decoded[0], "_", "-")
	minArgs, maxArgs, ok := arity(name)
	if !ok {
		return Command{}, fmt.Errorf("%w `%s'", ErrUnknownCommand, words[0])
	}
	args := decoded[1:]
	if len(args) < minArgs {
		return Command{}, fmt.Errorf("%w: too few arguments to command `%s'", ErrArgCount, words[0])
	}
	if maxArgs >= 0 && len(args) > maxArgs {
		return Command{}, fmt.Errorf("%w: too many arguments to command `%s'", ErrArgCount, words[0])
	}
	return Command{Name: name, Args: args}, nil
}

// Quote url-encodes s the way Python's urllib.parse.quote does with its
// default safe set, which is what autopkgtest decodes: every byte except
// ASCII letters, digits, "_.-~" and "/" becomes %XX.
func Quote(s string) string {
	return quote(s, "/")
}

func quote(s, safe string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("_.-~", c) >= 0 || strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
