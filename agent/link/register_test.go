package link

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/protocol/protocoltest"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/version"
)

// handler is a minimal coordinator behind a real QUIC listener.
type handler struct {
	protocol.Handler // unused calls panic
	helloErr         error

	mu        sync.Mutex
	registers []protocol.RegisterRequest
}

func (h *handler) Hello(ctx context.Context, req protocol.Hello) (protocol.HelloReply, error) {
	if h.helloErr != nil {
		return protocol.HelloReply{}, h.helloErr
	}
	return protocol.HelloReply{ProtocolVersion: version.Protocol, CoordinatorVersion: "test"}, nil
}

func (h *handler) Register(ctx context.Context, req protocol.RegisterRequest) (protocol.RegisterReply, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.registers = append(h.registers, req)
	return protocol.RegisterReply{AgentID: 7, ClaimCode: "ABCD-EFGH", State: "pending"}, nil
}

// seen returns the registrations received so far.
func (h *handler) seen() []protocol.RegisterRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]protocol.RegisterRequest(nil), h.registers...)
}

type grid struct {
	addr        string
	caPEM       []byte
	fingerprint string
	h           *handler
}

// startGrid serves h over QUIC on a loopback port with a fresh CA.
func startGrid(t *testing.T, h *handler) *grid {
	t.Helper()
	g := protocoltest.Serve(t, h, protocoltest.Options{QUIC: true})
	return &grid{addr: g.Addr, caPEM: g.CAPEM, fingerprint: g.Fingerprint, h: h}
}

func TestRegister(t *testing.T) {
	g := startGrid(t, &handler{})
	dir := filepath.Join(t.TempDir(), "state")
	when := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	opts := RegisterOptions{
		Coordinator: g.addr,
		CASHA256:    "SHA256:" + g.fingerprint,
		Owner:       "alice",
		Name:        "box",
		StateDir:    dir,
		Now:         func() time.Time { return when },
	}
	reply, err := Register(t.Context(), opts)
	if err != nil {
		t.Fatalf("Register = %v", err)
	}
	if want := (protocol.RegisterReply{AgentID: 7, ClaimCode: "ABCD-EFGH", State: "pending"}); reply != want {
		t.Errorf("Register = %+v, want %+v", reply, want)
	}
	st, err := state.Load(dir)
	if err != nil {
		t.Fatalf("state.Load after Register = %v", err)
	}
	want := state.Agent{AgentID: 7, Name: "box", Owner: "alice", Coordinator: g.addr, CASHA256: g.fingerprint, RegisteredAt: when}
	if diff := cmp.Diff(want, st.Agent); diff != "" {
		t.Errorf("saved agent mismatch (-want +got):\n%s", diff)
	}
	if !bytes.Equal(st.CAPEM, g.caPEM) {
		t.Errorf("saved CA differs from the grid's")
	}
	if got := g.h.seen()[0].PublicKey; !bytes.Equal(got, st.Key.Public().(ed25519.PublicKey)) {
		t.Errorf("registered public key differs from the saved key")
	}

	// The saved CA is enough to connect afterwards.
	conf, err := tlsutil.ClientConfigWithCA(st.CAPEM, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(t.Context(), g.addr, conf)
	if err != nil {
		t.Fatalf("Dial with the saved CA = %v", err)
	}
	c.Close()

	if _, err := Register(t.Context(), opts); !errors.Is(err, state.ErrRegistered) {
		t.Errorf("second Register = %v, want %v", err, state.ErrRegistered)
	}
	if n := len(g.h.seen()); n != 1 {
		t.Errorf("coordinator saw %d registrations, want 1", n)
	}
}

func TestRegisterWrongFingerprint(t *testing.T) {
	g := startGrid(t, &handler{})
	dir := t.TempDir()
	wrong := "00" + g.fingerprint[2:]
	if wrong == g.fingerprint {
		wrong = "11" + g.fingerprint[2:]
	}
	_, err := Register(t.Context(), RegisterOptions{Coordinator: g.addr, CASHA256: wrong, Owner: "alice", Name: "box", StateDir: dir})
	if !errors.Is(err, tlsutil.ErrFingerprintMismatch) {
		t.Fatalf("Register(wrong fingerprint) = %v, want %v", err, tlsutil.ErrFingerprintMismatch)
	}
	if n := len(g.h.seen()); n != 0 {
		t.Errorf("coordinator saw %d registrations, want none", n)
	}
	for _, name := range []string{state.AgentFile, state.CAFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Stat(%s) after failed Register = %v, want not exist", name, err)
		}
	}
}

func TestRegisterBadInput(t *testing.T) {
	tests := []struct {
		name string
		opts RegisterOptions
		want error
	}{
		{"bad fingerprint", RegisterOptions{Coordinator: "h:1", CASHA256: "xyz", Owner: "a", Name: "b"}, tlsutil.ErrBadFingerprint},
		{"no port", RegisterOptions{Coordinator: "host", CASHA256: string(bytes.Repeat([]byte("ab"), 32)), Owner: "a", Name: "b"}, ErrBadAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.StateDir = t.TempDir()
			if _, err := Register(t.Context(), tt.opts); !errors.Is(err, tt.want) {
				t.Errorf("Register(%+v) = %v, want %v", tt.opts, err, tt.want)
			}
		})
	}
}

func TestDialVersionMismatch(t *testing.T) {
	refusal := protocol.Errorf(protocol.ErrVersion, "coordinator speaks protocol 9, agent speaks 1: upgrade the agent")
	g := startGrid(t, &handler{helloErr: refusal})
	_, err := Dial(t.Context(), g.addr, tlsutil.PinnedClientConfig(g.fingerprint, "127.0.0.1"))
	if !errors.Is(err, protocol.ErrVersion) {
		t.Fatalf("Dial = %v, want %v", err, protocol.ErrVersion)
	}
	if err.Error() != refusal.Message {
		t.Errorf("Dial error = %q, want the coordinator's message %q", err, refusal.Message)
	}
}
