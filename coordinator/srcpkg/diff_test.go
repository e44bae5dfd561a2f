package srcpkg

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiffApply(t *testing.T) {
	const orig = "Tests: a\n\nTests: b\nDepends: @\n"
	other := "--- hello-1.0.orig/README\n+++ hello-1.0/README\n@@ -1 +1,2 @@\n hello\n+" + strings.Repeat("x", 100<<10) + "\n"
	tests := []struct {
		name    string
		diff    string
		orig    *string
		want    *string
		wantErr error
	}{
		{
			name: "create from /dev/null",
			diff: other + "--- /dev/null\n+++ hello-1.0/debian/tests/control\t2024-01-01 00:00:00\n@@ -0,0 +1,2 @@\n+Tests: a\n+Depends: @\n",
			want: ptr("Tests: a\nDepends: @\n"),
		},
		{
			name: "create without a final newline",
			diff: "--- hello-1.0.orig/debian/tests/control\n+++ hello-1.0/debian/tests/control\n@@ -0,0 +1 @@\n+Tests: a\n\\ No newline at end of file\n",
			want: ptr("Tests: a"),
		},
		{
			name: "modify",
			diff: "--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -2,3 +2,4 @@\n \n-Tests: b\n+Tests: c\n+Restrictions: needs-root\n Depends: @\n",
			orig: ptr(orig),
			want: ptr("Tests: a\n\nTests: c\nRestrictions: needs-root\nDepends: @\n"),
		},
		{
			name: "modify with a blank context line as GNU diff writes it",
			diff: "--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -1,3 +1,3 @@\n-Tests: a\n+Tests: z\n\n Tests: b\n",
			orig: ptr(orig),
			want: ptr("Tests: z\n\nTests: b\nDepends: @\n"),
		},
		{
			name: "append after the last line",
			diff: "--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -4,0 +5 @@\n+Restrictions: x\n",
			orig: ptr(orig),
			want: ptr(orig + "Restrictions: x\n"),
		},
		{
			name: "untouched",
			diff: other,
			orig: ptr(orig),
			want: ptr(orig),
		},
		{
			name: "delete",
			diff: "--- a/debian/tests/control\n+++ /dev/null\n@@ -1,4 +0,0 @@\n-Tests: a\n-\n-Tests: b\n-Depends: @\n",
			orig: ptr(orig),
		},
		{
			name:    "context mismatch",
			diff:    "--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -1 +1 @@\n-Tests: q\n+Tests: r\n",
			orig:    ptr(orig),
			wantErr: ErrUnsupported,
		},
		{
			name:    "modify a file the orig lacks",
			diff:    "--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -1 +1 @@\n-Tests: a\n+Tests: r\n",
			wantErr: ErrUnsupported,
		},
		{
			name:    "twice",
			diff:    "--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -0,0 +1 @@\n+Tests: a\n--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -1 +1 @@\n-Tests: a\n+Tests: b\n",
			wantErr: ErrUnsupported,
		},
		{
			name:    "ends inside a hunk",
			diff:    "--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -0,0 +1,3 @@\n+Tests: a\n",
			wantErr: ErrBadArchive,
		},
		{
			name:    "stray line inside a hunk",
			diff:    "--- a/README\n+++ b/README\n@@ -1 +1 @@\n?what\n",
			wantErr: ErrBadArchive,
		},
		{
			name:    "bad hunk header",
			diff:    "--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -x +1 @@\n",
			wantErr: ErrBadArchive,
		},
		{
			name:    "dotdot",
			diff:    "--- a/../debian/tests/control\n+++ a/../debian/tests/control\n",
			wantErr: ErrBadArchive,
		},
		{
			name:    "target line too long",
			diff:    "--- a/debian/tests/control\n+++ b/debian/tests/control\n@@ -0,0 +1 @@\n+" + strings.Repeat("x", 2000) + "\n",
			wantErr: ErrTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const max = 1000
			var got *string
			p, err := readDiff(strings.NewReader(tt.diff), max)
			if err == nil {
				got = tt.orig
				if p != nil {
					var orig []byte
					if tt.orig != nil {
						orig = []byte(*tt.orig)
					}
					var data []byte
					data, err = p.apply(orig, max)
					got = nil
					if data != nil {
						got = ptr(string(data))
					}
				}
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("readDiff and apply = %v, want error %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readDiff and apply error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("readDiff and apply mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr(s string) *string { return &s }
