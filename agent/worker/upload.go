package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/sign"
)

// upload sends one file of an attempt's result from dir, retrying
// transient failures. The file must still hash to b.SHA256.
func (w *Worker) upload(ctx context.Context, jobID int64, attempt int, dir string, b sign.Blob) error {
	path := filepath.Join(dir, filepath.FromSlash(b.Name))
	hdr := protocol.BlobHeader{JobID: jobID, Attempt: attempt, Name: b.Name, Size: b.Size, SHA256: b.SHA256}
	err := w.call(ctx, w.CallRetries, func(ctx context.Context, c Conn, token string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rc, err := c.UploadBlob(ctx, token, hdr, f)
		if err != nil {
			return err
		}
		if rc.SHA256 != b.SHA256 || rc.Size != b.Size {
			return protocol.Errorf(protocol.ErrDigestMismatch, "coordinator stored %s (%d bytes), sent %s (%d bytes)", rc.SHA256, rc.Size, b.SHA256, b.Size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("worker: upload %s: %w", b.Name, err)
	}
	return nil
}

// hashFile returns the sha256 and size of the file at path; with sync it
// also flushes the file to disk.
func hashFile(path string, sync bool) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return "", 0, err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
