package sign

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestVerifyBlob(t *testing.T) {
	content := "autopkgtest log\n"
	good := Blob{Name: "log", SHA256: sha256Hex(content), Size: int64(len(content))}
	tests := []struct {
		name string
		blob Blob
		data string
		want error
	}{
		{"match", good, content, nil},
		{"empty blob", Blob{Name: "empty", SHA256: sha256Hex(""), Size: 0}, "", nil},
		{"one byte changed", good, "autopkgtest lug\n", ErrBlobMismatch},
		{"shorter", good, content[:5], ErrBlobMismatch},
		{"longer", good, content + "x", ErrBlobMismatch},
		{"much longer", good, content + strings.Repeat("x", 1<<20), ErrBlobMismatch},
		{"digest of something else", Blob{Name: "log", SHA256: sha256Hex("x"), Size: int64(len(content))}, content, ErrBlobMismatch},
		{"bad digest", Blob{Name: "log", SHA256: "zz", Size: int64(len(content))}, content, ErrBlobMismatch},
		{"negative size", Blob{Name: "log", SHA256: good.SHA256, Size: -1}, content, ErrBlobMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyBlob(tt.blob, strings.NewReader(tt.data)); !errors.Is(err, tt.want) {
				t.Errorf("VerifyBlob(%+v) error = %v, want %v", tt.blob, err, tt.want)
			}
		})
	}
}

func TestVerifyBlobReadError(t *testing.T) {
	want := errors.New("connection reset")
	b := Blob{Name: "log", SHA256: sha256Hex("x"), Size: 1}
	err := VerifyBlob(b, iotest.ErrReader(want))
	if !errors.Is(err, want) || errors.Is(err, ErrBlobMismatch) {
		t.Errorf("VerifyBlob(failing reader) error = %v, want %v and not %v", err, want, ErrBlobMismatch)
	}
}
