package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/sign"
)

// uploadAll uploads every file the run left in out, the log first, and
// returns them as the result will name them.
func (w *Worker) uploadAll(ctx context.Context, j *jobRun, out string) ([]sign.Blob, error) {
	files, err := w.Artifacts(out)
	if errors.Is(err, fs.ErrNotExist) {
		files, err = nil, nil
	}
	if err != nil {
		// Too many or too large files: send the log alone, so that the
		// result still arrives and says what happened.
		j.log.Warn("cannot list all artifacts, sending the log alone", "err", err)
		files = nil
		if fi, serr := os.Stat(filepath.Join(out, logName)); serr == nil && fi.Mode().IsRegular() && fi.Size() <= runner.MaxArtifactSize {
			files = []runner.File{{Name: logName, Size: fi.Size()}}
		}
	}
	sort.SliceStable(files, func(a, b int) bool {
		return files[a].Name == logName && files[b].Name != logName
	})
	blobs := make([]sign.Blob, 0, len(files))
	for _, f := range files {
		b, err := w.upload(ctx, j, out, f)
		if err != nil {
			return nil, err
		}
		blobs = append(blobs, b)
	}
	return blobs, nil
}

// upload sends one file, hashing it first, retrying transient failures.
func (w *Worker) upload(ctx context.Context, j *jobRun, out string, file runner.File) (sign.Blob, error) {
	path := filepath.Join(out, filepath.FromSlash(file.Name))
	sum, size, err := hashFile(path)
	if err != nil {
		return sign.Blob{}, fmt.Errorf("worker: upload %s: %w", file.Name, err)
	}
	hdr := protocol.BlobHeader{JobID: j.job.ID, Attempt: j.job.Attempt, Name: file.Name, Size: size, SHA256: sum}
	err = w.call(ctx, w.CallRetries, func(ctx context.Context, c Conn, token string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rc, err := c.UploadBlob(ctx, token, hdr, f)
		if err != nil {
			return err
		}
		if rc.SHA256 != sum || rc.Size != size {
			return protocol.Errorf(protocol.ErrDigestMismatch, "coordinator stored %s (%d bytes), sent %s (%d bytes)", rc.SHA256, rc.Size, sum, size)
		}
		return nil
	})
	if err != nil {
		return sign.Blob{}, fmt.Errorf("worker: upload %s: %w", file.Name, err)
	}
	return sign.Blob{Name: file.Name, SHA256: sum, Size: size}, nil
}

func hashFile(path string) (string, int64, error) {
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
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
