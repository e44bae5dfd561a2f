package protocol

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sparegrid/sparegrid/shared/transport"
)

// Client implements Coordinator over a transport session, one stream per
// call.
type Client struct {
	sess transport.Session
}

var _ Coordinator = (*Client)(nil)

// NewClient returns a Client that makes its calls on sess.
func NewClient(sess transport.Session) *Client { return &Client{sess: sess} }

// Session returns the session the client uses.
func (c *Client) Session() transport.Session { return c.sess }

// call runs one request/response exchange. send, when set, writes bulk
// bytes after the request frame; recv, when set, reads bulk bytes after a
// successful response.
func (c *Client) call(ctx context.Context, op Op, token string, body, reply any, send func(io.Writer) error, recv func(io.Reader) error) error {
	st, err := c.sess.OpenStream(ctx)
	if err != nil {
		return fmt.Errorf("protocol: open stream for %s: %w", op, err)
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	wrap := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("protocol: %s: %w", op, context.Cause(ctx))
		}
		return fmt.Errorf("protocol: %s: %w", op, err)
	}
	if err := WriteFrame(st, Request{Op: op, Token: token, Body: body}); err != nil {
		return wrap(err)
	}
	var resp struct {
		Error *Error          `json:"error"`
		Body  json.RawMessage `json:"body"`
	}
	if send != nil {
		if err := send(st); err != nil {
			// The coordinator may have refused the upload and stopped
			// reading: its explanation beats our write error.
			if ctx.Err() == nil && ReadFrame(st, &resp) == nil && resp.Error != nil {
				return resp.Error
			}
			return wrap(err)
		}
	}
	// The coordinator may answer, and stop reading, before our end of
	// the stream is closed; its answer says more than a close error.
	st.CloseWrite()
	if err := ReadFrame(st, &resp); err != nil {
		return wrap(err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if reply != nil {
		if err := DecodeFrame(resp.Body, reply); err != nil {
			return wrap(err)
		}
	}
	if recv != nil {
		if err := recv(st); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// Hello implements Coordinator.
func (c *Client) Hello(ctx context.Context, req Hello) (HelloReply, error) {
	var r HelloReply
	err := c.call(ctx, OpHello, "", req, &r, nil, nil)
	return r, err
}

// Register implements Coordinator.
func (c *Client) Register(ctx context.Context, req RegisterRequest) (RegisterReply, error) {
	var r RegisterReply
	err := c.call(ctx, OpRegister, "", req, &r, nil, nil)
	return r, err
}

// Challenge implements Coordinator.
func (c *Client) Challenge(ctx context.Context, req ChallengeRequest) (ChallengeReply, error) {
	var r ChallengeReply
	err := c.call(ctx, OpChallenge, "", req, &r, nil, nil)
	return r, err
}

// Token implements Coordinator.
func (c *Client) Token(ctx context.Context, req TokenRequest) (TokenReply, error) {
	var r TokenReply
	err := c.call(ctx, OpToken, "", req, &r, nil, nil)
	return r, err
}

// Lease implements Coordinator.
func (c *Client) Lease(ctx context.Context, token string, req LeaseRequest) (LeaseReply, error) {
	var r LeaseReply
	err := c.call(ctx, OpLease, token, req, &r, nil, nil)
	return r, err
}

// Heartbeat implements Coordinator.
func (c *Client) Heartbeat(ctx context.Context, token string, req HeartbeatRequest) (HeartbeatReply, error) {
	var r HeartbeatReply
	err := c.call(ctx, OpHeartbeat, token, req, &r, nil, nil)
	return r, err
}

// UploadBlob implements Coordinator. It sends exactly hdr.Size bytes of r.
func (c *Client) UploadBlob(ctx context.Context, token string, hdr BlobHeader, r io.Reader) (BlobReceipt, error) {
	var rc BlobReceipt
	send := func(w io.Writer) error {
		n, err := io.Copy(w, io.LimitReader(r, hdr.Size))
		if err != nil {
			return err
		}
		if n != hdr.Size {
			return fmt.Errorf("blob %s: source ended after %d of %d bytes", hdr.Name, n, hdr.Size)
		}
		return nil
	}
	err := c.call(ctx, OpUpload, token, hdr, &rc, send, nil)
	return rc, err
}

// FetchBlob implements Coordinator. It writes the blob to w and checks its
// size and sha256; on a mismatch w has received bad bytes and the caller
// must discard them.
func (c *Client) FetchBlob(ctx context.Context, token string, req FetchBlobRequest, w io.Writer) (BlobHeader, error) {
	var hdr BlobHeader
	recv := func(r io.Reader) error {
		if hdr.SHA256 != req.SHA256 {
			return Errorf(ErrDigestMismatch, "asked for blob %s, coordinator announced %s", req.SHA256, hdr.SHA256)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, hdr.Size))
		if err != nil {
			return err
		}
		if n != hdr.Size {
			return fmt.Errorf("blob %s: stream ended after %d of %d bytes", req.SHA256, n, hdr.Size)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != req.SHA256 {
			return Errorf(ErrDigestMismatch, "blob %s arrived with sha256 %s", req.SHA256, got)
		}
		return nil
	}
	err := c.call(ctx, OpFetch, token, req, &hdr, nil, recv)
	return hdr, err
}

// Result implements Coordinator.
func (c *Client) Result(ctx context.Context, token string, req ResultRequest) (ResultReply, error) {
	var r ResultReply
	err := c.call(ctx, OpResult, token, req, &r, nil, nil)
	return r, err
}
