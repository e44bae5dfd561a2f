package transport_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
)

// kind is one transport under test: every test runs over each of them.
type kind struct {
	name   string
	listen func(addr string, tlsConf *tls.Config, cfg transport.Config) (transport.Listener, error)
	dial   func(ctx context.Context, addr string, tlsConf *tls.Config, cfg transport.Config) (transport.Session, error)
	// blackhole returns an address that takes the dialer's first packet
	// or connection but never answers, and a channel closed on that
	// first contact.
	blackhole func(t *testing.T) (addr string, contact <-chan struct{})
	// checkPeerClosed checks the error of writes to a stream the peer
	// has closed while we were still writing.
	checkPeerClosed func(t *testing.T, st transport.Stream, chunk []byte)
	// checkSessionClosed checks the peer's AcceptStream error after a
	// session Close("going away").
	checkSessionClosed func(t *testing.T, err error)
}

var kinds = []kind{
	{
		name:   transport.QUIC,
		listen: transport.ListenQUIC,
		dial:   transport.DialQUIC,
		blackhole: func(t *testing.T) (string, <-chan struct{}) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatalf("ListenPacket: %v", err)
			}
			t.Cleanup(func() { pc.Close() })
			contact := make(chan struct{})
			go func() {
				pc.ReadFrom(make([]byte, 2048))
				close(contact)
			}()
			return pc.LocalAddr().String(), contact
		},
		checkPeerClosed: func(t *testing.T, st transport.Stream, chunk []byte) {
			// Writes block on flow control until the peer's
			// STOP_SENDING arrives and turns them into an error.
			var err error
			for range 1 << 16 {
				if _, err = st.Write(chunk); err != nil {
					break
				}
			}
			var streamErr *quic.StreamError
			if !errors.As(err, &streamErr) {
				t.Errorf("Write after peer Close err = %v, want a *quic.StreamError", err)
			}
		},
		checkSessionClosed: func(t *testing.T, err error) {
			var appErr *quic.ApplicationError
			if !errors.As(err, &appErr) || appErr.ErrorMessage != "going away" {
				t.Errorf("peer AcceptStream after Close err = %v, want an application error %q", err, "going away")
			}
		},
	},
	{
		name:   transport.TCP,
		listen: transport.ListenTCP,
		dial:   transport.DialTCP,
		blackhole: func(t *testing.T) (string, <-chan struct{}) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			t.Cleanup(func() { ln.Close() })
			contact := make(chan struct{})
			go func() {
				c, err := ln.Accept()
				if err == nil {
					t.Cleanup(func() { c.Close() })
				}
				close(contact)
			}()
			return ln.Addr().String(), contact
		},
		checkPeerClosed: func(t *testing.T, st transport.Stream, chunk []byte) {
			// yamux cannot reset a stream: the closing peer discards
			// what still arrives, so writes far beyond the stream
			// window complete instead of blocking.
			for i := range 64 {
				if _, err := st.Write(chunk); err != nil {
					t.Fatalf("Write %d after peer Close: %v", i, err)
				}
			}
			if n, err := st.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("Read after peer Close = %d, %v, want 0, EOF", n, err)
			}
		},
		checkSessionClosed: func(t *testing.T, err error) {
			if err == nil {
				t.Errorf("peer AcceptStream after Close succeeded, want an error")
			}
		},
	},
}

// forEachKind runs f as a subtest for every transport.
func forEachKind(t *testing.T, f func(t *testing.T, k kind)) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

type testGrid struct {
	kind          kind
	caPEM         []byte
	fingerprint   string
	otherPrint    string
	listener      transport.Listener
	listenAddress string
}

