// Command sparegrid is the command line of sparegrid for maintainers and
// admins: it submits test jobs, follows and verifies their results, reads
// the verdicts on packages, and manages accounts and agents.
//
// It speaks only the coordinator's HTTP API, through coordinator/client; it
// must not open the coordinator's database or speak the agent protocol.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sparegrid/sparegrid/coordinator/client"
	"github.com/sparegrid/sparegrid/shared/version"
)

const defaultServer = "http://127.0.0.1:8080"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{
		stdout:       stdout,
		stderr:       stderr,
		getenv:       os.Getenv,
		stderrTTY:    isTerminal(stderr),
		now:          time.Now,
		pollInterval: 2 * time.Second,
	}
	return a.run(ctx, args)
}

// app is one run of the command line: its outputs, its environment and the
// global flags.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// stderrTTY makes submit --wait redraw one progress line.
	stderrTTY    bool
	now          func() time.Time
	pollInterval time.Duration
	httpClient   *http.Client

	server    string
	token     string
	tokenFile string
}

// exitError ends the run with a status other than 1. Its message, when not
// empty, is printed like any error.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(a.stderr, "sparegrid: %s\n", msg)
	}
	return code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sparegrid",
		Short: "Ask the sparegrid test grid to test Debian packages, and read its results",
		Long: `sparegrid talks to a sparegrid coordinator's HTTP API. Maintainers submit
autopkgtest jobs, follow them and verify their signed results; admins also
create accounts, approve agents and keep the blocklist.

Reads need no token. Writes need an API token from --token, --token-file,
SPAREGRID_TOKEN_FILE or SPAREGRID_TOKEN (in that order).`,
		Version:           version.String("sparegrid"),
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("{{.Version}}\n")

	server := a.getenv("SPAREGRID_SERVER")
	if server == "" {
		server = defaultServer
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", server, "coordinator address (env SPAREGRID_SERVER)")
	pf.StringVar(&a.token, "token", "", "API token (env SPAREGRID_TOKEN)")
	pf.StringVar(&a.tokenFile, "token-file", "", "file holding the API token (env SPAREGRID_TOKEN_FILE)")
	root.MarkFlagsMutuallyExclusive("token", "token-file")

	root.AddCommand(
		a.accountsCommand(),
		a.agentsCommand(),
		a.submitCommand(),
		a.jobsCommand(),
		a.showCommand(),
		a.resultsCommand(),
		a.logCommand(),
		a.cancelCommand(),
		a.verifyCommand(),
		a.blocklistCommand(),
		a.verdictsCommand(),
		a.scheduleCommand(),
		a.eventsCommand(),
		a.gridCommand(),
		a.downtimeCommand(),
	)
	return root
}

// resolveToken returns the API token from the flags or the environment,
// or "" when none is set.
func (a *app) resolveToken() (string, error) {
	if a.token != "" {
		return a.token, nil
	}
	file := a.tokenFile
	if file == "" {
		file = a.getenv("SPAREGRID_TOKEN_FILE")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("token file %s is empty", file)
		}
		return tok, nil
	}
	return a.getenv("SPAREGRID_TOKEN"), nil
}

// client returns an API client; needToken refuses to go on without a
// token, so writes fail before they reach the network.
func (a *app) client(needToken bool) (*client.Client, error) {
	tok, err := a.resolveToken()
	if err != nil {
		return nil, err
	}
	if needToken && tok == "" {
		return nil, errors.New("this needs an API token: pass --token or --token-file, or set SPAREGRID_TOKEN")
	}
	if !strings.HasPrefix(a.server, "http://") && !strings.HasPrefix(a.server, "https://") {
		return nil, fmt.Errorf("--server %q: want an http:// or https:// address", a.server)
	}
	return client.New(a.server, tok, a.httpClient), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
