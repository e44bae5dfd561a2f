package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
	"github.com/sparegrid/sparegrid/shared/version"
)

func TestRunServesQUICAndTCPOnOnePort(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	res, err := Init(t.Context(), dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			DataDir:    dir,
			AgentsAddr: "127.0.0.1:0",
			HTTPAddr:   "127.0.0.1:0",
			Log:        slog.New(slog.DiscardHandler),
			Ready:      func(agents, _ net.Addr) { ready <- agents },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var agents net.Addr
	select {
	case agents = <-ready:
	case err := <-done:
		t.Fatalf("Run ended before it was ready: %v", err)
	}
	tests := []struct {
		name string
		dial func(ctx context.Context, addr string, tlsConf *tls.Config, cfg transport.Config) (transport.Session, error)
	}{
		{name: transport.QUIC, dial: transport.DialQUIC},
		{name: transport.TCP, dial: transport.DialTCP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess, err := tt.dial(t.Context(), agents.String(), tlsutil.PinnedClientConfig(res.CAFingerprint, "127.0.0.1"), transport.Config{})
			if err != nil {
				t.Fatalf("dial %s %s: %v", tt.name, agents, err)
			}
			defer sess.Close("test over")
			_, err = protocol.NewClient(sess).Hello(t.Context(), protocol.Hello{ProtocolVersion: version.Protocol, AgentVersion: version.Version})
			if err != nil {
				t.Errorf("Hello over %s: %v", tt.name, err)
			}
		})
	}
}
