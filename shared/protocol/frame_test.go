package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func frame(body string) []byte {
	b := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(b, uint32(len(body)))
	copy(b[4:], body)
	return b
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := Hello{ProtocolVersion: 1, AgentVersion: "v1.2.3"}
	if err := WriteFrame(&buf, in); err != nil {
		t.Fatalf("WriteFrame: %v", err)
	}
	var out Hello
	if err := ReadFrame(&buf, &out); err != nil {
		t.Fatalf("ReadFrame: %v", err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestReadFrameErrors(t *testing.T) {
	huge := make([]byte, 4)
	binary.BigEndian.PutUint32(huge, MaxFrame+1)
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty stream", nil, io.EOF},
		{"short header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"zero length", frame(""), ErrFrameEmpty},
		{"over cap", huge, ErrFrameTooLarge},
		{"truncated body", frame(`{"a":1}`)[:6], io.ErrUnexpectedEOF},
		{"not json", frame("hello"), ErrFrameJSON},
		{"trailing data", frame(`{} {}`), ErrFrameJSON},
		{"wrong type", frame(`{"protocol_version":"one"}`), ErrFrameJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Hello
			err := ReadFrame(bytes.NewReader(tt.input), &h)
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadFrame(%q) = %v, want %v", tt.input, err, tt.want)
			}
		})
	}
}

func TestWriteFrameCap(t *testing.T) {
	err := WriteFrame(io.Discard, strings.Repeat("x", MaxFrame))
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("WriteFrame(oversized) = %v, want %v", err, ErrFrameTooLarge)
	}
}

func TestErrorIs(t *testing.T) {
	err := error(Errorf(ErrPending, "agent 3 waits for approval"))
	if !errors.Is(err, ErrPending) {
		t.Errorf("errors.Is(%v, ErrPending) = false, want true", err)
	}
	if errors.Is(err, ErrRejected) {
		t.Errorf("errors.Is(%v, ErrRejected) = true, want false", err)
	}
	if Permanent(errors.New("connection reset")) {
		t.Errorf("Permanent(transport error) = true, want false")
	}
	if !Permanent(err) {
		t.Errorf("Permanent(%v) = false, want true", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(frame(`{"op":"hello","body":{"protocol_version":1}}`))
	f.Add(frame(`{"op":"upload_blob","token":"x","body":{"size":-1}}`))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(frame(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req RawRequest
		if err := ReadFrame(bytes.NewReader(data), &req); err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteFrame(&buf, req); err != nil {
			t.Fatalf("WriteFrame of a decoded request: %v", err)
		}
	})
}
