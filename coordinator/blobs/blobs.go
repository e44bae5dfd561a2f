// Package blobs owns the coordinator's content-addressed files: logs,
// artifacts and uploaded source packages, each stored once under the hex
// sha256 of its bytes in the data directory.
//
// A blob is written to a temporary file, checked against the digest and size
// its sender announced, synced, and only then renamed into place, so a file
// under its final name always holds exactly the bytes its name promises. It
// must not know about jobs or the database: callers record rows only after
// Put returns.
package blobs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Errors.
var (
	ErrDigestMismatch = errors.New("blobs: content does not match its sha256")
	ErrSizeMismatch   = errors.New("blobs: content does not match its size")
	ErrBadDigest      = errors.New("blobs: not a lowercase hex sha256")
	ErrNotFound       = errors.New("blobs: no such blob")
)

// Store keeps blobs under a directory.
type Store struct {
	dir string
}

// Open returns a Store rooted at dir, creating it if needed, and removes
// the partial uploads a crashed process left behind. Only one process may
// use dir at a time.
func Open(dir string) (*Store, error) {
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("blobs: %w", err)
	}
	// Partial uploads of a coordinator that crashed mid-upload: nothing
	// names them, and their agents send them again.
	left, err := filepath.Glob(filepath.Join(tmp, "upload-*"))
	if err != nil {
		return nil, fmt.Errorf("blobs: %w", err)
	}
	for _, p := range left {
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("blobs: remove a partial upload: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

// ValidDigest reports whether s is 64 lowercase hex digits.
func ValidDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Store) path(sha string) string {
	return filepath.Join(s.dir, sha[:2], sha)
}

// Put stores exactly size bytes from r under sha. It reads at most size+1
// bytes, and returns an error without keeping anything unless the bytes
// match both size and sha. Putting a blob that exists is cheap and
// succeeds once the new bytes have been checked.
func (s *Store) Put(r io.Reader, sha string, size int64) error {
	if !ValidDigest(sha) {
		return fmt.Errorf("%w: %q", ErrBadDigest, sha)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "upload-*")
	if err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, size+1))
	if err != nil {
		return fmt.Errorf("blobs: receive %s: %w", sha, err)
	}
	if n != size {
		return fmt.Errorf("%w: got %d bytes, announced %d", ErrSizeMismatch, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("%w: announced %s, content has %s", ErrDigestMismatch, sha, got)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("blobs: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	final := s.path(sha)
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	return syncDir(filepath.Dir(final))
}

// Open returns the blob's bytes and size.
func (s *Store) Open(sha string) (io.ReadCloser, int64, error) {
	if !ValidDigest(sha) {
		return nil, 0, fmt.Errorf("%w: %q", ErrBadDigest, sha)
	}
	f, err := os.Open(s.path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, sha)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blobs: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blobs: %w", err)
	}
	return f, st.Size(), nil
}

// Path returns where the blob with sha lives (it may not exist).
func (s *Store) Path(sha string) (string, error) {
	if !ValidDigest(sha) {
		return "", fmt.Errorf("%w: %q", ErrBadDigest, sha)
	}
	return s.path(sha), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("blobs: sync %s: %w", dir, err)
	}
	return nil
}
