package intake

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

func capsJSON(t *testing.T, c protocol.Capabilities) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("json.Marshal(%+v) = %v", c, err)
	}
	return b
}

func TestAgentOf(t *testing.T) {
	t.Parallel()
	overlay := protocol.Capabilities{Arch: "amd64", Releases: []string{"unstable", "trixie"}, Backend: "overlay", Labels: []string{"fast", "big"}}
	overlayCaps := func(edit func(c *dep8.AgentCaps)) dep8.AgentCaps {
		c, err := dep8.BackendDefaults("overlay")
		if err != nil {
			t.Fatalf("BackendDefaults(overlay) = %v", err)
		}
		c.ID, c.Arch, c.Labels = 7, "amd64", []string{"big", "fast"}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	approved := func(caps json.RawMessage, labels ...string) store.Agent {
		return store.Agent{ID: 7, Name: "box", State: store.AgentApproved, Capabilities: caps, Labels: labels}
	}
	tests := []struct {
		name   string
		agent  store.Agent
		want   Agent
		wantOK bool
	}{
		{name: "pending", agent: store.Agent{ID: 7, State: store.AgentPending, Capabilities: capsJSON(t, overlay)}},
		{name: "rejected", agent: store.Agent{ID: 7, State: store.AgentRejected, Capabilities: capsJSON(t, overlay)}},
		{name: "no capabilities yet", agent: approved(nil)},
		{name: "capabilities not JSON", agent: approved(json.RawMessage(`{"arch":`))},
		{name: "capabilities of another shape", agent: approved(json.RawMessage(`["amd64"]`))},
		{name: "no arch", agent: approved(capsJSON(t, protocol.Capabilities{Releases: []string{"unstable"}, Backend: "overlay"}))},
		{
			name:   "backend defaults",
			agent:  approved(capsJSON(t, overlay)),
			want:   Agent{Caps: overlayCaps(nil), Releases: []string{"unstable", "trixie"}},
			wantOK: true,
		},
		{
			name:  "claimed machine isolation",
			agent: approved(capsJSON(t, protocol.Capabilities{Arch: "amd64", Releases: []string{"unstable"}, Backend: "qemu", Isolation: "machine", Reboot: true, MemoryMB: 4096})),
			want: Agent{
				Caps:     dep8.AgentCaps{ID: 7, Arch: "amd64", Backend: "qemu", Isolation: dep8.IsolationMachine, Reboot: true, MemoryMB: 4096},
				Releases: []string{"unstable"},
			},
			wantOK: true,
		},
		{
			name:  "admin labels over claimed ones",
			agent: approved(capsJSON(t, overlay), "isolation=machine", "gpu", "-big"),
			want: Agent{Caps: overlayCaps(func(c *dep8.AgentCaps) {
				c.Isolation, c.Labels = dep8.IsolationMachine, []string{"fast", "gpu"}
			}), Releases: []string{"unstable", "trixie"}},
			wantOK: true,
		},
		{
			name:  "admin labels take claims away",
			agent: approved(capsJSON(t, overlay), "internet=no", "root=no", "memory-mb=2048"),
			want: Agent{Caps: overlayCaps(func(c *dep8.AgentCaps) {
				c.Internet, c.Root, c.MemoryMB = false, false, 2048
			}), Releases: []string{"unstable", "trixie"}},
			wantOK: true,
		},
		{
			name:   "bad admin labels are ignored",
			agent:  approved(capsJSON(t, overlay), "gpu", "isolation=vm"),
			want:   Agent{Caps: overlayCaps(nil), Releases: []string{"unstable", "trixie"}},
			wantOK: true,
		},
		{
			name: "paused",
			agent: func() store.Agent {
				a := approved(capsJSON(t, overlay))
				a.Paused = "disk full"
				return a
			}(),
			want:   Agent{Caps: overlayCaps(nil), Releases: []string{"unstable", "trixie"}, Paused: "disk full"},
			wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := AgentOf(tt.agent)
			if ok != tt.wantOK {
				t.Fatalf("AgentOf(%s) ok = %v, want %v", tt.agent.Capabilities, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("AgentOf(%s) mismatch (-want +got):\n%s", tt.agent.Capabilities, diff)
			}
		})
	}
}

func TestWithAdminLabels(t *testing.T) {
	t.Parallel()
	claimed := dep8.AgentCaps{ID: 1, Arch: "amd64", Backend: "unshare", Isolation: dep8.IsolationNone, Labels: []string{"big", "fast"}}
	tests := []struct {
		name   string
		labels []string
		want   dep8.AgentCaps
	}{
		{name: "none", want: claimed},
		{
			name:   "applied",
			labels: []string{"isolation=container", "reboot=yes", "gpu", "-fast"},
			want:   dep8.AgentCaps{ID: 1, Arch: "amd64", Backend: "unshare", Isolation: dep8.IsolationContainer, Reboot: true, Labels: []string{"big", "gpu"}},
		},
		{name: "one bad label keeps the claim", labels: []string{"gpu", "reboot=maybe"}, want: claimed},
		{name: "bad label name keeps the claim", labels: []string{"GPU"}, want: claimed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, WithAdminLabels(claimed, tt.labels)); diff != "" {
				t.Errorf("WithAdminLabels(%v) mismatch (-want +got):\n%s", tt.labels, diff)
			}
		})
	}
}