func newTestGrid(t *testing.T, k kind) *testGrid {
	t.Helper()
	caPEM, caKey, err := tlsutil.NewCA("transport test CA")
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	certPEM, keyPEM, err := tlsutil.NewServerCert(caPEM, caKey, nil)
	if err != nil {
		t.Fatalf("NewServerCert: %v", err)
	}
	serverTLS, err := tlsutil.ServerConfig(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("ServerConfig: %v", err)
	}
	fp, err := tlsutil.FingerprintPEM(caPEM)
	if err != nil {
		t.Fatalf("FingerprintPEM: %v", err)
	}
	otherCA, _, err := tlsutil.NewCA("other CA")
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	otherPrint, err := tlsutil.FingerprintPEM(otherCA)
	if err != nil {
		t.Fatalf("FingerprintPEM: %v", err)
	}
	ln, err := k.listen("127.0.0.1:0", serverTLS, transport.Config{})
	if err != nil {
		t.Fatalf("listen %s: %v", k.name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return &testGrid{
		kind:          k,
		caPEM:         caPEM,
		fingerprint:   fp,
		otherPrint:    otherPrint,
		listener:      ln,
		listenAddress: ln.Addr().String(),
	}
}

func (g *testGrid) dial(t *testing.T, fingerprint string) (transport.Session, error) {
	t.Helper()
	s, err := g.kind.dial(t.Context(), g.listenAddress, tlsutil.PinnedClientConfig(fingerprint, "127.0.0.1"), transport.Config{})
	if err == nil {
		t.Cleanup(func() { s.Close("test over") })
	}
	return s, err
}

func (g *testGrid) accept(t *testing.T) transport.Session {
	t.Helper()
	s, err := g.listener.Accept(t.Context())
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { s.Close("test over") })
	return s
}

// pair returns an agent-side and a coordinator-side session of one
// connection.
func pair(t *testing.T, k kind) (agent, coordinator transport.Session) {
	t.Helper()
	g := newTestGrid(t, k)
	agent, err := g.dial(t, g.fingerprint)
	if err != nil {
		t.Fatalf("dial %s: %v", k.name, err)
	}
	return agent, g.accept(t)
}

func port(t *testing.T, a net.Addr) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatalf("ParseAddrPort(%q): %v", a, err)
	}
	return ap.Port()
}

// echo serves every stream the session accepts by sending back what it
// reads, prefixed with "echo:", until the peer closes its side.
func echo(t *testing.T, s transport.Session) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				defer st.Close()
				if _, err := st.Write([]byte("echo:")); err != nil {
					return
				}
				if _, err := io.Copy(st, st); err != nil {
					return
				}
				st.CloseWrite()
			})
		}
	})
}

// roundTrip writes msg on a new stream and ends its write side while it
// reads the reply up to EOF.
func roundTrip(ctx context.Context, s transport.Session, msg []byte) ([]byte, error) {
	st, err := s.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	writeErr := make(chan error, 1)
	go func() {
		if _, err := st.Write(msg); err != nil {
			writeErr <- err
			return
		}
		writeErr <- st.CloseWrite()
	}()
	reply, readErr := io.ReadAll(st)
	if err := <-writeErr; err != nil {
		return nil, err
	}
	return reply, readErr
}

func TestEcho(t *testing.T) {
	tests := []struct {
		name string
		// opener opens the stream and server echoes on it.
		opener func(agent, coordinator transport.Session) (opener, server transport.Session)
	}{
		{name: "agent opens", opener: func(a, c transport.Session) (transport.Session, transport.Session) { return a, c }},
		{name: "coordinator opens", opener: func(a, c transport.Session) (transport.Session, transport.Session) { return c, a }},
	}
	forEachKind(t, func(t *testing.T, k kind) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				opener, server := tt.opener(pair(t, k))
				echo(t, server)
				msg := bytes.Repeat([]byte("sparegrid "), 100_000)
				got, err := roundTrip(t.Context(), opener, msg)
				if err != nil {
					t.Fatalf("roundTrip: %v", err)
				}
				want := append([]byte("echo:"), msg...)
				if !bytes.Equal(got, want) {
					t.Errorf("roundTrip returned %d bytes, want %d bytes of echo", len(got), len(want))
				}
			})
		}
	})
}

