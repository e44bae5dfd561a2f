package archive

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Field is one deb822 field. Value holds the text after the colon with
// surrounding white space removed; each continuation line follows a
// newline, without its leading white space character.
type Field struct {
	Name  string
	Value string
}

// Paragraph is one deb822 paragraph, fields in file order.
type Paragraph []Field

// Get returns the value of the field named name (compared without regard
// to case) and whether it is present.
func (p Paragraph) Get(name string) (string, bool) {
	for _, f := range p {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// ParseLimits bounds what one deb822 parser accepts.
type ParseLimits struct {
	MaxLine      int // bytes in one line, without its newline
	MaxParagraph int // bytes in one paragraph
	MaxFields    int // fields in one paragraph
}

// The default limits are far above anything Debian's archive holds (its
// longest Sources line is about 11 KiB) yet keep a hostile file cheap.
const (
	defaultMaxLine      = 1 << 20
	defaultMaxParagraph = 8 << 20
	defaultMaxFields    = 256
)

func (l ParseLimits) orDefault() ParseLimits {
	if l.MaxLine <= 0 {
		l.MaxLine = defaultMaxLine
	}
	if l.MaxParagraph <= 0 {
		l.MaxParagraph = defaultMaxParagraph
	}
	if l.MaxFields <= 0 {
		l.MaxFields = defaultMaxFields
	}
	return l
}

// Parser reads deb822 paragraphs (Debian Policy 5.1) from a stream.
//
// It accepts LF and CRLF line ends, '#' comment lines, and blank lines made
// of spaces and tabs as separators. It refuses NUL bytes, a continuation
// line with no field before it, a line without a colon, a bad field name, a
// field given twice in one paragraph, and anything over its limits.
type Parser struct {
	r    *bufio.Reader
	lim  ParseLimits
	line int
	buf  []byte
}

// NewParser returns a Parser reading r within lim (zero fields take the
// defaults).
func NewParser(r io.Reader, lim ParseLimits) *Parser {
	return &Parser{r: bufio.NewReaderSize(r, 64<<10), lim: lim.orDefault()}
}

// readLine returns the next line without its line end, or io.EOF.
func (p *Parser) readLine() ([]byte, error) {
	p.buf = p.buf[:0]
	for {
		chunk, err := p.r.ReadSlice('\n')
		if len(p.buf)+len(chunk) > p.lim.MaxLine+2 {
			return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrTooLarge, p.line+1, p.lim.MaxLine)
		}
		p.buf = append(p.buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(p.buf) > 0 {
			break
		}
		if err != nil {
			return nil, err
		}
		break
	}
	p.line++
	b := bytes.TrimSuffix(p.buf, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) > p.lim.MaxLine {
		return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrTooLarge, p.line, p.lim.MaxLine)
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, fmt.Errorf("%w: line %d holds a NUL byte", ErrSyntax, p.line)
	}
	return b, nil
}

func isBlank(b []byte) bool {
	return len(bytes.Trim(b, " \t")) == 0
}

// Next returns the next paragraph, or io.EOF after the last one.
func (p *Parser) Next() (Paragraph, error) {
	var (
		para  Paragraph
		size  int
		value strings.Builder
		name  string
	)
	flush := func() error {
		if name == "" {
			return nil
		}
		for _, f := range para {
			if strings.EqualFold(f.Name, name) {
				return fmt.Errorf("%w: line %d: field %q given twice", ErrSyntax, p.line, name)
			}
		}
		if len(para) == p.lim.MaxFields {
			return fmt.Errorf("%w: line %d: more than %d fields in a paragraph", ErrTooLarge, p.line, p.lim.MaxFields)
		}
		para = append(para, Field{Name: name, Value: strings.TrimRight(value.String(), " \t")})
		name = ""
		value.Reset()
		return nil
	}
	for {
		line, err := p.readLine()
		if err == io.EOF {
			if err := flush(); err != nil {
				return nil, err
			}
			if len(para) == 0 {
				return nil, io.EOF
			}
			return para, nil
		}
		if err != nil {
			return nil, err
		}
		if isBlank(line) {
			if name == "" && len(para) == 0 {
				continue
			}
			if err := flush(); err != nil {
				return nil, err
			}
			return para, nil
		}
		if line[0] == '#' {
			continue
		}
		size += len(line) + 1
		if size > p.lim.MaxParagraph {
			return nil, fmt.Errorf("%w: paragraph ending at line %d is longer than %d bytes", ErrTooLarge, p.line, p.lim.MaxParagraph)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name == "" {
				return nil, fmt.Errorf("%w: line %d: continuation line without a field", ErrSyntax, p.line)
			}
			value.WriteByte('\n')
			value.Write(bytes.TrimRight(line[1:], " \t"))
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, fmt.Errorf("%w: line %d: no field name and colon", ErrSyntax, p.line)
		}
		n := string(line[:colon])
		if !validFieldName(n) {
			return nil, fmt.Errorf("%w: line %d: bad field name %q", ErrSyntax, p.line, n)
		}
		name = n
		value.Write(bytes.Trim(line[colon+1:], " \t"))
	}
}

// validFieldName reports whether s is printable US-ASCII without spaces or
// colons that does not start with '#' or '-'.
func validFieldName(s string) bool {
	if s == "" || s[0] == '#' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// splitList splits a comma-separated field value (which may be folded over
// several lines) into its trimmed, non-empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
