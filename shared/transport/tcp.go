package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// ErrNoALPN means a TCP peer completed TLS without agreeing on one of the
// application protocols of the configuration.
var ErrNoALPN = errors.New("transport: no common application protocol")

// connectionWriteTimeout bounds how long one frame may wait to be written
// to the TCP connection before the session is suspected dead.
const connectionWriteTimeout = 10 * time.Second

// streamCloseTimeout bounds how long a half-closed yamux stream waits for
// the peer's end before it is reset. It must exceed the longest call.
const streamCloseTimeout = 15 * time.Minute

func (c Config) yamuxConfig() *yamux.Config {
	c = c.withDefaults()
	yc := yamux.DefaultConfig()
	yc.EnableKeepAlive = c.KeepAlive > 0
	if c.KeepAlive > 0 {
		yc.KeepAliveInterval = c.KeepAlive
	}
	yc.ConnectionWriteTimeout = connectionWriteTimeout
	yc.StreamOpenTimeout = c.IdleTimeout
	yc.StreamCloseTimeout = streamCloseTimeout
	yc.LogOutput = io.Discard
	return yc
}

func tls13(conf *tls.Config) *tls.Config {
	conf = conf.Clone()
	if conf.MinVersion < tls.VersionTLS13 {
		conf.MinVersion = tls.VersionTLS13
	}
	return conf
}

// checkALPN insists on an agreed application protocol whenever conf names
// any, as QUIC does.
func checkALPN(conf *tls.Config, cs tls.ConnectionState) error {
	if len(conf.NextProtos) == 0 || slices.Contains(conf.NextProtos, cs.NegotiatedProtocol) {
		return nil
	}
	return fmt.Errorf("%w: want one of %q, got %q", ErrNoALPN, conf.NextProtos, cs.NegotiatedProtocol)
}

// ListenTCP listens for TLS 1.3 + yamux sessions on the TCP address addr,
// with the same TLS configuration as ListenQUIC. Closing the listener stops
// accepting; sessions already accepted live on until they are closed.
func ListenTCP(addr string, tlsConf *tls.Config, cfg Config) (Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen tcp %s: %w", addr, err)
	}
	l := &tcpListener{
		ln:       ln,
		tlsConf:  tls13(tlsConf),
		cfg:      cfg.withDefaults(),
		sessions: make(chan *tcpSession),
		closed:   make(chan struct{}),
	}
	l.wg.Go(l.acceptLoop)
	return l, nil
}

// DialTCP opens a TLS 1.3 + yamux session to the TCP address addr. It
// returns when the TLS handshake has completed, or with ctx's error when ctx
// ends first; the session outlives ctx.
func DialTCP(ctx context.Context, addr string, tlsConf *tls.Config, cfg Config) (Session, error) {
	cfg = cfg.withDefaults()
	tlsConf = tls13(tlsConf)
	hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	wrap := func(err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("transport: dial tcp %s: %w", addr, ctxErr)
		}
		if hctx.Err() != nil {
			return fmt.Errorf("transport: dial tcp %s: no handshake within %v: %w", addr, cfg.HandshakeTimeout, err)
		}
		return fmt.Errorf("transport: dial tcp %s: %w", addr, err)
	}
	var d net.Dialer
	raw, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return nil, wrap(err)
	}
	tc := tls.Client(raw, tlsConf)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, wrap(err)
	}
	if err := checkALPN(tlsConf, tc.ConnectionState()); err != nil {
		raw.Close()
		return nil, wrap(err)
	}
	ys, err := yamux.Client(&tlsConn{Conn: tc, raw: raw}, cfg.yamuxConfig())
	if err != nil {
		raw.Close()
		return nil, wrap(err)
	}
	return newTCPSession(ys, tc, cfg), nil
}

// tlsConn closes the TCP connection without a TLS close_notify, which could
// block behind a stalled write.
type tlsConn struct {
	*tls.Conn
	raw net.Conn
}

func (c *tlsConn) Close() error { return c.raw.Close() }

type tcpListener struct {
	ln       net.Listener
	tlsConf  *tls.Config
	cfg      Config
	sessions chan *tcpSession
	closed   chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

var _ Listener = (*tcpListener)(nil)

func (l *tcpListener) acceptLoop() {
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		l.wg.Go(func() { l.handshake(raw) })
	}
}