func TestCloseWriteGivesPeerEOF(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		agent, coordinator := pair(t, k)
		st, err := agent.OpenStream(t.Context())
		if err != nil {
			t.Fatalf("OpenStream: %v", err)
		}
		defer st.Close()
		if _, err := st.Write([]byte("request")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := st.CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		peer, err := coordinator.AcceptStream(t.Context())
		if err != nil {
			t.Fatalf("AcceptStream: %v", err)
		}
		defer peer.Close()
		got, err := io.ReadAll(peer)
		if err != nil || string(got) != "request" {
			t.Errorf("ReadAll(peer) = %q, %v, want %q, nil", got, err, "request")
		}
		if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("Read after EOF = %d, %v, want 0, EOF", n, err)
		}
		if _, err := peer.Write([]byte("reply")); err != nil {
			t.Fatalf("peer Write after reading EOF: %v", err)
		}
		if err := peer.CloseWrite(); err != nil {
			t.Fatalf("peer CloseWrite: %v", err)
		}
		got, err = io.ReadAll(st)
		if err != nil || string(got) != "reply" {
			t.Errorf("ReadAll(stream) = %q, %v, want %q, nil", got, err, "reply")
		}
	})
}

func TestConcurrentStreams(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		agent, coordinator := pair(t, k)
		echo(t, coordinator)
		const streams = 50
		errs := make(chan error, streams)
		var wg sync.WaitGroup
		for i := range streams {
			wg.Go(func() {
				msg := bytes.Repeat(fmt.Appendf(nil, "stream %d;", i), 1000+i)
				got, err := roundTrip(t.Context(), agent, msg)
				if err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
				if want := append([]byte("echo:"), msg...); !bytes.Equal(got, want) {
					errs <- fmt.Errorf("stream %d: got %d bytes, want %d bytes of its own echo", i, len(got), len(want))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestStreamCloseWithWritingPeer(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		agent, coordinator := pair(t, k)
		st, err := agent.OpenStream(t.Context())
		if err != nil {
			t.Fatalf("OpenStream: %v", err)
		}
		defer st.Close()
		chunk := make([]byte, 32<<10)
		if _, err := st.Write(chunk); err != nil {
			t.Fatalf("Write: %v", err)
		}
		peer, err := coordinator.AcceptStream(t.Context())
		if err != nil {
			t.Fatalf("AcceptStream: %v", err)
		}
		if err := peer.Close(); err != nil {
			t.Fatalf("peer Close: %v", err)
		}
		k.checkPeerClosed(t, st, chunk)
	})
}

func TestSetDeadline(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		agent, _ := pair(t, k)
		st, err := agent.OpenStream(t.Context())
		if err != nil {
			t.Fatalf("OpenStream: %v", err)
		}
		defer st.Close()
		if err := st.SetDeadline(time.Unix(1, 0)); err != nil {
			t.Fatalf("SetDeadline: %v", err)
		}
		_, err = st.Read(make([]byte, 1))
		var netErr net.Error
		if !errors.As(err, &netErr) || !netErr.Timeout() {
			t.Errorf("Read past deadline err = %v, want a timeout", err)
		}
	})
}

func TestSessionCloseSeenByPeer(t *testing.T) {
	tests := []struct {
		name   string
		closer func(agent, coordinator transport.Session) (closer, peer transport.Session)
	}{
		{name: "agent closes", closer: func(a, c transport.Session) (transport.Session, transport.Session) { return a, c }},
		{name: "coordinator closes", closer: func(a, c transport.Session) (transport.Session, transport.Session) { return c, a }},
	}
	forEachKind(t, func(t *testing.T, k kind) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				closer, peer := tt.closer(pair(t, k))
				if err := closer.Close("going away"); err != nil {
					t.Fatalf("Close: %v", err)
				}
				select {
				case <-peer.Done():
				case <-t.Context().Done():
					t.Fatal("peer Done not closed")
				}
				<-closer.Done()
				_, err := peer.AcceptStream(t.Context())
				k.checkSessionClosed(t, err)
				if _, err := closer.OpenStream(t.Context()); err == nil {
					t.Errorf("OpenStream on a closed session succeeded, want an error")
				}
			})
		}
	})
}

