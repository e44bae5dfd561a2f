package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/shared/protocol/protocoltest"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
)

func TestPlan(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	const reprobe = 10 * time.Minute
	tests := []struct {
		name         string
		mode         string
		lastFallback time.Time
		outcome      quicOutcome
		want         []string
	}{
		{name: "auto fresh", mode: TransportAuto, want: []string{transport.QUIC, transport.TCP}},
		{name: "auto recent fallback", mode: TransportAuto, lastFallback: now.Add(-time.Minute), want: []string{transport.TCP}},
		{name: "auto fallback due for reprobe", mode: TransportAuto, lastFallback: now.Add(-reprobe), want: []string{transport.QUIC, transport.TCP}},
		{name: "auto quic unreachable", mode: TransportAuto, outcome: quicUnreachable, want: []string{transport.TCP}},
		{name: "auto quic refused by TLS", mode: TransportAuto, outcome: quicRefused, want: nil},
		{name: "quic", mode: TransportQUIC, want: []string{transport.QUIC}},
		{name: "quic ignores fallback", mode: TransportQUIC, lastFallback: now.Add(-time.Minute), want: []string{transport.QUIC}},
		{name: "quic unreachable", mode: TransportQUIC, outcome: quicUnreachable, want: nil},
		{name: "quic refused", mode: TransportQUIC, outcome: quicRefused, want: nil},
		{name: "tcp", mode: TransportTCP, want: []string{transport.TCP}},
		{name: "unknown mode", mode: "sctp", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan(tt.mode, tt.lastFallback, now, reprobe, tt.outcome)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan(%q, %v, %v) (-want +got):\n%s", tt.mode, tt.lastFallback, tt.outcome, diff)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want quicOutcome
	}{
		{name: "pin mismatch", err: fmt.Errorf("dial: %w", tlsutil.ErrFingerprintMismatch), want: quicRefused},
		{name: "timeout", err: context.DeadlineExceeded, want: quicUnreachable},
		{name: "other", err: errors.New("no route"), want: quicUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); got != tt.want {
				t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// syncBuffer is a log sink safe for the dialer's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// shortQUIC is the QUIC timeout of tests where UDP is down, so that they
// fall back quickly.
const shortQUIC = 300 * time.Millisecond

func TestDialTransports(t *testing.T) {
	tests := []struct {
		name      string
		quic, tcp bool
		opts      DialOptions
		// ctxTimeout, when set, bounds the dial.
		ctxTimeout time.Duration
		want       string
		wantErr    bool
		fallbacks  int64
	}{
		{name: "auto with quic up", quic: true, tcp: true, want: transport.QUIC},
		{name: "auto with udp down", tcp: true, opts: DialOptions{QUICTimeout: shortQUIC}, want: transport.TCP, fallbacks: 1},
		{name: "quic with udp down", tcp: true, opts: DialOptions{Transport: TransportQUIC}, ctxTimeout: shortQUIC, wantErr: true},
		{name: "tcp", quic: true, tcp: true, opts: DialOptions{Transport: TransportTCP}, want: transport.TCP},
		{name: "quic", quic: true, tcp: true, opts: DialOptions{Transport: TransportQUIC}, want: transport.QUIC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := protocoltest.Serve(t, &handler{}, protocoltest.Options{QUIC: tt.quic, TCP: tt.tcp})
			var logs syncBuffer
			tt.opts.Log = slog.New(slog.NewTextHandler(&logs, nil))
			d := NewDialer(tt.opts)
			ctx := t.Context()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			c, err := d.Dial(ctx, g.Addr, tlsutil.PinnedClientConfig(g.Fingerprint, "127.0.0.1"))
			if tt.wantErr {
				if err == nil {
					c.Close()
					t.Fatalf("Dial over %s = success, want an error", c.Transport())
				}
			} else {
				if err != nil {
					t.Fatalf("Dial = %v", err)
				}
				defer c.Close()
				if got := c.Transport(); got != tt.want {
					t.Errorf("Dial used %s, want %s", got, tt.want)
				}
			}
			if got := d.Fallbacks(); got != tt.fallbacks {
				t.Errorf("Fallbacks() = %d, want %d", got, tt.fallbacks)
			}
			if tt.fallbacks > 0 {
				_, port, _ := strings.Cut(g.Addr, ":")
				for _, want := range []string{"QUIC (UDP) to " + g.Addr, "allow UDP " + port, "--transport tcp"} {
					if !strings.Contains(logs.String(), want) {
						t.Errorf("log %q lacks %q", logs.String(), want)
					}
				}
			}
		})
	}
}

func TestDialAutoWrongPinDoesNotFallBack(t *testing.T) {
	g := protocoltest.Serve(t, &handler{}, protocoltest.Options{QUIC: true, TCP: true})
	d := NewDialer(DialOptions{Log: slog.New(slog.DiscardHandler)})
	wrong := "00" + g.Fingerprint[2:]
	if wrong == g.Fingerprint {
		wrong = "11" + g.Fingerprint[2:]
	}
	c, err := d.Dial(t.Context(), g.Addr, tlsutil.PinnedClientConfig(wrong, "127.0.0.1"))
	if !errors.Is(err, tlsutil.ErrFingerprintMismatch) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial with a wrong pin = %v, want %v", err, tlsutil.ErrFingerprintMismatch)
	}
	if got := d.Fallbacks(); got != 0 {
		t.Errorf("Fallbacks() = %d, want 0", got)
	}
}

func TestDialerReprobesQUIC(t *testing.T) {
	g := protocoltest.Serve(t, &handler{}, protocoltest.Options{TCP: true})
	var mu sync.Mutex
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	d := NewDialer(DialOptions{QUICTimeout: shortQUIC, ReprobeInterval: 10 * time.Minute, Now: clock, Log: slog.New(slog.DiscardHandler)})
	conf := tlsutil.PinnedClientConfig(g.Fingerprint, "127.0.0.1")
	steps := []struct {
		advance   time.Duration
		fallbacks int64
	}{
		{fallbacks: 1},
		{advance: 9 * time.Minute, fallbacks: 1},
		{advance: 2 * time.Minute, fallbacks: 2},
	}
	for i, step := range steps {
		mu.Lock()
		now = now.Add(step.advance)
		mu.Unlock()
		c, err := d.Dial(t.Context(), g.Addr, conf)
		if err != nil {
			t.Fatalf("Dial %d = %v", i, err)
		}
		if got := c.Transport(); got != transport.TCP {
			t.Errorf("Dial %d used %s, want tcp", i, got)
		}
		c.Close()
		if got := d.Fallbacks(); got != step.fallbacks {
			t.Errorf("after Dial %d (+%v) Fallbacks() = %d, want %d", i, step.advance, got, step.fallbacks)
		}
	}
}

func TestDialBadTransport(t *testing.T) {
	_, err := DialWith(t.Context(), "127.0.0.1:"+strconv.Itoa(1), nil, DialOptions{Transport: "sctp"})
	if !errors.Is(err, ErrBadTransport) {
		t.Errorf("DialWith(sctp) = %v, want %v", err, ErrBadTransport)
	}
}