func TestStoreAgents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := sqlite.NewTemp(t)
	owner, err := s.CreateAccount(ctx, store.Account{Name: "volunteer", Role: store.RoleVolunteer, CreatedAt: epoch()})
	if err != nil {
		t.Fatalf("CreateAccount = %v", err)
	}
	create := func(name string, state store.AgentState, caps json.RawMessage, labels ...string) store.Agent {
		t.Helper()
		a, err := s.CreateAgent(ctx, store.Agent{
			Name: name, OwnerID: owner.ID, PublicKey: []byte("key-" + name), ClaimCode: "code-" + name,
			State: state, AutoApproved: state == store.AgentApproved, Capabilities: caps, Labels: labels, CreatedAt: epoch(),
		})
		if err != nil {
			t.Fatalf("CreateAgent(%s) = %v", name, err)
		}
		return a
	}
	overlay := capsJSON(t, protocol.Capabilities{Arch: "amd64", Releases: []string{"unstable"}, Backend: "overlay", Labels: []string{"big"}})
	create("pending", store.AgentPending, overlay)
	create("silent", store.AgentApproved, nil)
	labelled := create("labelled", store.AgentApproved, overlay, "isolation=machine", "gpu", "-big")
	plain := create("plain", store.AgentApproved, overlay)
	if err := s.PauseAgent(ctx, plain.ID, "disk full", epoch()); err != nil {
		t.Fatalf("PauseAgent = %v", err)
	}

	got, err := StoreAgents(s)(ctx)
	if err != nil {
		t.Fatalf("StoreAgents = %v", err)
	}
	defaults, err := dep8.BackendDefaults("overlay")
	if err != nil {
		t.Fatalf("BackendDefaults(overlay) = %v", err)
	}
	defaults.Arch = "amd64"
	machine := defaults
	machine.ID, machine.Isolation, machine.Labels = labelled.ID, dep8.IsolationMachine, []string{"gpu"}
	claimed := defaults
	claimed.ID, claimed.Labels = plain.ID, []string{"big"}
	want := []Agent{
		{Caps: machine, Releases: []string{"unstable"}},
		{Caps: claimed, Releases: []string{"unstable"}, Paused: "disk full"},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("StoreAgents mismatch (-want +got):\n%s", diff)
	}

	empty, err := StoreAgents(sqlite.NewTemp(t))(ctx)
	if err != nil || len(empty) != 0 {
		t.Errorf("StoreAgents(empty store) = %v, %v; want none", empty, err)
	}
}