func TestDialWrongPin(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		g := newTestGrid(t, k)
		if s, err := g.dial(t, g.otherPrint); !errors.Is(err, tlsutil.ErrFingerprintMismatch) {
			t.Fatalf("dial %s with a wrong pin = %v, %v, want %v", k.name, s, err, tlsutil.ErrFingerprintMismatch)
		}
		good, err := g.dial(t, g.fingerprint)
		if err != nil {
			t.Fatalf("dial %s with the right pin: %v", k.name, err)
		}
		// The refused handshake must not have queued a session: the
		// first one the listener hands out is the good one.
		accepted := g.accept(t)
		if got, want := port(t, accepted.RemoteAddr()), port(t, good.LocalAddr()); got != want {
			t.Errorf("first accepted session comes from port %d, want the good dial from port %d", got, want)
		}
	})
}

func TestTLSConnectionState(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		g := newTestGrid(t, k)
		agent, err := g.dial(t, g.fingerprint)
		if err != nil {
			t.Fatalf("dial %s: %v", k.name, err)
		}
		if got := agent.Transport(); got != k.name {
			t.Errorf("Transport() = %q, want %q", got, k.name)
		}
		cs, ok := transport.TLSConnectionState(agent)
		if !ok {
			t.Fatal("transport.TLSConnectionState(agent) reports none")
		}
		if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != protocol.ALPN {
			t.Errorf("TLS version %x, ALPN %q, want %x, %q", cs.Version, cs.NegotiatedProtocol, tls.VersionTLS13, protocol.ALPN)
		}
		caPEM, err := tlsutil.CAFromConnectionState(cs, g.fingerprint)
		if err != nil {
			t.Fatalf("CAFromConnectionState: %v", err)
		}
		if !bytes.Equal(caPEM, g.caPEM) {
			t.Errorf("CAFromConnectionState = %q, want the grid CA %q", caPEM, g.caPEM)
		}

		// A session dialled with the saved CA instead of the pin works too.
		conf, err := tlsutil.ClientConfigWithCA(caPEM, "127.0.0.1")
		if err != nil {
			t.Fatalf("ClientConfigWithCA: %v", err)
		}
		s, err := k.dial(t.Context(), g.listenAddress, conf, transport.Config{})
		if err != nil {
			t.Fatalf("dial %s with the saved CA: %v", k.name, err)
		}
		s.Close("done")
	})
}

func TestDialContextCancel(t *testing.T) {
	tests := []struct {
		name string
		// cancelOnContact waits until the dialer's first packet or
		// connection has arrived before cancelling, so that the
		// handshake is under way.
		cancelOnContact bool
	}{
		{name: "cancelled before dial"},
		{name: "cancelled during handshake", cancelOnContact: true},
	}
	forEachKind(t, func(t *testing.T, k kind) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				addr, contact := k.blackhole(t)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.cancelOnContact {
					go func() {
						<-contact
						cancel()
					}()
				} else {
					cancel()
				}
				g := newTestGrid(t, k)
				// The timeouts are far longer than any test run, so
				// only ctx can end this dial.
				cfg := transport.Config{HandshakeTimeout: time.Hour, IdleTimeout: time.Hour}
				s, err := k.dial(ctx, addr, tlsutil.PinnedClientConfig(g.fingerprint, "127.0.0.1"), cfg)
				if !errors.Is(err, context.Canceled) {
					t.Errorf("dial %s with cancelled ctx = %v, %v, want %v", k.name, s, err, context.Canceled)
				}
			})
		}
	})
}

func TestListenerClose(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		g := newTestGrid(t, k)
		if err := g.listener.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := g.listener.Accept(t.Context()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close err = %v, want %v", err, net.ErrClosed)
		}
	})
}

func TestTCPWriteTimeoutEndsSession(t *testing.T) {
	agent, coordinator := pair(t, kinds[1])
	st, err := agent.OpenStream(t.Context())
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	defer st.Close()
	// The coordinator never accepts the stream, so it never reads: once
	// the stream window is full the write waits, and the deadline ends it.
	if err := st.SetDeadline(time.Unix(1, 0)); err != nil {
		t.Fatalf("SetDeadline: %v", err)
	}
	_, err = st.Write(make([]byte, 4<<20))
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Errorf("Write to a peer that stops reading err = %v, want a timeout", err)
	}
	for name, s := range map[string]transport.Session{"agent": agent, "coordinator": coordinator} {
		select {
		case <-s.Done():
		case <-t.Context().Done():
			t.Fatalf("%s session not ended after a write timeout", name)
		}
	}
}
