package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/protocol/protocoltest"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/version"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRootCmd(&out, &errb, func(k string) string { return env[k] })
	cmd.SetArgs(args)
	code = 0
	if err := cmd.Execute(); err != nil {
		errb.WriteString(err.Error())
		code = 1
	}
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "--version")
	if want := version.String(binary) + "\n"; code != 0 || out != want {
		t.Errorf("--version = %d %q, want 0 %q", code, out, want)
	}
}

func TestErrors(t *testing.T) {
	registered := t.TempDir()
	writeRegistered(t, registered)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"run without state", nil, []string{"run"}, "no state directory: pass --state DIR or set SPAREGRID_STATE"},
		{"run unregistered", nil, []string{"run", "--state", "/nonexistent/x"}, "run sparegrid-agent register first"},
		{"run unregistered from env", map[string]string{envState: "/nonexistent/y"}, []string{"run"}, "no agent registered in /nonexistent/y"},
		{"run without images", nil, []string{"run", "--state", registered}, "run sparegrid-agent testbed build --release bookworm first"},
		{"run with an unknown backend", nil, []string{"run", "--state", registered, "--backend", "qemu"}, `worker: unknown testbed backend: "qemu"`},
		{"run with an unknown backend from env", map[string]string{envBackend: "overlay,lxc"}, []string{"run", "--state", registered}, `worker: unknown testbed backend: "lxc"`},
		{"run with an unknown transport", nil, []string{"run", "--state", registered, "--transport", "sctp"}, `--transport "sctp": use auto, quic or tcp`},
		{"run with an unknown transport from env", map[string]string{envTransport: "udp"}, []string{"run", "--state", registered}, `--transport "udp": use auto, quic or tcp`},
		{"register without owner", nil, []string{"register", "--coordinator", "h:1", "--ca-sha256", "ab", "--state", "x"}, `required flag(s) "owner" not set`},
		{"build without release", nil, []string{"testbed", "build", "--state", "x"}, `required flag(s) "release" not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.env, tt.args...)
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Errorf("%v = %d, stderr %q; want failure mentioning %q", tt.args, code, stderr, tt.want)
			}
		})
	}
}

func writeRegistered(t *testing.T, dir string) {
	t.Helper()
	if _, err := state.LoadOrCreateKey(dir); err != nil {
		t.Fatal(err)
	}
	if err := state.SaveAgent(dir, state.Agent{AgentID: 3, Name: "box", Owner: "alice", Coordinator: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	caPEM, _, err := tlsutil.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := state.SaveCA(dir, caPEM); err != nil {
		t.Fatal(err)
	}
}

func TestTestbedListEmpty(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := runCLI(t, nil, "testbed", "list", "--state", dir, "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("testbed list --json = %d %q, want 0 []", code, out)
	}
}

// gridHandler is a coordinator that registers one agent.
type gridHandler struct {
	protocol.Handler
	state string
}

func (h *gridHandler) Hello(ctx context.Context, req protocol.Hello) (protocol.HelloReply, error) {
	return protocol.HelloReply{ProtocolVersion: version.Protocol}, nil
}

func (h *gridHandler) Register(ctx context.Context, req protocol.RegisterRequest) (protocol.RegisterReply, error) {
	return protocol.RegisterReply{AgentID: 12, ClaimCode: "ABCD-EFGH", State: h.state}, nil
}

func startGrid(t *testing.T, h protocol.Handler) (addr, fingerprint string) {
	t.Helper()
	g := protocoltest.Serve(t, h, protocoltest.Options{QUIC: true})
	return g.Addr, g.Fingerprint
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name       string
		state      string
		json       bool
		wantStdout string
		wantStderr []string
	}{
		{"pending", "pending", false, "12\n", []string{"claim code: ABCD-EFGH", "sparegrid agents claim ABCD-EFGH", "sparegrid agents approve 12"}},
		{"demo", "approved", false, "12\n", []string{"claim code: ABCD-EFGH", "approved already"}},
		{"json", "pending", true, "", []string{"claim code: ABCD-EFGH"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, fp := startGrid(t, &gridHandler{state: tt.state})
			dir := filepath.Join(t.TempDir(), "state")
			args := []string{"register", "--coordinator", addr, "--ca-sha256", fp, "--owner", "alice", "--name", "box", "--state", dir}
			if tt.json {
				args = append(args, "--json")
			}
			code, out, stderr := runCLI(t, nil, args...)
			if code != 0 {
				t.Fatalf("register = %d, stderr %q", code, stderr)
			}
			if tt.json {
				var got protocol.RegisterReply
				if err := json.Unmarshal([]byte(out), &got); err != nil || got.AgentID != 12 || got.ClaimCode != "ABCD-EFGH" || got.State != tt.state {
					t.Errorf("register --json stdout = %q (%v)", out, err)
				}
			} else if out != tt.wantStdout {
				t.Errorf("register stdout = %q, want %q", out, tt.wantStdout)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("register stderr = %q, want it to contain %q", stderr, w)
				}
			}
			if _, err := state.Load(dir); err != nil {
				t.Errorf("state.Load after register = %v", err)
			}
		})
	}
}

// TestNoCoordinatorImports keeps the agent independent of the
// coordinator's code.
func TestNoCoordinatorImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "list", "-e", "-deps", "-test", "github.com/sparegrid/sparegrid/agent/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/sparegrid/sparegrid/coordinator") {
			t.Errorf("agent code depends on %s", pkg)
		}
	}
}
