package protocol_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/protocol/protocoltest"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
)

// blobHandler keeps uploaded blobs in memory and refuses tokens.
type blobHandler struct {
	protocol.Handler // unused calls panic

	mu    sync.Mutex
	blobs map[string][]byte
	// transports records the transport of every Hello.
	transports []string
}

func (h *blobHandler) Hello(ctx context.Context, req protocol.Hello) (protocol.HelloReply, error) {
	si, _ := protocol.SessionFromContext(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.transports = append(h.transports, si.Transport)
	return protocol.HelloReply{ProtocolVersion: req.ProtocolVersion, CoordinatorVersion: "test"}, nil
}

// helloTransports returns the transport of every Hello so far.
func (h *blobHandler) helloTransports() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.transports...)
}

func (h *blobHandler) Token(ctx context.Context, req protocol.TokenRequest) (protocol.TokenReply, error) {
	return protocol.TokenReply{}, protocol.Errorf(protocol.ErrUnknownAgent, "agent %d is unknown", req.AgentID)
}

func (h *blobHandler) UploadBlob(ctx context.Context, token string, hdr protocol.BlobHeader, r io.Reader) (protocol.BlobReceipt, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return protocol.BlobReceipt{}, err
	}
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	h.mu.Lock()
	defer h.mu.Unlock()
	h.blobs[digest] = b
	return protocol.BlobReceipt{SHA256: digest, Size: int64(len(b))}, nil
}

func (h *blobHandler) OpenBlob(ctx context.Context, token string, req protocol.FetchBlobRequest) (protocol.BlobHeader, io.ReadCloser, error) {
	h.mu.Lock()
	b, ok := h.blobs[req.SHA256]
	h.mu.Unlock()
	if !ok {
		return protocol.BlobHeader{}, nil, protocol.Errorf(protocol.ErrNotFound, "no blob %s", req.SHA256)
	}
	return protocol.BlobHeader{Name: "blob", Size: int64(len(b)), SHA256: req.SHA256}, io.NopCloser(bytes.NewReader(b)), nil
}

type kind struct {
	name   string
	listen func(addr string, tlsConf *tls.Config, cfg transport.Config) (transport.Listener, error)
	dial   func(ctx context.Context, addr string, tlsConf *tls.Config, cfg transport.Config) (transport.Session, error)
}

var kinds = []kind{
	{name: transport.QUIC, listen: transport.ListenQUIC, dial: transport.DialQUIC},
	{name: transport.TCP, listen: transport.ListenTCP, dial: transport.DialTCP},
}

const maxBlob = 8 << 20

// serve runs a protocol.Server for h over k on loopback and returns a
// Client connected to it.
func serve(t *testing.T, k kind, h *blobHandler) *protocol.Client {
	t.Helper()
	g := protocoltest.Serve(t, h, protocoltest.Options{QUIC: k.name == transport.QUIC, TCP: k.name == transport.TCP, MaxBlob: maxBlob})
	sess, err := k.dial(t.Context(), g.Addr, tlsutil.PinnedClientConfig(g.Fingerprint, "127.0.0.1"), transport.Config{})
	if err != nil {
		t.Fatalf("dial %s: %v", k.name, err)
	}
	t.Cleanup(func() { sess.Close("test over") })
	return protocol.NewClient(sess)
}

func TestClientServerRoundTrip(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			h := &blobHandler{blobs: map[string][]byte{}}
			c := serve(t, k, h)
			ctx := t.Context()

			reply, err := c.Hello(ctx, protocol.Hello{ProtocolVersion: 1, AgentVersion: "test"})
			if err != nil {
				t.Fatalf("Hello: %v", err)
			}
			if want := (protocol.HelloReply{ProtocolVersion: 1, CoordinatorVersion: "test"}); reply != want {
				t.Errorf("Hello = %+v, want %+v", reply, want)
			}
			if diff := cmp.Diff([]string{k.name}, h.helloTransports()); diff != "" {
				t.Errorf("server saw Hello on transports (-want +got):\n%s", diff)
			}

			blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<18)
			sum := sha256.Sum256(blob)
			digest := hex.EncodeToString(sum[:])
			receipt, err := c.UploadBlob(ctx, "tok", protocol.BlobHeader{Name: "log", Size: int64(len(blob)), SHA256: digest}, bytes.NewReader(blob))
			if err != nil {
				t.Fatalf("UploadBlob: %v", err)
			}
			if want := (protocol.BlobReceipt{SHA256: digest, Size: int64(len(blob))}); receipt != want {
				t.Errorf("UploadBlob = %+v, want %+v", receipt, want)
			}

			var got bytes.Buffer
			hdr, err := c.FetchBlob(ctx, "tok", protocol.FetchBlobRequest{SHA256: digest}, &got)
			if err != nil {
				t.Fatalf("FetchBlob: %v", err)
			}
			if hdr.Size != int64(len(blob)) || !bytes.Equal(got.Bytes(), blob) {
				t.Errorf("FetchBlob = %+v with %d bytes, want the %d uploaded bytes", hdr, got.Len(), len(blob))
			}

			if _, err := c.Token(ctx, protocol.TokenRequest{AgentID: 9}); !errors.Is(err, protocol.ErrUnknownAgent) {
				t.Errorf("Token = %v, want %v", err, protocol.ErrUnknownAgent)
			}
			if _, err := c.FetchBlob(ctx, "tok", protocol.FetchBlobRequest{SHA256: "00"}, io.Discard); !errors.Is(err, protocol.ErrNotFound) {
				t.Errorf("FetchBlob(missing) = %v, want %v", err, protocol.ErrNotFound)
			}

			// A refused upload: the server answers without reading the
			// bytes, and the client gets the refusal, not a write error.
			big := make([]byte, maxBlob+1)
			_, err = c.UploadBlob(ctx, "tok", protocol.BlobHeader{Name: "big", Size: int64(len(big))}, bytes.NewReader(big))
			if !errors.Is(err, protocol.ErrTooLarge) {
				t.Errorf("UploadBlob(too large) = %v, want %v", err, protocol.ErrTooLarge)
			}
			// The session survives all of it.
			if _, err := c.Hello(ctx, protocol.Hello{ProtocolVersion: 1}); err != nil {
				t.Errorf("Hello after the errors: %v", err)
			}
		})
	}
}
