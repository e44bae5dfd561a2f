package archive

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func parseAll(in string, lim ParseLimits) ([]Paragraph, error) {
	p := NewParser(strings.NewReader(in), lim)
	var out []Paragraph
	for {
		para, err := p.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, para)
	}
}

func TestParser(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Paragraph
	}{
		{"empty", "", nil},
		{"only blank lines", "\n \n\t\n", nil},
		{"one field", "Package: hello\n", []Paragraph{{{"Package", "hello"}}}},
		{"no final newline", "Package: hello", []Paragraph{{{"Package", "hello"}}}},
		{"two paragraphs", "A: 1\nB: 2\n\nA: 3\n", []Paragraph{{{"A", "1"}, {"B", "2"}}, {{"A", "3"}}}},
		{"separator of spaces and tabs", "A: 1\n \t \nA: 2\n", []Paragraph{{{"A", "1"}}, {{"A", "2"}}}},
		{"many separators", "\n\nA: 1\n\n\n\nA: 2\n\n", []Paragraph{{{"A", "1"}}, {{"A", "2"}}}},
		{"continuation", "Binary: a, b,\n c\nFiles:\n x 1 f\n\ty 2 g\n", []Paragraph{{{"Binary", "a, b,\nc"}, {"Files", "\nx 1 f\ny 2 g"}}}},
		{"value white space trimmed", "A:   spaced  \t\n", []Paragraph{{{"A", "spaced"}}}},
		{"empty value", "A:\nB: 1\n", []Paragraph{{{"A", ""}, {"B", "1"}}}},
		{"crlf", "A: 1\r\nB: 2\r\n\r\nA: 3\r\n", []Paragraph{{{"A", "1"}, {"B", "2"}}, {{"A", "3"}}}},
		{"comments", "# head\nA: 1\n# inside\nB: 2\n", []Paragraph{{{"A", "1"}, {"B", "2"}}}},
		{"colon in value", "A: http://x\n", []Paragraph{{{"A", "http://x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAll(tt.in, ParseLimits{})
			if err != nil {
				t.Fatalf("parse(%q) error %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parse(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParserErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		lim  ParseLimits
		want error
	}{
		{"continuation first", " a\n", ParseLimits{}, ErrSyntax},
		{"no colon", "Package hello\n", ParseLimits{}, ErrSyntax},
		{"empty name", ": x\n", ParseLimits{}, ErrSyntax},
		{"name with space", "Pack age: x\n", ParseLimits{}, ErrSyntax},
		{"name starting with dash", "-A: x\n", ParseLimits{}, ErrSyntax},
		{"duplicate field", "A: 1\na: 2\n", ParseLimits{}, ErrSyntax},
		{"NUL byte", "A: 1\x00\n", ParseLimits{}, ErrSyntax},
		{"long line", "A: " + strings.Repeat("x", 100) + "\n", ParseLimits{MaxLine: 50}, ErrTooLarge},
		{"long line without newline", "A: " + strings.Repeat("x", 200000), ParseLimits{MaxLine: 100000}, ErrTooLarge},
		{"long paragraph", "A: x\n" + strings.Repeat(" continued\n", 20), ParseLimits{MaxParagraph: 50}, ErrTooLarge},
		{"too many fields", "A: 1\nB: 2\nC: 3\n", ParseLimits{MaxFields: 2}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseAll(tt.in, tt.lim); !errors.Is(err, tt.want) {
				t.Errorf("parse(%.40q) error = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func FuzzParser(f *testing.F) {
	f.Add("Package: hello\nBinary: hello\n\nPackage: x\n a\n")
	f.Add("A: 1\r\n# c\r\n\r\n")
	f.Add(strings.Repeat("A: x\n", 10))
	f.Fuzz(func(t *testing.T, in string) {
		lim := ParseLimits{MaxLine: 256, MaxParagraph: 1024, MaxFields: 8}
		paras, err := parseAll(in, lim)
		if err != nil {
			return
		}
		for _, p := range paras {
			if len(p) == 0 || len(p) > lim.MaxFields {
				t.Errorf("paragraph with %d fields", len(p))
			}
			for _, f := range p {
				if !validFieldName(f.Name) {
					t.Errorf("accepted field name %q", f.Name)
				}
				if len(f.Value) > lim.MaxParagraph {
					t.Errorf("value of %d bytes over the paragraph limit", len(f.Value))
				}
			}
		}
	})
}
