package sign

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// VerifyBlob reads r, stopping one byte past b.Size, and checks that it
// holds exactly b.Size bytes whose sha256 is b.SHA256. A mismatch wraps
// ErrBlobMismatch; a read error is returned wrapped as it is.
func VerifyBlob(b Blob, r io.Reader) error {
	if b.Size < 0 || !isSHA256Hex(b.SHA256) {
		return fmt.Errorf("%w: blob %q has size %d and sha256 %q", ErrBlobMismatch, b.Name, b.Size, b.SHA256)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, b.Size+1))
	if err != nil {
		return fmt.Errorf("sign: reading blob %q: %w", b.Name, err)
	}
	if n != b.Size {
		if n > b.Size {
			return fmt.Errorf("%w: blob %q is longer than %d bytes", ErrBlobMismatch, b.Name, b.Size)
		}
		return fmt.Errorf("%w: blob %q is %d bytes, want %d", ErrBlobMismatch, b.Name, n, b.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.SHA256 {
		return fmt.Errorf("%w: blob %q sha256 %s, want %s", ErrBlobMismatch, b.Name, got, b.SHA256)
	}
	return nil
}
