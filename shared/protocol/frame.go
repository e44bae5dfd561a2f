package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxFrame is the hard cap on the JSON body of one frame. Bulk bytes never
// travel in frames: they follow a blob header on their own stream.
const MaxFrame = 1 << 20

// Frame errors.
var (
	ErrFrameTooLarge = errors.New("protocol: frame exceeds size cap")
	ErrFrameEmpty    = errors.New("protocol: empty frame")
	ErrFrameJSON     = errors.New("protocol: frame is not valid JSON")
)

// WriteFrame writes v as one frame: a 4-byte big-endian length, then JSON.
func WriteFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("protocol: encode frame: %w", err)
	}
	if len(body) > MaxFrame {
		return fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, len(body), MaxFrame)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame into v. A length over MaxFrame is refused before
// anything is allocated; trailing bytes after the JSON value are an error.
func ReadFrame(r io.Reader, v any) error {
	body, err := ReadRawFrame(r)
	if err != nil {
		return err
	}
	return DecodeFrame(body, v)
}

// ReadRawFrame reads the body of one frame without decoding it.
func ReadRawFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("protocol: truncated frame header: %w", err)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, ErrFrameEmpty
	}
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, n, MaxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("protocol: truncated frame body: %w", err)
	}
	return body, nil
}

// DecodeFrame decodes a frame body into v. Unknown fields are allowed so
// that a newer peer may add optional fields within one protocol version.
func DecodeFrame(body []byte, v any) error {
	if len(body) == 0 {
		return ErrFrameEmpty
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrFrameJSON, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after value", ErrFrameJSON)
	}
	return nil
}
