package deb822

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParagraph(t *testing.T) {
	tests := []struct {
		name string
		text string
		want map[string]string
		err  error
	}{
		{"fields", "Source: hello\nVersion: 2.10-3\n", map[string]string{"source": "hello", "version": "2.10-3"}, nil},
		{"first paragraph only", "\n# comment\nSource: a\n\nSource: b\n", map[string]string{"source": "a"}, nil},
		{"continuation", "Files:\n abc 1 a.tar\n\tdef 2 b.tar\nX: y", map[string]string{"files": "\nabc 1 a.tar\ndef 2 b.tar", "x": "y"}, nil},
		{"case and blanks", "TestSuite:   autopkgtest  \r\n", map[string]string{"testsuite": "autopkgtest"}, nil},
		{"continuation first", " x\nA: b\n", nil, ErrSyntax},
		{"not a field", "A: b\nnot a field\n", nil, ErrSyntax},
		{"space in name", "A b: c\n", nil, ErrSyntax},
		{"repeated", "A: b\na: c\n", nil, ErrSyntax},
		{"empty", "\n# only a comment\n\n", nil, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Paragraph([]byte(tt.text))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Paragraph(%q) error = %v, want %v", tt.text, err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
				t.Errorf("Paragraph(%q) mismatch (-want +got):\n%s", tt.text, diff)
			}
		})
	}
}

func FuzzParagraph(f *testing.F) {
	f.Add([]byte("Source: hello\nFiles:\n a 1 b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := Paragraph(data)
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("Paragraph error %v wraps no sentinel", err)
		}
		if err == nil && len(fields) == 0 {
			t.Errorf("Paragraph(%q) = no fields and no error", data)
		}
	})
}
