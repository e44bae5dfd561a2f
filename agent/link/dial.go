package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
)

// Transport choices of DialOptions.
const (
	TransportAuto = "auto"
	TransportQUIC = transport.QUIC
	TransportTCP  = transport.TCP
)

// Defaults for a zero DialOptions.
const (
	DefaultQUICTimeout     = 5 * time.Second
	DefaultReprobeInterval = 10 * time.Minute
)

// ErrBadTransport means DialOptions.Transport is none of auto, quic, tcp.
var ErrBadTransport = errors.New("link: transport must be auto, quic or tcp")

// DialOptions choose how to reach the coordinator. A zero field takes its
// default.
type DialOptions struct {
	// Transport is TransportAuto (the default), TransportQUIC or
	// TransportTCP. Auto tries QUIC and falls back to TCP when QUIC
	// cannot complete a handshake.
	Transport string
	// QUICTimeout is how long auto waits for a QUIC handshake before it
	// tries TCP (default 5s).
	QUICTimeout time.Duration
	// ReprobeInterval is how long a Dialer that fell back to TCP keeps
	// using TCP before it tries QUIC again (default 10 minutes).
	ReprobeInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Dialer dials the coordinator and remembers a fallback from QUIC to TCP
// between dials. It is safe for concurrent use.
type Dialer struct {
	opts DialOptions

	mu           sync.Mutex
	lastFallback time.Time
	fallbacks    int64
	hinted       bool
}

// NewDialer returns a Dialer with opts.
func NewDialer(opts DialOptions) *Dialer {
	if opts.Transport == "" {
		opts.Transport = TransportAuto
	}
	if opts.QUICTimeout <= 0 {
		opts.QUICTimeout = DefaultQUICTimeout
	}
	if opts.ReprobeInterval <= 0 {
		opts.ReprobeInterval = DefaultReprobeInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Dialer{opts: opts}
}

// Fallbacks counts the dials that fell back from QUIC to TCP.
func (d *Dialer) Fallbacks() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fallbacks
}

// quicOutcome is what a QUIC attempt taught us.
type quicOutcome int

const (
	// quicNotTried: no attempt yet.
	quicNotTried quicOutcome = iota
	// quicUnreachable: no handshake (timeout, network error); TCP may
	// get through where UDP does not.
	quicUnreachable
	// quicRefused: the handshake reached the server and TLS refused it
	// (a pin or verification failure); TCP would meet the same server.
	quicRefused
)

// plan returns the transports still to try, in order, in mode, after a QUIC
// attempt ended with outcome, when the last fallback to TCP was at
// lastFallback (zero for never).
func plan(mode string, lastFallback, now time.Time, reprobe time.Duration, outcome quicOutcome) []string {
	switch mode {
	case TransportQUIC:
		if outcome == quicNotTried {
			return []string{transport.QUIC}
		}
		return nil
	case TransportTCP:
		return []string{transport.TCP}
	case TransportAuto:
		switch outcome {
		case quicNotTried:
			if !lastFallback.IsZero() && now.Sub(lastFallback) < reprobe {
				return []string{transport.TCP}
			}
			return []string{transport.QUIC, transport.TCP}
		case quicUnreachable:
			return []string{transport.TCP}
		}
	}
	return nil
}

// classify tells a QUIC failure that TCP might avoid from a TLS refusal.
func classify(err error) quicOutcome {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	if errors.Is(err, tlsutil.ErrFingerprintMismatch) || errors.As(err, &verr) ||
		errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return quicRefused
	}
	return quicUnreachable
}

// Dial opens a session to the coordinator by the transports DialOptions
// allow and says hello on it.
func (d *Dialer) Dial(ctx context.Context, coordinator string, tlsConf *tls.Config) (*Conn, error) {
	if _, err := ServerName(coordinator); err != nil {
		return nil, err
	}
	switch d.opts.Transport {
	case TransportAuto, TransportQUIC, TransportTCP:
	default:
		return nil, fmt.Errorf("%w, got %q", ErrBadTransport, d.opts.Transport)
	}
	d.mu.Lock()
	order := plan(d.opts.Transport, d.lastFallback, d.opts.Now(), d.opts.ReprobeInterval, quicNotTried)
	d.mu.Unlock()
	for len(order) > 0 {
		name := order[0]
		order = order[1:]
		if name == transport.TCP {
			sess, err := transport.DialTCP(ctx, coordinator, tlsConf, transport.Config{})
			if err != nil {
				return nil, fmt.Errorf("link: connect to %s over tcp: %w", coordinator, err)
			}
			return hello(ctx, sess, coordinator)
		}
		cfg := transport.Config{}
		if d.opts.Transport == TransportAuto {
			cfg.HandshakeTimeout = d.opts.QUICTimeout
		}
		sess, err := transport.DialQUIC(ctx, coordinator, tlsConf, cfg)
		if err == nil {
			d.mu.Lock()
			d.lastFallback = time.Time{}
			d.mu.Unlock()
			return hello(ctx, sess, coordinator)
		}
		err = fmt.Errorf("link: connect to %s: %w", coordinator, err)
		if ctx.Err() != nil {
			return nil, err
		}
		order = plan(d.opts.Transport, time.Time{}, d.opts.Now(), d.opts.ReprobeInterval, classify(err))
		if len(order) == 0 {
			return nil, err
		}
		d.fellBack(coordinator, err)
	}
	return nil, fmt.Errorf("%w, got %q", ErrBadTransport, d.opts.Transport)
}

// fellBack records a fallback to TCP and explains it, loudly the first
// time.
func (d *Dialer) fellBack(coordinator string, err error) {
	d.mu.Lock()
	d.lastFallback = d.opts.Now()
	d.fallbacks++
	first := !d.hinted
	d.hinted = true
	d.mu.Unlock()
	_, port, _ := net.SplitHostPort(coordinator)
	msg := fmt.Sprintf("QUIC (UDP) to %s failed: %v; using TCP. If a firewall drops UDP, allow UDP %s or run with --transport tcp", coordinator, err, port)
	if first {
		d.opts.Log.Warn(msg)
		return
	}
	d.opts.Log.Debug(msg)
}
