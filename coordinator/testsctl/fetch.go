package testsctl

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/archive"
	"github.com/sparegrid/sparegrid/coordinator/internal/deb822"
	"github.com/sparegrid/sparegrid/coordinator/srcpkg"
)

// maxDsc bounds the .dsc, which is read whole; srcpkg refuses one over
// its Limits.MaxControl anyway.
const maxDsc = 1 << 20

// fetch downloads what j needs into a temporary tar in Dir and reads it
// with srcpkg.
func (f *Fetcher) fetch(ctx context.Context, j job) (srcpkg.Control, error) {
	maxFile := cmp.Or(f.MaxFile, DefaultMaxFile)
	if j.dsc.Size > min(maxFile, maxDsc) {
		return srcpkg.Control{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, j.dsc.Name, j.dsc.Size, min(maxFile, maxDsc))
	}
	var dsc bytes.Buffer
	if err := f.download(ctx, j, j.dsc, &dsc); err != nil {
		return srcpkg.Control{}, err
	}
	format, err := dscFormat(dsc.Bytes())
	if err != nil {
		return srcpkg.Control{}, fmt.Errorf("%w: %s: %w", ErrBadSource, j.dsc.Name, err)
	}
	wanted, err := pick(format, j.src.Files)
	if err != nil {
		return srcpkg.Control{}, fmt.Errorf("%w: %s: %w", ErrBadSource, j.dsc.Name, err)
	}
	for _, file := range wanted {
		if file.Size > maxFile {
			return srcpkg.Control{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, file.Name, file.Size, maxFile)
		}
	}
	if err := os.MkdirAll(f.Dir, 0o750); err != nil {
		return srcpkg.Control{}, err
	}
	tmp, err := os.CreateTemp(f.Dir, tempPrefix+"*.tar")
	if err != nil {
		return srcpkg.Control{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	tw := tar.NewWriter(tmp)
	if err := addMember(tw, j.dsc, func(w io.Writer) error {
		_, err := w.Write(dsc.Bytes())
		return err
	}); err != nil {
		return srcpkg.Control{}, err
	}
	for _, file := range wanted {
		if err := addMember(tw, file, func(w io.Writer) error { return f.download(ctx, j, file, w) }); err != nil {
			return srcpkg.Control{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return srcpkg.Control{}, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return srcpkg.Control{}, err
	}
	ctl, err := srcpkg.TestsControl(bufio.NewReaderSize(tmp, 64<<10), apiv1.KindDsc, j.dsc.Name, f.Limits)
	switch {
	case errors.Is(err, srcpkg.ErrTooLarge):
		return ctl, fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, srcpkg.ErrBadArchive), errors.Is(err, srcpkg.ErrUnsupported):
		return ctl, fmt.Errorf("%w: %w", ErrBadSource, err)
	}
	return ctl, err
}

// addMember writes a tar member of file's name and size with the bytes
// write gives it.
func addMember(tw *tar.Writer, file archive.File, write func(io.Writer) error) error {
	hdr := &tar.Header{Name: file.Name, Size: file.Size, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	return write(tw)
}

// download writes file to w, exactly its size in the Sources index and
// with its sha256, or fails naming it.
func (f *Fetcher) download(ctx context.Context, j job, file archive.File, w io.Writer) error {
	u := j.fileURL(file.Name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, u, err)
	}
	req.Header.Set("User-Agent", "sparegrid-testsctl")
	// The bytes as stored: a server that sent a .gz with Content-Encoding
	// gzip would otherwise have the client unpack it.
	req.Header.Set("Accept-Encoding", "identity")
	client := f.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("testsctl: %s: %w", file.Name, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fmt.Errorf("%w: %s: %s", ErrNotFound, u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: %s: %s", ErrHTTPStatus, u, resp.Status)
	case resp.ContentLength >= 0 && resp.ContentLength != file.Size:
		return fmt.Errorf("%w: %s is %d bytes, the Sources index says %d", ErrChecksum, file.Name, resp.ContentLength, file.Size)
	}
	h := sha256.New()
	n, err := io.CopyN(io.MultiWriter(w, h), resp.Body, file.Size)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s ends after %d bytes, the Sources index says %d", ErrChecksum, file.Name, n, file.Size)
	}
	if err != nil {
		return fmt.Errorf("testsctl: %s: %w", file.Name, err)
	}
	var one [1]byte
	if m, _ := io.ReadFull(resp.Body, one[:]); m > 0 {
		return fmt.Errorf("%w: %s is longer than the %d bytes the Sources index says", ErrChecksum, file.Name, file.Size)
	}
	if got := hexSum(h); got != file.SHA256 {
		return fmt.Errorf("%w: %s has sha256 %s, the Sources index says %s", ErrChecksum, file.Name, got, file.SHA256)
	}
	return nil
}

// fileURL is where the archive keeps the source's file name.
func (j job) fileURL(name string) string {
	// JoinPath takes escaped segments.
	return j.base.JoinPath(url.PathEscape(name)).String()
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// dscFormat returns the Format field of a .dsc, "1.0" when it has none,
// from its signed text when it is clearsigned.
func dscFormat(data []byte) (string, error) {
	body, err := deb822.Unsign(data)
	if err != nil {
		return "", err
	}
	para, err := archive.NewParser(bytes.NewReader(body), archive.ParseLimits{MaxLine: maxDsc, MaxParagraph: maxDsc}).Next()
	if err != nil {
		return "", err
	}
	v, ok := para.Get("Format")
	if !ok {
		return "1.0", nil
	}
	return strings.Join(strings.Fields(v), " "), nil
}

// pick returns the files srcpkg reads for a .dsc of format, by the rules
// of srcpkg's own plan, from the files of the Sources index.
func pick(format string, files []archive.File) ([]archive.File, error) {
	matching := func(ok func(string) bool) []archive.File {
		var out []archive.File
		for _, f := range files {
			if ok(f.Name) {
				out = append(out, f)
			}
		}
		return out
	}
	one := func(what string, ok func(string) bool) ([]archive.File, error) {
		fs := matching(ok)
		if len(fs) != 1 {
			return nil, fmt.Errorf("format %s wants one %s, the Sources index lists %d", format, what, len(fs))
		}
		return fs, nil
	}
	isTar := func(n string) bool {
		for _, c := range []string{".gz", ".xz", ".bz2", ".lzma"} {
			if strings.HasSuffix(n, ".tar"+c) {
				return true
			}
		}
		return false
	}
	isOrig := func(n string) bool { return isTar(n) && strings.Contains(n, ".orig.tar.") }
	isDebian := func(n string) bool { return isTar(n) && strings.Contains(n, ".debian.tar.") }
	isDiff := func(n string) bool { return strings.HasSuffix(n, ".diff.gz") }
	switch format {
	case "3.0 (quilt)":
		return one("debian tarball", isDebian)
	case "3.0 (native)":
		return one("tarball", func(n string) bool { return isTar(n) && !isOrig(n) && !isDebian(n) })
	case "1.0":
		if len(matching(isDiff)) == 0 {
			return one("tarball", func(n string) bool { return strings.HasSuffix(n, ".tar.gz") })
		}
		orig, err := one("orig tarball", func(n string) bool { return strings.HasSuffix(n, ".orig.tar.gz") })
		if err != nil {
			return nil, err
		}
		diff, err := one("diff", isDiff)
		return append(orig, diff...), err
	}
	return nil, fmt.Errorf("%w: source format %q", srcpkg.ErrUnsupported, format)
}
