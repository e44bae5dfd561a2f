// Package link owns the agent's connection to the coordinator: dialling the
// gateway and saying hello, registering a new agent under a pinned CA, and
// minting and refreshing the short-lived tokens every later call carries.
//
// It must not run jobs or decide what to do with them (package worker does),
// and it must never import anything under coordinator/: it speaks only
// shared/protocol.
package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/transport"
	"github.com/sparegrid/sparegrid/shared/version"
)

// ErrBadAddress means a coordinator address is not "host:port".
var ErrBadAddress = errors.New("link: coordinator address must be host:port")

// Conn is a session with the coordinator on which Hello has succeeded. It
// implements protocol.Coordinator and is safe for concurrent use.
type Conn struct {
	*protocol.Client
	sess transport.Session
	// Hello is the coordinator's answer to our hello.
	HelloReply protocol.HelloReply
}

// Done is closed when the session has ended.
func (c *Conn) Done() <-chan struct{} { return c.sess.Done() }

// Close ends the session.
func (c *Conn) Close() error { return c.sess.Close("agent closing") }

// Transport names the transport the session runs on.
func (c *Conn) Transport() string { return c.sess.Transport() }

// ServerName returns the host part of a "host:port" coordinator address,
// the name its certificate must carry.
func ServerName(coordinator string) (string, error) {
	host, port, err := net.SplitHostPort(coordinator)
	if err != nil || host == "" || port == "" {
		return "", fmt.Errorf("%w, got %q", ErrBadAddress, coordinator)
	}
	return host, nil
}

// Dial opens a session to the coordinator and says hello, with the default
// DialOptions. A refusal of our protocol version comes back as the
// coordinator's *protocol.Error (match it with errors.Is(err,
// protocol.ErrVersion)), whose message says which versions differ.
func Dial(ctx context.Context, coordinator string, tlsConf *tls.Config) (*Conn, error) {
	return DialWith(ctx, coordinator, tlsConf, DialOptions{})
}

// DialWith is Dial with options. It remembers nothing between calls; a
// Dialer remembers a fallback to TCP.
func DialWith(ctx context.Context, coordinator string, tlsConf *tls.Config, opts DialOptions) (*Conn, error) {
	return NewDialer(opts).Dial(ctx, coordinator, tlsConf)
}

// hello says hello on sess and returns the Conn; it closes sess on failure.
func hello(ctx context.Context, sess transport.Session, coordinator string) (*Conn, error) {
	c := &Conn{Client: protocol.NewClient(sess), sess: sess}
	reply, err := c.Client.Hello(ctx, protocol.Hello{
		ProtocolVersion: version.Protocol,
		AgentVersion:    version.Version,
	})
	if err != nil {
		sess.Close("hello failed")
		if errors.Is(err, protocol.ErrVersion) {
			return nil, err
		}
		return nil, fmt.Errorf("link: hello to %s: %w", coordinator, err)
	}
	c.HelloReply = reply
	return c, nil
}
