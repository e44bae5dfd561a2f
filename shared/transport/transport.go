// Package transport owns the sessions that carry the agent protocol: QUIC
// (quic-go, ALPN sparegrid/1), and TLS 1.3 + yamux over TCP as a fallback
// where UDP is blocked, both behind the same small Session and Stream interfaces so that no
// other package knows which one it is using.
//
// It must not know about protocol messages: it moves bytes on streams.
package transport

import (
	"context"
	"io"
	"net"
	"time"
)

// Names of transports, as recorded with each delivered result.
const (
	QUIC = "quic"
	TCP  = "tcp"
)

// Stream is one bidirectional byte stream inside a Session.
type Stream interface {
	io.Reader
	io.Writer
	// CloseWrite ends the write direction; the peer reads io.EOF.
	CloseWrite() error
	// Close ends both directions. Unread input is discarded; a peer still
	// writing sees its stream reset.
	Close() error
	SetDeadline(t time.Time) error
}

// Abandoner is implemented by streams that can tell when the peer has
// given up on them: Context is done once the peer closed or reset the
// stream (and once we closed our sending side). A server uses it to stop
// work nobody waits for any more. yamux streams cannot tell; the session's
// end covers them.
type Abandoner interface {
	Context() context.Context
}

// Session is one authenticated-by-TLS connection between an agent and the
// coordinator.
type Session interface {
	// OpenStream opens a new stream to the peer.
	OpenStream(ctx context.Context) (Stream, error)
	// AcceptStream waits for the peer to open a stream.
	AcceptStream(ctx context.Context) (Stream, error)
	// Close ends the session and every stream in it with a reason the
	// peer may log.
	Close(reason string) error
	// Done is closed when the session has ended for any reason.
	Done() <-chan struct{}
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	// Transport names the transport: QUIC or TCP.
	Transport() string
}

// Listener accepts sessions.
type Listener interface {
	Accept(ctx context.Context) (Session, error)
	Addr() net.Addr
	Close() error
}
