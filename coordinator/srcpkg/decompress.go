package srcpkg

import (
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"
)

// decompress returns a reader of body decompressed by the method that
// suffix (".gz", ".xz", ".bz2") names, charged to the call's budget of
// decompressed bytes.
func (s *scan) decompress(body io.Reader, suffix string) (io.Reader, error) {
	var r io.Reader
	switch suffix {
	case ".gz":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		r = zr
	case ".xz":
		r = newXZReader(body, s.lim.MaxDict)
	case ".bz2":
		r = bzip2.NewReader(body)
	default:
		return nil, fmt.Errorf("%w: compression %q", ErrUnsupported, suffix)
	}
	return &budgetReader{r: r, s: s}, nil
}

// budgetReader fails with ErrTooLarge once the call has read more than
// MaxDecompressed bytes through decompressors.
type budgetReader struct {
	r io.Reader
	s *scan
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.s.left < 0 {
		return 0, b.tooLarge()
	}
	if int64(len(p)) > b.s.left+1 {
		p = p[:b.s.left+1]
	}
	n, err := b.r.Read(p)
	b.s.left -= int64(n)
	if b.s.left < 0 {
		return 0, b.tooLarge()
	}
	return n, err
}

func (b *budgetReader) tooLarge() error {
	return fmt.Errorf("%w: more than %d bytes decompressed", ErrTooLarge, b.s.lim.MaxDecompressed)
}
