package srcpkg

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// xzReader decodes the xz container format (one or more streams, with
// stream padding) around LZMA2 data, which github.com/ulikunitz/xz/lzma
// decodes. It exists because that module's own xz reader allocates
// whatever dictionary a block header asks for, up to 4 GiB; this one
// refuses a dictionary over maxDict before the LZMA2 reader is created.
// It checks header CRCs, block checks (CRC32, CRC64, SHA-256), the index
// and the footer.
type xzReader struct {
	br      *bufio.Reader
	maxDict int64
	err     error

	inStream  bool
	started   bool // a stream has begun, so the input may end cleanly
	flags     [2]byte
	newCheck  func() hash.Hash
	checkSize int

	block      io.Reader // the current block's LZMA2 data, nil between blocks
	check      hash.Hash
	compressed countingReader
	headerLen  int64
	wantComp   int64 // -1 when the header does not say
	wantUncomp int64
	uncomp     int64

	// Totals of the current stream's blocks, to compare with its index.
	blocks, sumUnpadded, sumUncomp int64
	indexSize                      int64
}

var crc64Table = crc64.MakeTable(crc64.ECMA)

var errXZ = errors.New("xz")

func xzErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errXZ}, args...)...)
}

func newXZReader(r io.Reader, maxDict int64) *xzReader {
	return &xzReader{br: bufio.NewReader(r), maxDict: maxDict}
}

func (x *xzReader) Read(p []byte) (int, error) {
	for x.err == nil {
		if x.block == nil {
			x.err = x.nextBlock()
			continue
		}
		n, err := x.block.Read(p)
		x.uncomp += int64(n)
		if x.wantUncomp >= 0 && x.uncomp > x.wantUncomp {
			err = xzErr("block larger than its header says")
		}
		switch {
		case err == io.EOF:
			if x.err = x.endBlock(); x.err == nil {
				x.block = nil
			}
		case errors.Is(err, io.ErrUnexpectedEOF):
			x.err = xzErr("truncated")
		case err != nil:
			x.err = xzErr("%w", err)
		}
		if n > 0 {
			return n, nil
		}
		if len(p) == 0 {
			return 0, x.err
		}
	}
	return 0, x.err
}

// full reads len(p) bytes, reporting a short read as truncation.
func (x *xzReader) full(p []byte) error {
	if _, err := io.ReadFull(x.br, p); err != nil {
		return truncated(err)
	}
	return nil
}

func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return xzErr("truncated")
	}
	return err
}

// nextBlock starts the next block, reading stream headers, indexes,
// footers and padding on the way; io.EOF at the clean end of the input.
func (x *xzReader) nextBlock() error {
	for {
		if !x.inStream {
			if err := x.startStream(); err != nil {
				return err
			}
		}
		size, err := x.br.ReadByte()
		if err != nil {
			return truncated(err)
		}
		if size != 0 {
			return x.openBlock(size)
		}
		if err := x.readIndex(); err != nil {
			return err
		}
		if err := x.readFooter(); err != nil {
			return err
		}
		x.inStream = false
	}
}

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

// startStream reads stream padding and a stream header; io.EOF when the
// input ends cleanly after a stream.
func (x *xzReader) startStream() error {
	var h [12]byte
	for {
		n, err := io.ReadFull(x.br, h[:4])
		if x.started && n == 0 && err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return truncated(err)
		}
		if !x.started || !bytes.Equal(h[:4], []byte{0, 0, 0, 0}) {
			break
		}
	}
	if err := x.full(h[4:]); err != nil {
		return err
	}
	if !bytes.Equal(h[:6], xzMagic) {
		return xzErr("not xz data")
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:12]) {
		return xzErr("stream header CRC mismatch")
	}
	if h[6] != 0 || h[7]&0xf0 != 0 {
		return xzErr("reserved stream flags set")
	}
	switch h[7] {
	case 0x00:
		x.newCheck, x.checkSize = nil, 0
	case 0x01:
		x.newCheck, x.checkSize = func() hash.Hash { return crc32.NewIEEE() }, 4
	case 0x04:
		x.newCheck, x.checkSize = func() hash.Hash { return crc64.New(crc64Table) }, 8
	case 0x0a:
		x.newCheck, x.checkSize = sha256.New, 32
	default:
		return fmt.Errorf("%w: xz check type %#x", ErrUnsupported, h[7])
	}
	x.flags = [2]byte{h[6], h[7]}
	x.inStream, x.started = true, true
	x.blocks, x.sumUnpadded, x.sumUncomp = 0, 0, 0
	return nil
}

