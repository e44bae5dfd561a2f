package srcpkg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
)

// xzCLI compresses data with the xz program and args.
func xzCLI(t *testing.T, data []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "xz", append([]string{"-c"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// sample is 200 KiB of text that compresses somewhat.
func sample() []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	words := []string{"autopkgtest", "debian", "tests", "control", "smoke", "\n", " "}
	for b.Len() < 200<<10 {
		b.WriteString(words[rng.IntN(len(words))])
	}
	return []byte(b.String())
}

// withDict rewrites the LZMA2 dictionary byte of the first block header
// of an xz stream made by xz -c (single filter, no size fields) and fixes
// the header's CRC.
func withDict(t *testing.T, data []byte, props byte) []byte {
	t.Helper()
	out := bytes.Clone(data)
	h := out[12:]
	hlen := (int(h[0]) + 1) * 4
	if h[1] != 0 || h[2] != 0x21 || h[3] != 1 {
		t.Fatalf("unexpected block header % x", h[:hlen])
	}
	h[4] = props
	binary.LittleEndian.PutUint32(h[hlen-4:], crc32.ChecksumIEEE(h[:hlen-4]))
	return out
}

func TestXZReader(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz is not installed")
	}
	data := sample()
	crc64 := xzCLI(t, data)
	twoStreams := append(append(bytes.Clone(crc64), 0, 0, 0, 0), xzCLI(t, data[:1000], "--check=sha256")...)
	corruptCheck := bytes.Clone(crc64)
	// The block's CRC64 sits before the index, which for one block is 12
	// bytes, before the 12-byte footer.
	corruptCheck[len(corruptCheck)-25] ^= 1
	tests := []struct {
		name    string
		in      []byte
		maxDict int64
		want    []byte
		wantErr error
	}{
		{name: "crc64", in: crc64, want: data},
		{name: "crc32", in: xzCLI(t, data, "--check=crc32"), want: data},
		{name: "sha256", in: xzCLI(t, data, "--check=sha256"), want: data},
		{name: "no check", in: xzCLI(t, data, "--check=none"), want: data},
		{name: "many blocks", in: xzCLI(t, data, "--block-size=16KiB", "-T2"), want: data},
		{name: "empty", in: xzCLI(t, nil), want: []byte{}},
		{name: "two streams and padding", in: twoStreams, want: append(bytes.Clone(data), data[:1000]...)},
		{name: "ulikunitz writer", in: xzBytes(t, data), want: data},
		{name: "dictionary over the limit", in: crc64, maxDict: 1 << 20, wantErr: ErrTooLarge},
		{name: "4 GiB dictionary", in: withDict(t, crc64, 40), wantErr: ErrTooLarge},
		{name: "bad dictionary byte", in: withDict(t, crc64, 41), wantErr: errXZ},
		{name: "filter chain", in: xzCLI(t, data, "--x86", "--lzma2"), wantErr: ErrUnsupported},
		{name: "corrupt check", in: corruptCheck, wantErr: errXZ},
		{name: "truncated", in: crc64[:len(crc64)-5], wantErr: errXZ},
		{name: "trailing garbage", in: append(bytes.Clone(crc64), 1, 2, 3, 4), wantErr: errXZ},
		{name: "not xz", in: []byte("hello world, this is not xz"), wantErr: errXZ},
		{name: "nothing", in: nil, wantErr: errXZ},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxDict := tt.maxDict
			if maxDict == 0 {
				maxDict = DefaultMaxDict
			}
			got, err := io.ReadAll(newXZReader(bytes.NewReader(tt.in), maxDict))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("xz read = %d bytes, %v, want error %v", len(got), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("xz read error: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("xz read = %d bytes, want %d bytes as compressed", len(got), len(tt.want))
			}
		})
	}
}
