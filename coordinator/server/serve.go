package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/api"
	"github.com/sparegrid/sparegrid/coordinator/auth"
	"github.com/sparegrid/sparegrid/coordinator/blobs"
	"github.com/sparegrid/sparegrid/coordinator/gateway"
	"github.com/sparegrid/sparegrid/coordinator/queue"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
)

// Options configure a running coordinator.
type Options struct {
	DataDir string
	// AgentsAddr is the UDP address of the QUIC agent gateway.
	AgentsAddr string
	// HTTPAddr is the TCP address of the API and web page.
	HTTPAddr string
	// Demo approves new agents automatically and labels them so.
	Demo bool
	// LeaseTTL is the lease lifetime without heartbeats.
	LeaseTTL time.Duration
	// TokenTTL is the lifetime of an agent token.
	TokenTTL time.Duration
	Log      *slog.Logger
	// Ready, when set, receives the bound addresses once both listeners
	// are up.
	Ready func(agents, http net.Addr)
}

// Issuer and audience of agent tokens.
const (
	tokenIssuer   = "sparegrid-coordinator"
	tokenAudience = "sparegrid-agent-gateway"
)

// Run serves until ctx is done, then shuts down cleanly.
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = 15 * time.Minute
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, DBFile)); err != nil {
		return fmt.Errorf("server: %s is not a coordinator data directory (run sparegrid-coordinator init --data %s): %w", o.DataDir, o.DataDir, err)
	}
	cert, err := os.ReadFile(filepath.Join(o.DataDir, ServerCertFile))
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	key, err := os.ReadFile(filepath.Join(o.DataDir, ServerKeyFile))
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	tlsConf, err := tlsutil.ServerConfig(cert, key)
	if err != nil {
		return err
	}
	jwtPEM, err := os.ReadFile(filepath.Join(o.DataDir, JWTKeyFile))
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	jwtKey, err := auth.ParseSigningKey(jwtPEM)
	if err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, filepath.Join(o.DataDir, DBFile))
	if err != nil {
		return err
	}
	defer db.Close()
	bs, err := blobs.Open(filepath.Join(o.DataDir, BlobDir))
	if err != nil {
		return err
	}
	jobs := queue.NewNotifier()

	gw := gateway.New(gateway.Config{
		Store:      db,
		Blobs:      bs,
		Issuer:     auth.NewIssuer(jwtKey, tokenIssuer, tokenAudience, o.TokenTTL, time.Now),
		Challenges: auth.NewChallenges(time.Minute, time.Now),
		Jobs:       jobs,
		LeaseTTL:   o.LeaseTTL,
		Demo:       o.Demo,
		Log:        o.Log.With("component", "gateway"),
	})
	ql, err := transport.ListenQUIC(o.AgentsAddr, tlsConf, transport.Config{})
	if err != nil {
		return fmt.Errorf("server: agent gateway on %s: %w", o.AgentsAddr, err)
	}
	defer ql.Close()

	hl, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return fmt.Errorf("server: HTTP on %s: %w", o.HTTPAddr, err)
	}
	hs := &http.Server{
		Handler: api.New(api.Config{
			Store: db, Blobs: bs, Jobs: jobs, Log: o.Log.With("component", "api"),
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if o.Demo {
		o.Log.Warn("demo mode: new agents are approved automatically; never expose this coordinator")
	}
	o.Log.Info("coordinator serving", "agents", ql.Addr().String()+"/udp", "http", "http://"+hl.Addr().String()+"/", "data", o.DataDir)
	if o.Ready != nil {
		o.Ready(ql.Addr(), hl.Addr())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- gw.Serve(ctx, ql) }()
	go func() {
		if err := hs.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
			return
		}
		errc <- nil
	}()
	select {
	case <-ctx.Done():
	case err = <-errc:
		cancel()
	}
	shutCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	hs.Shutdown(shutCtx)
	ql.Close()
	o.Log.Info("coordinator stopped")
	return err
}
