package deb822

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSyntax means a paragraph is not deb822.
var ErrSyntax = errors.New("deb822: syntax error")

// maxFieldName bounds the field name an error quotes.
const maxFieldName = 64

// Paragraph parses the first paragraph of deb822 text into its fields,
// keyed by lower-case field name, with surrounding blanks trimmed.
// Continuation lines are kept, one per line, without their leading blank;
// comment lines are skipped, and so are blank lines before the paragraph.
// Errors wrap ErrSyntax and name the line: a continuation line outside a
// field, a line that is not "Field: value", a field given twice, or no
// field at all.
func Paragraph(data []byte) (map[string]string, error) {
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
				return nil, fmt.Errorf("%w: line %d: continuation line outside a field", ErrSyntax, n+1)
			}
			fields[last] += "\n" + strings.TrimLeft(line, " \t")
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: line %d: want \"Field: value\"", ErrSyntax, n+1)
		}
		key := strings.ToLower(name)
		if _, dup := fields[key]; dup {
			if len(name) > maxFieldName {
				name = name[:maxFieldName] + "..."
			}
			return nil, fmt.Errorf("%w: line %d: field %s repeated", ErrSyntax, n+1, name)
		}
		fields[key] = strings.TrimSpace(value)
		last = key
	}
	if last == "" {
		return nil, fmt.Errorf("%w: no fields", ErrSyntax)
	}
	return fields, nil
}
