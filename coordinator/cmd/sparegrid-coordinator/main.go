// Command sparegrid-coordinator runs the central coordinator of a sparegrid
// test grid: the QUIC agent gateway, the HTTP API and the job store.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/config"
	"github.com/sparegrid/sparegrid/coordinator/gateway"
	"github.com/sparegrid/sparegrid/coordinator/server"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "sparegrid-coordinator: %v\n", err)
		return 1
	}
	return 0
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "sparegrid-coordinator",
		Short:         "Coordinator of a sparegrid test grid",
		Version:       version.String("sparegrid-coordinator"),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newInit(stdout, stderr), newServe(stderr))
	return root
}

func newInit(stdout, stderr io.Writer) *cobra.Command {
	var dir string
	var names []string
	cmd := &cobra.Command{
		Use:   "init --data DIR [--name HOST]...",
		Short: "Create a coordinator data directory",
		Long: `Create a coordinator data directory: the SQLite database, a grid CA and a
server certificate (for 127.0.0.1, ::1, localhost and every --name), the key
that signs agent tokens, and an admin account.

The admin's API token is printed on stdout and written to DIR/admin.token
(mode 0600); the CA's SHA-256 fingerprint, which volunteers pass to
sparegrid-agent register --ca-sha256, goes to stderr and DIR/ca.sha256.
An existing, non-empty DIR is refused and left untouched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := server.Init(cmd.Context(), dir, names)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "created coordinator data directory %s\n", dir)
			fmt.Fprintf(stderr, "CA fingerprint (sha256): %s\n", res.CAFingerprint)
			fmt.Fprintf(stderr, "admin API token (also in %s/%s); it is shown here once:\n", dir, server.AdminTokenFile)
			fmt.Fprintln(stdout, res.AdminToken)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "data directory to create (required)")
	cmd.Flags().StringArrayVar(&names, "name", nil, "extra host name or IP address for the server certificate (repeatable)")
	cmd.MarkFlagRequired("data")
	return cmd
}

func newServe(stderr io.Writer) *cobra.Command {
	o := server.Options{}
	var debug bool
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve --data DIR [--agents ADDR] [--http ADDR]",
		Short: "Serve agents (QUIC) and people (HTTP) until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.DataDir == "" {
				return fmt.Errorf("--data is required (or set SPAREGRID_DATA)")
			}
			if configPath != "" {
				c, err := config.Load(configPath)
				if err != nil {
					return err
				}
				o.Config = c
			}
			if o.MaxAttempts < 1 {
				return fmt.Errorf("--max-attempts is %d; a job needs at least 1 attempt", o.MaxAttempts)
			}
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			o.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return server.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data", envOr("SPAREGRID_DATA", ""), "data directory made by init (env SPAREGRID_DATA)")
	f.StringVar(&o.AgentsAddr, "agents", envOr("SPAREGRID_AGENTS_ADDR", "127.0.0.1:7443"), "UDP address for the QUIC agent gateway (env SPAREGRID_AGENTS_ADDR)")
	f.StringVar(&o.HTTPAddr, "http", envOr("SPAREGRID_HTTP_ADDR", "127.0.0.1:8080"), "TCP address for the HTTP API and web page (env SPAREGRID_HTTP_ADDR)")
	f.BoolVar(&o.Demo, "demo", false, "approve new agents automatically and label them so (never on a reachable grid)")
	f.DurationVar(&o.LeaseTTL, "lease-ttl", 90*time.Second, "how long a job lease lives without a heartbeat")
	f.DurationVar(&o.TokenTTL, "token-ttl", 15*time.Minute, "lifetime of an agent token")
	f.IntVar(&o.MaxAttempts, "max-attempts", store.DefaultMaxAttempts, "attempts a job gets before infrastructure failures (tmpfail, lost agents, expired leases) end it with verdict error")
	f.DurationVar(&o.RetryElsewhere, "retry-elsewhere", gateway.DefaultRetryElsewhere, "how long a job that failed on an agent's infrastructure waits for another online agent before the same agent may take it again; negative to turn off")
	f.StringVar(&configPath, "config", envOr("SPAREGRID_CONFIG", ""), "configuration file: archives to watch, event rules (TOML; see installer/coordinator.toml.example; env SPAREGRID_CONFIG)")
	f.BoolVar(&debug, "debug", false, "log debug messages")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
