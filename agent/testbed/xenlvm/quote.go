package xenlvm

import "strings"

// ShellQuote returns s quoted so that a POSIX shell reads it back as
// exactly one word equal to s. s must not contain NUL, which no argv can.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, unsafeInShell) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellJoin quotes each element of argv and joins them with spaces, giving
// a command line that a POSIX shell splits back into argv.
func ShellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = ShellQuote(a)
	}
	return strings.Join(q, " ")
}

func unsafeInShell(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("%+,-./:=@_", r)
}

// quoteArgsScript is POSIX sh that turns its positional parameters into
// one shell command line, single-quoting each, in the variable q. It uses
// only parameter expansion, so arguments keep trailing newlines and no
// process is started per argument.
const quoteArgsScript = `q=
for a do
  r=
  while :; do
    case $a in
      *\'*) b=${a%%\'*}; r=$r$b\'\\\'\'; a=${a#*\'} ;;
      *) r=$r$a; break ;;
    esac
  done
  q="$q '$r'"
done
`

// sshPrefix returns the exec prefix that runs a command in the guest: a
// small sh program that quotes the argv appended to it and hands the
// resulting string to ssh, since ssh takes a shell command line, not an
// argv. sshArgv is the ssh command up to and including "--".
func sshPrefix(sshArgv []string) []string {
	script := quoteArgsScript + "exec " + ShellJoin(sshArgv) + ` "$q"`
	return []string{"/bin/sh", "-c", script, "sparegrid-xenlvm-exec"}
}
