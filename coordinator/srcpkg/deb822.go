package srcpkg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/sparegrid/sparegrid/coordinator/internal/deb822"
)

// firstParagraph reads the first paragraph of a deb822 file, refusing one
// longer than max bytes; what follows it is not read.
func firstParagraph(r io.Reader, max int64) (map[string]string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, max+1))
	sc.Buffer(make([]byte, 0, 4096), int(max)+1)
	var (
		buf     bytes.Buffer
		started bool
	)
	for sc.Scan() {
		line := sc.Bytes()
		if int64(buf.Len()+len(line)+1) > max {
			return nil, fmt.Errorf("%w: first paragraph longer than %d bytes", ErrTooLarge, max)
		}
		blank := len(bytes.TrimSpace(line)) == 0
		if blank && started {
			break
		}
		started = started || !blank && line[0] != '#'
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrTooLarge, max)
		}
		return nil, err
	}
	return parseParagraph(buf.Bytes())
}

// stripClearsign returns the signed text of an OpenPGP clear-signed
// message without checking the signature, or data itself when it is not
// armoured.
func stripClearsign(data []byte) ([]byte, error) {
	body, err := deb822.Unsign(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadArchive, err)
	}
	return body, nil
}

// parseParagraph parses the first paragraph of deb822 text into fields
// keyed by lower-case name (see deb822.Paragraph).
func parseParagraph(data []byte) (map[string]string, error) {
	fields, err := deb822.Paragraph(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadArchive, err)
	}
	return fields, nil
}
