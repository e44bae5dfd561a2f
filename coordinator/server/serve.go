package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/api"
	"github.com/sparegrid/sparegrid/coordinator/auth"
	"github.com/sparegrid/sparegrid/coordinator/blobs"
	"github.com/sparegrid/sparegrid/coordinator/config"
	"github.com/sparegrid/sparegrid/coordinator/dispatch"
	"github.com/sparegrid/sparegrid/coordinator/gateway"
	"github.com/sparegrid/sparegrid/coordinator/health"
	"github.com/sparegrid/sparegrid/coordinator/intake"
	"github.com/sparegrid/sparegrid/coordinator/metrics"
	"github.com/sparegrid/sparegrid/coordinator/queue"
	"github.com/sparegrid/sparegrid/coordinator/rules"
	"github.com/sparegrid/sparegrid/coordinator/sched"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/coordinator/verdict"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
)

// Options configure a running coordinator.
type Options struct {
	DataDir string
	// AgentsAddr is the address of the agent gateway: QUIC on UDP and
	// TLS + yamux on TCP, on the same port number. With port 0, TCP takes
	// the port QUIC got.
	AgentsAddr string
	// HTTPAddr is the TCP address of the API and web page.
	HTTPAddr string
	// Demo approves new agents automatically and labels them so.
	Demo bool
	// LeaseTTL is the lease lifetime without heartbeats.
	LeaseTTL time.Duration
	// TokenTTL is the lifetime of an agent token.
	TokenTTL time.Duration
	// MaxAttempts is how many attempts a job gets before infrastructure
	// failures end it with verdict error.
	MaxAttempts int
	// RetryElsewhere is how long a job that failed on an agent's
	// infrastructure waits for another agent (see gateway.Config).
	RetryElsewhere time.Duration
	// Config is the configuration file's content (archives to watch,
	// event rules); the zero Config watches nothing.
	Config config.Config
	Log    *slog.Logger
	// Ready, when set, receives the bound addresses once the listeners
	// are up; agents is the QUIC address, whose port TCP shares.
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

	pin, err := harnessPin(o.Config.Schedule.HarnessRevision)
	if err != nil {
		return err
	}
	arch, err := newArchives(ctx, o.DataDir, o.Config.Archives, o.Log.With("component", "archive"))
	if err != nil {
		return err
	}
	tests := newArchiveTests(o.DataDir, arch, o.Log.With("component", "tests-control"))
	in := intake.New(intake.Config{Store: db, Agents: intake.StoreAgents(db), Harness: pin, ReleaseSources: arch.aptSources(),
		ArchiveTests: tests})
	// Mail is queued only when a mail server is configured.
	var mail *mailer
	onJudged := func(context.Context, string, verdict.Output) {}
	onEnded := func(store.Job) {}
	if o.Config.Mail.Enabled() {
		mail = newMailer(db, bs, o.Config.Mail.BaseURL, o.Log.With("component", "mail"))
		onJudged = mail.Judged
		onEnded = func(j store.Job) { mail.JobEnded(ctx, j) }
	}
	disp := dispatch.New(dispatch.Config{
		Store: db, Intake: in, Policy: policy(o.Config.Schedule), Snapshots: arch.snapshots,
		Architectures: arch.architectures(), SweepEvery: sweepEvery(o.Config.Schedule, len(arch.watchers) > 0),
		MaxAttempts: o.MaxAttempts, Notify: jobs.Notify, Prefetch: tests.Prefetch, OnJudged: onJudged,
		Log: o.Log.With("component", "scheduler"),
	})

	mets := metrics.New(metrics.Config{Source: db, Log: o.Log.With("component", "metrics")})
	gw := gateway.New(gateway.Config{
		Store:          db,
		Blobs:          bs,
		Issuer:         auth.NewIssuer(jwtKey, tokenIssuer, tokenAudience, o.TokenTTL, time.Now),
		Challenges:     auth.NewChallenges(time.Minute, time.Now),
		Jobs:           jobs,
		LeaseTTL:       o.LeaseTTL,
		RetryElsewhere: o.RetryElsewhere,
		Demo:           o.Demo,
		OnDone:         func(j store.Job) { disp.Done(j); onEnded(j) },
		Metrics:        mets,
		Log:            o.Log.With("component", "gateway"),
	})
	ql, tl, err := listenAgents(o.AgentsAddr, tlsConf)
	if err != nil {
		return err
	}
	defer ql.Close()
	defer tl.Close()

	var rdeps rules.ReverseDeps = api.NoReverseDeps()
	if len(arch.watchers) > 0 {
		rdeps = arch
	}
	events, err := rules.New(o.Config.Rules, rules.Options{Targets: api.AgentTargets(db), ReverseDeps: rdeps})
	if err != nil {
		return err
	}
	hl, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return fmt.Errorf("server: HTTP on %s: %w", o.HTTPAddr, err)
	}
	hs := &http.Server{
		Handler: api.New(api.Config{
			Store: db, Blobs: bs, Jobs: jobs, MaxAttempts: o.MaxAttempts, Events: events, Intake: in, Schedule: scheduleStatus(disp),
			Metrics: mets.Handler(), Log: o.Log.With("component", "api"),
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if o.Demo {
		o.Log.Warn("demo mode: new agents are approved automatically; never expose this coordinator")
	}
	o.Log.Info("coordinator serving", "agents", []string{ql.Addr().String() + "/udp", tl.Addr().String() + "/tcp"}, "http", "http://"+hl.Addr().String()+"/", "data", o.DataDir)
	if o.Ready != nil {
		o.Ready(ql.Addr(), hl.Addr())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer arch.run(ctx, disp)()
	defer tests.run(ctx)()
	defer cancel()
	if mail != nil {
		wait, err := startSender(ctx, db, o.Config.Mail, o.Log.With("component", "mail"))
		if err != nil {
			return fmt.Errorf("server: mail password: %w", err)
		}
		defer wait()
		defer cancel()
	}
	var dispDone sync.WaitGroup
	dispDone.Go(func() { disp.Run(ctx) })
	defer dispDone.Wait()
	defer cancel()
	checks := health.New(health.Config{Store: db, Checks: o.Config.Checks, MaxHold: o.Config.Hold.MaxHold,
		OnResume: jobs.Notify, Log: o.Log.With("component", "health")})
	var checksDone sync.WaitGroup
	checksDone.Go(func() {
		if err := checks.Run(ctx); err != nil && ctx.Err() == nil {
			o.Log.Error("health checks stopped", "err", err)
		}
	})
	defer checksDone.Wait()
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- gw.Serve(ctx, ql, tl) }()
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
	tl.Close()
	o.Log.Info("coordinator stopped")
	return err
}

// listenAgents listens for agents on QUIC at addr and on TCP at the same
// port number. With port 0, when the TCP port matching QUIC's is taken, it
// tries again with a new one.
func listenAgents(addr string, tlsConf *tls.Config) (transport.Listener, transport.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("server: agent gateway address %q: %w", addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = 20
	}
	for i := 1; ; i++ {
		ql, err := transport.ListenQUIC(addr, tlsConf, transport.Config{})
		if err != nil {
			return nil, nil, fmt.Errorf("server: agent gateway on %s: %w", addr, err)
		}
		tcpAddr, err := sharedPort(addr, ql.Addr())
		if err != nil {
			ql.Close()
			return nil, nil, err
		}
		tl, err := transport.ListenTCP(tcpAddr, tlsConf, transport.Config{})
		if err == nil {
			return ql, tl, nil
		}
		ql.Close()
		if i >= attempts {
			return nil, nil, fmt.Errorf("server: agent gateway on tcp %s: %w", tcpAddr, err)
		}
	}
}

// sharedPort is the TCP address for the agent gateway: addr's host with the
// port QUIC is bound to.
func sharedPort(addr string, quicAddr net.Addr) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("server: agent gateway address %q: %w", addr, err)
	}
	ap, err := netip.ParseAddrPort(quicAddr.String())
	if err != nil {
		return "", fmt.Errorf("server: agent gateway bound to %q: %w", quicAddr, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(ap.Port()))), nil
}

// harnessPin is the harness revision reused results must match: the
// environment's SPAREGRID_HARNESS_REV, else the configuration's.
func harnessPin(configured string) (intake.Pin, error) {
	if env, ok := os.LookupEnv(HarnessRevEnv); ok {
		p, err := intake.ParsePin(env)
		if err != nil {
			return nil, fmt.Errorf("server: %s: %w", HarnessRevEnv, err)
		}
		return p, nil
	}
	return intake.ParsePin(configured)
}

// HarnessRevEnv names the environment variable that pins the harness
// revision reused results must match, over the configuration file.
const HarnessRevEnv = "SPAREGRID_HARNESS_REV"

// policy is the configured selection policy.
func policy(s config.Schedule) sched.Policy {
	if len(s.Policy) > 0 {
		return sched.Exec{Argv: s.Policy, Timeout: s.PolicyTimeout}
	}
	return sched.Default{FanoutLimit: s.FanoutLimit}
}

// sweepEvery is how often the sweep runs: never without an archive to
// sweep or when the configuration turns it off.
func sweepEvery(s config.Schedule, archives bool) time.Duration {
	if !archives || !s.SweepOn() {
		return -1
	}
	return s.SweepEvery
}
