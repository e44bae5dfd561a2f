package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// Config tunes a transport. A zero field takes its default.
type Config struct {
	// HandshakeTimeout bounds the TLS handshake (default 10s).
	HandshakeTimeout time.Duration
	// IdleTimeout ends a session after this long without hearing from the
	// peer (default 60s).
	IdleTimeout time.Duration
	// KeepAlive is how often an otherwise idle session is pinged (default
	// 15s); a negative value sends no pings.
	KeepAlive time.Duration
}

// Defaults for a zero Config.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultKeepAlive        = 15 * time.Second
)

func (c Config) withDefaults() Config {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	return c
}

func (c Config) quicConfig() *quic.Config {
	c = c.withDefaults()
	qc := &quic.Config{
		HandshakeIdleTimeout: c.HandshakeTimeout,
		MaxIdleTimeout:       c.IdleTimeout,
	}
	if c.KeepAlive > 0 {
		qc.KeepAlivePeriod = c.KeepAlive
	}
	return qc
}

// ListenQUIC listens for QUIC sessions on the UDP address addr. tlsConf must
// name the application protocol in NextProtos. Closing the listener stops
// accepting; sessions already accepted live on until they are closed.
func ListenQUIC(addr string, tlsConf *tls.Config, cfg Config) (Listener, error) {
	ln, err := quic.ListenAddr(addr, tlsConf, cfg.quicConfig())
	if err != nil {
		return nil, fmt.Errorf("transport: listen quic %s: %w", addr, err)
	}
	return &quicListener{ln: ln}, nil
}

// DialQUIC opens a QUIC session to the UDP address addr. It returns when the
// TLS handshake has completed, or with ctx's error when ctx ends first; the
// session outlives ctx.
func DialQUIC(ctx context.Context, addr string, tlsConf *tls.Config, cfg Config) (Session, error) {
	cfg = cfg.withDefaults()
	hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	conn, err := quic.DialAddr(hctx, addr, tlsConf, cfg.quicConfig())
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("transport: dial quic %s: %w", addr, ctxErr)
		}
		if hctx.Err() != nil {
			return nil, fmt.Errorf("transport: dial quic %s: no handshake within %v: %w", addr, cfg.HandshakeTimeout, err)
		}
		return nil, fmt.Errorf("transport: dial quic %s: %w", addr, err)
	}
	return &quicSession{conn: conn}, nil
}

type quicListener struct {
	ln *quic.Listener
}

var _ Listener = (*quicListener)(nil)

// Accept waits for the next session whose handshake has completed. After
// Close it returns an error wrapping net.ErrClosed.
func (l *quicListener) Accept(ctx context.Context) (Session, error) {
	conn, err := l.ln.Accept(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport: accept quic: %w", err)
	}
	return &quicSession{conn: conn}, nil
}

func (l *quicListener) Addr() net.Addr { return l.ln.Addr() }

func (l *quicListener) Close() error {
	if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("transport: close quic listener: %w", err)
	}
	return nil
}

// quicSession is a Session over one QUIC connection. A stream opened here is
// seen by the peer's AcceptStream only once something is written on it or
// it is closed.
type quicSession struct {
	conn *quic.Conn
}

var _ Session = (*quicSession)(nil)

func (s *quicSession) OpenStream(ctx context.Context) (Stream, error) {
	st, err := s.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport: open quic stream: %w", err)
	}
	return &quicStream{st: st}, nil
}

func (s *quicSession) AcceptStream(ctx context.Context) (Stream, error) {
	st, err := s.conn.AcceptStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport: accept quic stream: %w", err)
	}
	return &quicStream{st: st}, nil
}

func (s *quicSession) Close(reason string) error {
	if err := s.conn.CloseWithError(0, reason); err != nil {
		return fmt.Errorf("transport: close quic session: %w", err)
	}
	return nil
}

func (s *quicSession) Done() <-chan struct{} { return s.conn.Context().Done() }

func (s *quicSession) LocalAddr() net.Addr  { return s.conn.LocalAddr() }
func (s *quicSession) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }
func (s *quicSession) Transport() string    { return QUIC }

// ConnectionState reports the session's completed TLS handshake.
func (s *quicSession) ConnectionState() tls.ConnectionState {
	return s.conn.ConnectionState().TLS
}

type quicStream struct {
	st *quic.Stream
}

var _ Stream = (*quicStream)(nil)

func (s *quicStream) Read(p []byte) (int, error)  { return s.st.Read(p) }
func (s *quicStream) Write(p []byte) (int, error) { return s.st.Write(p) }

// CloseWrite sends FIN: the peer reads the rest of the data, then io.EOF.
func (s *quicStream) CloseWrite() error { return s.st.Close() }

// Close asks the peer to stop sending (STOP_SENDING) and ends our side.
func (s *quicStream) Close() error {
	s.st.CancelRead(0)
	return s.st.Close()
}

func (s *quicStream) SetDeadline(t time.Time) error { return s.st.SetDeadline(t) }

// Context implements Abandoner: it is done once the stream's sending side
// is closed, by us or by the peer asking us to stop sending (the peer
// closed or reset the stream).
func (s *quicStream) Context() context.Context { return s.st.Context() }