// handshake completes TLS on raw and offers the session to Accept; a
// failed handshake is dropped.
func (l *tcpListener) handshake(raw net.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.HandshakeTimeout)
	defer cancel()
	go func() {
		select {
		case <-l.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	tc := tls.Server(raw, l.tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return
	}
	if checkALPN(l.tlsConf, tc.ConnectionState()) != nil {
		raw.Close()
		return
	}
	ys, err := yamux.Server(&tlsConn{Conn: tc, raw: raw}, l.cfg.yamuxConfig())
	if err != nil {
		raw.Close()
		return
	}
	s := newTCPSession(ys, tc, l.cfg)
	select {
	case l.sessions <- s:
	case <-l.closed:
		s.Close("listener closed")
	}
}

// Accept waits for the next session whose handshake has completed. After
// Close it returns an error wrapping net.ErrClosed.
func (l *tcpListener) Accept(ctx context.Context) (Session, error) {
	select {
	case s := <-l.sessions:
		return s, nil
	case <-l.closed:
		return nil, fmt.Errorf("transport: accept tcp: %w", net.ErrClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: accept tcp: %w", ctx.Err())
	}
}

func (l *tcpListener) Addr() net.Addr { return l.ln.Addr() }

func (l *tcpListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		err = l.ln.Close()
		l.wg.Wait()
	})
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("transport: close tcp listener: %w", err)
	}
	return nil
}

// tcpSession is a Session over one yamux session on a TLS connection. A
// stream opened here is seen by the peer's AcceptStream at once.
type tcpSession struct {
	ys  *yamux.Session
	tc  *tls.Conn
	cfg Config
}

var _ Session = (*tcpSession)(nil)

func newTCPSession(ys *yamux.Session, tc *tls.Conn, cfg Config) *tcpSession {
	return &tcpSession{ys: ys, tc: tc, cfg: cfg}
}

// OpenStream opens a stream; yamux takes no context, so an open that
// outlives ctx is abandoned and its stream closed when it arrives.
func (s *tcpSession) OpenStream(ctx context.Context) (Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("transport: open tcp stream: %w", err)
	}
	type result struct {
		st  *yamux.Stream
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := s.ys.OpenStream()
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if isTimeout(r.err) {
				s.Close("open timed out")
			}
			return nil, fmt.Errorf("transport: open tcp stream: %w", r.err)
		}
		return &tcpStream{st: r.st, sess: s}, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.st != nil {
				r.st.Close()
			}
		}()
		return nil, fmt.Errorf("transport: open tcp stream: %w", ctx.Err())
	}
}

func (s *tcpSession) AcceptStream(ctx context.Context) (Stream, error) {
	st, err := s.ys.AcceptStreamWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport: accept tcp stream: %w", err)
	}
	return &tcpStream{st: st, sess: s}, nil
}

// Close ends the session. yamux carries no close reason, so the peer sees
// only that the session ended.
func (s *tcpSession) Close(reason string) error {
	if err := s.ys.Close(); err != nil {
		return fmt.Errorf("transport: close tcp session: %w", err)
	}
	return nil
}

func (s *tcpSession) Done() <-chan struct{} { return s.ys.CloseChan() }

func (s *tcpSession) LocalAddr() net.Addr  { return s.tc.LocalAddr() }
func (s *tcpSession) RemoteAddr() net.Addr { return s.tc.RemoteAddr() }
func (s *tcpSession) Transport() string    { return TCP }

// ConnectionState reports the session's completed TLS handshake.
func (s *tcpSession) ConnectionState() tls.ConnectionState { return s.tc.ConnectionState() }

// tcpStream is a yamux stream. yamux has no way to reset a stream, so Close
// sends FIN and then reads and discards whatever the peer still sends, so
// that a peer still writing is not blocked (it is not told either).
type tcpStream struct {
	st     *yamux.Stream
	sess   *tcpSession
	closed atomic.Bool
}

var _ Stream = (*tcpStream)(nil)

func (s *tcpStream) Read(p []byte) (int, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("transport: read tcp stream: %w", net.ErrClosed)
	}
	return s.st.Read(p)
}

// Write writes p. A write that times out ends the whole session: the
// connection underneath may be stuck, and yamux would not notice.
func (s *tcpStream) Write(p []byte) (int, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("transport: write tcp stream: %w", net.ErrClosed)
	}
	n, err := s.st.Write(p)
	if err != nil && isTimeout(err) {
		s.sess.Close("write timed out")
	}
	return n, err
}

func isTimeout(err error) bool {
	if errors.Is(err, yamux.ErrConnectionWriteTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// CloseWrite sends FIN: the peer reads the rest of the data, then io.EOF.
func (s *tcpStream) CloseWrite() error { return s.st.Close() }

func (s *tcpStream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.st.Close()
	s.st.SetReadDeadline(time.Now().Add(s.sess.cfg.IdleTimeout))
	go io.Copy(io.Discard, s.st)
	return err
}

func (s *tcpStream) SetDeadline(t time.Time) error { return s.st.SetDeadline(t) }
