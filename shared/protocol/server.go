package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/sparegrid/sparegrid/shared/transport"
)

// Handler is the coordinator's side of Coordinator. It differs only in how
// blobs leave the coordinator: OpenBlob returns the header first, so the
// server can announce the bytes before it streams them.
type Handler interface {
	Hello(ctx context.Context, req Hello) (HelloReply, error)
	Register(ctx context.Context, req RegisterRequest) (RegisterReply, error)
	Challenge(ctx context.Context, req ChallengeRequest) (ChallengeReply, error)
	Token(ctx context.Context, req TokenRequest) (TokenReply, error)
	Lease(ctx context.Context, token string, req LeaseRequest) (LeaseReply, error)
	Heartbeat(ctx context.Context, token string, req HeartbeatRequest) (HeartbeatReply, error)
	// UploadBlob reads exactly hdr.Size bytes from r (the server has
	// already checked hdr.Size against its cap).
	UploadBlob(ctx context.Context, token string, hdr BlobHeader, r io.Reader) (BlobReceipt, error)
	OpenBlob(ctx context.Context, token string, req FetchBlobRequest) (BlobHeader, io.ReadCloser, error)
	Result(ctx context.Context, token string, req ResultRequest) (ResultReply, error)
}

// SessionInfo describes the session a call arrived on.
type SessionInfo struct {
	Transport  string
	RemoteAddr net.Addr
}

type sessionKey struct{}

// SessionFromContext returns the SessionInfo of the call's session.
func SessionFromContext(ctx context.Context) (SessionInfo, bool) {
	si, ok := ctx.Value(sessionKey{}).(SessionInfo)
	return si, ok
}

// Server dispatches the streams of agent sessions to a Handler.
type Server struct {
	Handler Handler
	// MaxBlob caps one uploaded blob; larger uploads are refused before
	// any byte is read.
	MaxBlob int64
	// CallTimeout bounds a call, except the long-poll wait of Lease that
	// the handler bounds itself. Zero means 10 minutes.
	CallTimeout time.Duration
	Log         *slog.Logger
}

// ServeSession serves sess until it ends or ctx is done. It refuses every
// call until a Hello has succeeded on the session.
func (s *Server) ServeSession(ctx context.Context, sess transport.Session) {
	ctx = context.WithValue(ctx, sessionKey{}, SessionInfo{Transport: sess.Transport(), RemoteAddr: sess.RemoteAddr()})
	// Calls in progress end with the session: a long-polling Lease must
	// not hand a job to an agent that is gone.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	var helloDone atomic.Bool
	for {
		st, err := sess.AcceptStream(ctx)
		if err != nil {
			return
		}
		go s.serveStream(ctx, st, &helloDone)
	}
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Server) serveStream(ctx context.Context, st transport.Stream, helloDone *atomic.Bool) {
	defer st.Close()
	timeout := s.CallTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st.SetDeadline(time.Now().Add(timeout))
	// A call whose caller gave up (it reset or closed the stream) is
	// cancelled, so that, for one, a Lease cut short by a draining agent
	// does not lease a job to nobody.
	if a, ok := st.(transport.Abandoner); ok {
		stop := context.AfterFunc(a.Context(), cancel)
		defer stop()
	}

	var req RawRequest
	if err := ReadFrame(st, &req); err != nil {
		s.reply(st, nil, Errorf(ErrBadRequest, "unreadable request: %v", err))
		return
	}
	if req.Op != OpHello && !helloDone.Load() {
		s.reply(st, nil, Errorf(ErrBadRequest, "call hello before %s", req.Op))
		return
	}
	body, bulk, err := s.dispatch(ctx, st, req, helloDone)
	if bulk != nil {
		defer bulk.Close()
	}
	if err != nil {
		s.reply(st, nil, err)
		return
	}
	if err := s.reply(st, body, nil); err != nil || bulk == nil {
		return
	}
	if _, err := io.Copy(st, bulk); err != nil {
		s.log().Warn("blob stream failed", "err", err)
		return
	}
	st.CloseWrite()
}

// decode unpacks a request body; a malformed one is a bad request.
func decode[T any](raw []byte) (T, error) {
	var v T
	if err := DecodeFrame(raw, &v); err != nil {
		return v, Errorf(ErrBadRequest, "malformed request body: %v", err)
	}
	return v, nil
}

func (s *Server) dispatch(ctx context.Context, st transport.Stream, req RawRequest, helloDone *atomic.Bool) (any, io.ReadCloser, error) {
	h := s.Handler
	switch req.Op {
	case OpHello:
		in, err := decode[Hello](req.Body)
		if err != nil {
			return nil, nil, err
		}
		out, err := h.Hello(ctx, in)
		if err == nil {
			helloDone.Store(true)
		}
		return out, nil, err
	case OpRegister:
		return call(ctx, req.Body, h.Register)
	case OpChallenge:
		return call(ctx, req.Body, h.Challenge)
	case OpToken:
		return call(ctx, req.Body, h.Token)
	case OpLease:
		return callAuth(ctx, req, h.Lease)
	case OpHeartbeat:
		return callAuth(ctx, req, h.Heartbeat)
	case OpResult:
		return callAuth(ctx, req, h.Result)
	case OpUpload:
		hdr, err := decode[BlobHeader](req.Body)
		if err != nil {
			return nil, nil, err
		}
		if hdr.Size < 0 {
			return nil, nil, Errorf(ErrBadRequest, "blob %q has negative size", hdr.Name)
		}
		if s.MaxBlob > 0 && hdr.Size > s.MaxBlob {
			return nil, nil, Errorf(ErrTooLarge, "blob %q is %d bytes; this coordinator accepts at most %d", hdr.Name, hdr.Size, s.MaxBlob)
		}
		out, err := h.UploadBlob(ctx, req.Token, hdr, io.LimitReader(st, hdr.Size))
		return out, nil, err
	case OpFetch:
		in, err := decode[FetchBlobRequest](req.Body)
		if err != nil {
			return nil, nil, err
		}
		hdr, rc, err := h.OpenBlob(ctx, req.Token, in)
		if err != nil {
			return nil, nil, err
		}
		return hdr, rc, nil
	}
	return nil, nil, Errorf(ErrBadRequest, "unknown op %q", req.Op)
}

func call[In, Out any](ctx context.Context, raw []byte, f func(context.Context, In) (Out, error)) (any, io.ReadCloser, error) {
	in, err := decode[In](raw)
	if err != nil {
		return nil, nil, err
	}
	out, err := f(ctx, in)
	return out, nil, err
}

func callAuth[In, Out any](ctx context.Context, req RawRequest, f func(context.Context, string, In) (Out, error)) (any, io.ReadCloser, error) {
	in, err := decode[In](req.Body)
	if err != nil {
		return nil, nil, err
	}
	out, err := f(ctx, req.Token, in)
	return out, nil, err
}

func (s *Server) reply(st transport.Stream, body any, err error) error {
	resp := Response{Body: body}
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			s.log().Error("agent call failed", "err", err)
			pe = Errorf(ErrInternal, "coordinator error; try again later")
		}
		resp = Response{Error: pe}
	}
	if werr := WriteFrame(st, resp); werr != nil {
		return fmt.Errorf("protocol: write response: %w", werr)
	}
	return nil
}
