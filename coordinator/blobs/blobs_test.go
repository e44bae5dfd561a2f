package blobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestPut(t *testing.T) {
	const content = "autopkgtest log\n"
	tests := []struct {
		name string
		data string
		sha  string
		size int64
		want error
	}{
		{"good", content, digest(content), int64(len(content)), nil},
		{"wrong digest", content, digest("other"), int64(len(content)), ErrDigestMismatch},
		{"short", content, digest(content), int64(len(content)) + 5, ErrSizeMismatch},
		{"long", content, digest(content), 3, ErrSizeMismatch},
		{"bad digest syntax", content, "ABC", int64(len(content)), ErrBadDigest},
		{"upper-case digest", content, strings.ToUpper(digest(content)), int64(len(content)), ErrBadDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Put(strings.NewReader(tt.data), tt.sha, tt.size)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Put = %v, want %v", err, tt.want)
			}
			left, _ := os.ReadDir(filepath.Join(dir, "tmp"))
			if len(left) != 0 {
				t.Errorf("Put left %d temporary files", len(left))
			}
			rc, size, err := s.Open(tt.sha)
			if tt.want != nil {
				if err == nil {
					rc.Close()
					t.Errorf("Open after failed Put found a blob")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			defer rc.Close()
			got, _ := io.ReadAll(rc)
			if string(got) != tt.data || size != tt.size {
				t.Errorf("Open = %q (%d bytes), want %q", got, size, tt.data)
			}
		})
	}
}

func TestOpenMissing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(digest("absent")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(absent) = %v, want %v", err, ErrNotFound)
	}
}

func TestOpenRemovesPartialUploads(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("kept")
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	if err := s.Put(bytes.NewReader(data), sha, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(dir, "tmp", "upload-123")
	if err := os.WriteFile(partial, []byte("half an upl"), 0o640); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatalf("Open again = %v", err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial upload after Open: %v, want it removed", err)
	}
	rc, size, err := s.Open(sha)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("Open(%s) = %d, %v; want the stored blob", sha, size, err)
	}
	rc.Close()
}
