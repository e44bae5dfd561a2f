package srcpkg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// firstParagraph reads the first paragraph of a deb822 file, refusing one
// longer than max bytes; what follows it is not read.
func firstParagraph(r io.Reader, max int64) (map[string]string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, max+1))
	sc.Buffer(make([]byte, 0, 4096), int(max)+1)
	var (
		buf     bytes.Buffer
		started bool
	)
	for sc.Scan() {
		line := sc.Bytes()
		if int64(buf.Len()+len(line)+1) > max {
			return nil, fmt.Errorf("%w: first paragraph longer than %d bytes", ErrTooLarge, max)
		}
		blank := len(bytes.TrimSpace(line)) == 0
		if blank && started {
			break
		}
		started = started || !blank && line[0] != '#'
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrTooLarge, max)
		}
		return nil, err
	}
	return parseParagraph(buf.Bytes())
}

// parseParagraph parses the first paragraph of deb822 text into fields
// keyed by lower-case name. Continuation lines follow a newline, without
// their leading blank; comment lines are skipped.
func parseParagraph(data []byte) (map[string]string, error) {
	fields := map[string]string{}
	last := ""
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, " \t\r")
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case line == "":
			if last != "" {
				return fields, nil
			}
			continue
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("%w: line %d: continuation line outside a field", ErrBadArchive, n+1)
			}
			fields[last] += "\n" + strings.TrimLeft(line, " \t")
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: line %d: want \"Field: value\"", ErrBadArchive, n+1)
		}
		key := strings.ToLower(name)
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("%w: line %d: field %s repeated", ErrBadArchive, n+1, truncate(name))
		}
		fields[key] = strings.TrimSpace(value)
		last = key
	}
	if last == "" {
		return nil, fmt.Errorf("%w: no fields", ErrBadArchive)
	}
	return fields, nil
}

const (
	pgpSigned    = "-----BEGIN PGP SIGNED MESSAGE-----"
	pgpSignature = "-----BEGIN PGP SIGNATURE-----"
)

// stripClearsign returns the text of an OpenPGP clear-signed message
// (RFC 4880 section 7) without checking the signature, or data itself
// when it is not armoured.
func stripClearsign(data []byte) ([]byte, error) {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	trimmed := strings.TrimLeft(text, " \t\n")
	if !strings.HasPrefix(trimmed, pgpSigned) {
		return []byte(text), nil
	}
	lines := strings.Split(trimmed, "\n")[1:]
	for len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
		lines = lines[1:]
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: OpenPGP armour without a message", ErrBadArchive)
	}
	var out strings.Builder
	for _, line := range lines[1:] {
		if strings.TrimRight(line, " \t") == pgpSignature {
			return []byte(out.String()), nil
		}
		out.WriteString(strings.TrimPrefix(line, "- "))
		out.WriteByte('\n')
	}
	return nil, fmt.Errorf("%w: OpenPGP signed message without a signature", ErrBadArchive)
}
