package link

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
)

// ErrNoConnectionState means the transport did not expose the TLS
// handshake, so the pinned CA could not be saved.
var ErrNoConnectionState = errors.New("link: session exposes no TLS state")

// RegisterOptions says whom to register with and as whom.
type RegisterOptions struct {
	// Coordinator is the gateway's "host:port".
	Coordinator string
	// CASHA256 is the grid CA's fingerprint, as the coordinator's admin
	// published it.
	CASHA256 string
	// Owner is the account the agent is registered under.
	Owner string
	// Name names the machine.
	Name     string
	StateDir string
	// Now stamps the registration record; nil means time.Now.
	Now func() time.Time
}

// Register enrols a new agent. It refuses a state directory that already
// holds a registration, creates the agent's key, connects with the CA pinned
// to CASHA256 (a wrong fingerprint fails the TLS handshake, before any
// request is sent), saves that CA, registers, and saves the record.
func Register(ctx context.Context, opts RegisterOptions) (protocol.RegisterReply, error) {
	var zero protocol.RegisterReply
	fp, err := tlsutil.ParseFingerprint(opts.CASHA256)
	if err != nil {
		return zero, err
	}
	serverName, err := ServerName(opts.Coordinator)
	if err != nil {
		return zero, err
	}
	if opts.Owner == "" || opts.Name == "" {
		return zero, errors.New("link: register needs an owner and a name")
	}
	if err := state.Init(opts.StateDir); err != nil {
		return zero, err
	}
	if ok, err := state.Registered(opts.StateDir); err != nil {
		return zero, err
	} else if ok {
		return zero, fmt.Errorf("%w in %s: use another state directory, or remove it to register afresh", state.ErrRegistered, opts.StateDir)
	}
	key, err := state.LoadOrCreateKey(opts.StateDir)
	if err != nil {
		return zero, err
	}

	conn, err := Dial(ctx, opts.Coordinator, tlsutil.PinnedClientConfig(fp, serverName))
	if err != nil {
		return zero, err
	}
	defer conn.Close()
	cs, ok := transport.TLSConnectionState(conn.sess)
	if !ok {
		return zero, ErrNoConnectionState
	}
	caPEM, err := tlsutil.CAFromConnectionState(cs, fp)
	if err != nil {
		return zero, err
	}
	if err := state.SaveCA(opts.StateDir, caPEM); err != nil {
		return zero, err
	}

	reply, err := conn.Register(ctx, protocol.RegisterRequest{
		Owner:     opts.Owner,
		Name:      opts.Name,
		PublicKey: []byte(key.Public().(ed25519.PublicKey)),
	})
	if err != nil {
		return zero, fmt.Errorf("link: register with %s: %w", opts.Coordinator, err)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	rec := state.Agent{
		AgentID:      reply.AgentID,
		Name:         opts.Name,
		Owner:        opts.Owner,
		Coordinator:  opts.Coordinator,
		CASHA256:     fp,
		RegisteredAt: now().UTC(),
	}
	if err := state.SaveAgent(opts.StateDir, rec); err != nil {
		return zero, err
	}
	return reply, nil
}