// openBlock reads the rest of a block header whose first byte is size and
// starts its LZMA2 reader.
func (x *xzReader) openBlock(size byte) error {
	h := make([]byte, (int(size)+1)*4)
	h[0] = size
	if err := x.full(h[1:]); err != nil {
		return err
	}
	end := len(h) - 4
	if crc32.ChecksumIEEE(h[:end]) != binary.LittleEndian.Uint32(h[end:]) {
		return xzErr("block header CRC mismatch")
	}
	flags := h[1]
	if flags&0x3c != 0 {
		return xzErr("reserved block flags set")
	}
	pos := 2
	x.wantComp, x.wantUncomp = -1, -1
	var ok bool
	if flags&0x40 != 0 {
		if x.wantComp, ok = xzVarint(h[:end], &pos); !ok {
			return xzErr("bad compressed size")
		}
	}
	if flags&0x80 != 0 {
		if x.wantUncomp, ok = xzVarint(h[:end], &pos); !ok {
			return xzErr("bad uncompressed size")
		}
	}
	if flags&3 != 0 {
		return fmt.Errorf("%w: xz filter chains (only plain LZMA2 is read)", ErrUnsupported)
	}
	id, ok1 := xzVarint(h[:end], &pos)
	propsLen, ok2 := xzVarint(h[:end], &pos)
	if !ok1 || !ok2 {
		return xzErr("bad filter flags")
	}
	if id != 0x21 {
		return fmt.Errorf("%w: xz filter %#x (only plain LZMA2 is read)", ErrUnsupported, id)
	}
	if propsLen != 1 || pos >= end {
		return xzErr("bad LZMA2 properties")
	}
	props := h[pos]
	pos++
	if props > 40 {
		return xzErr("bad LZMA2 dictionary size")
	}
	dict := int64(0xffffffff)
	if props < 40 {
		dict = int64(2|props&1) << (props/2 + 11)
	}
	if dict > x.maxDict {
		return fmt.Errorf("%w: xz dictionary of %d bytes, more than %d", ErrTooLarge, dict, x.maxDict)
	}
	for _, b := range h[pos:end] {
		if b != 0 {
			return xzErr("block header padding not zero")
		}
	}
	x.compressed = countingReader{r: x.br}
	lr, err := lzma.Reader2Config{DictCap: int(max(dict, lzma.MinDictCap))}.NewReader2(&x.compressed)
	if err != nil {
		return xzErr("%w", err)
	}
	x.block, x.check = lr, nil
	if x.newCheck != nil {
		x.check = x.newCheck()
		x.block = io.TeeReader(lr, x.check)
	}
	x.headerLen, x.uncomp = int64(len(h)), 0
	return nil
}

// endBlock reads the block padding and check after the LZMA2 data.
func (x *xzReader) endBlock() error {
	c := x.compressed.n
	if x.wantComp >= 0 && c != x.wantComp || x.wantUncomp >= 0 && x.uncomp != x.wantUncomp {
		return xzErr("block sizes differ from its header")
	}
	var pad [3]byte
	if err := x.full(pad[:(4-c%4)%4]); err != nil {
		return err
	}
	if pad != [3]byte{} {
		return xzErr("block padding not zero")
	}
	sum := make([]byte, x.checkSize)
	if err := x.full(sum); err != nil {
		return err
	}
	if x.check != nil {
		var want []byte
		switch h := x.check.(type) {
		case hash.Hash32:
			want = binary.LittleEndian.AppendUint32(nil, h.Sum32())
		case hash.Hash64:
			want = binary.LittleEndian.AppendUint64(nil, h.Sum64())
		default:
			want = h.Sum(nil)
		}
		if !bytes.Equal(sum, want) {
			return xzErr("block check mismatch")
		}
	}
	x.blocks++
	x.sumUnpadded += x.headerLen + c + int64(x.checkSize)
	x.sumUncomp += x.uncomp
	return nil
}

// readIndex reads an index, whose indicator byte has been read, and
// compares it with the blocks the stream held.
func (x *xzReader) readIndex() error {
	crc := crc32.NewIEEE()
	crc.Write([]byte{0})
	n := int64(1)
	varint := func() (int64, error) {
		var v uint64
		for i := range 9 {
			b, err := x.br.ReadByte()
			if err != nil {
				return 0, truncated(err)
			}
			crc.Write([]byte{b})
			n++
			v |= uint64(b&0x7f) << (7 * i)
			if b&0x80 == 0 {
				if v > 1<<62 {
					break
				}
				return int64(v), nil
			}
		}
		return 0, xzErr("bad index")
	}
	count, err := varint()
	if err != nil {
		return err
	}
	if count != x.blocks {
		return xzErr("index lists %d blocks, the stream has %d", count, x.blocks)
	}
	var unpadded, uncomp int64
	for range count {
		u, err := varint()
		if err != nil {
			return err
		}
		v, err := varint()
		if err != nil {
			return err
		}
		unpadded, uncomp = unpadded+u, uncomp+v
		if unpadded < 0 || uncomp < 0 {
			return xzErr("bad index")
		}
	}
	if unpadded != x.sumUnpadded || uncomp != x.sumUncomp {
		return xzErr("index differs from the blocks")
	}
	tail := make([]byte, (4-n%4)%4+4)
	if err := x.full(tail); err != nil {
		return err
	}
	pad := tail[:len(tail)-4]
	if !bytes.Equal(pad, make([]byte, len(pad))) {
		return xzErr("index padding not zero")
	}
	crc.Write(pad)
	if crc.Sum32() != binary.LittleEndian.Uint32(tail[len(pad):]) {
		return xzErr("index CRC mismatch")
	}
	x.indexSize = n + int64(len(tail))
	return nil
}

func (x *xzReader) readFooter() error {
	var f [12]byte
	if err := x.full(f[:]); err != nil {
		return err
	}
	if f[10] != 'Y' || f[11] != 'Z' {
		return xzErr("no stream footer")
	}
	if crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[:4]) {
		return xzErr("stream footer CRC mismatch")
	}
	if (int64(binary.LittleEndian.Uint32(f[4:8]))+1)*4 != x.indexSize {
		return xzErr("stream footer gives the wrong index size")
	}
	if f[8] != x.flags[0] || f[9] != x.flags[1] {
		return xzErr("stream footer flags differ from the header")
	}
	return nil
}

// xzVarint decodes a multibyte integer of the xz format from b at *pos.
func xzVarint(b []byte, pos *int) (int64, bool) {
	var v uint64
	for i := 0; i < 9 && *pos < len(b); i++ {
		c := b[*pos]
		*pos++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return int64(v), v <= 1<<62
		}
	}
	return 0, false
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
