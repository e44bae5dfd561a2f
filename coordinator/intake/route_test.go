package intake

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func TestUnroutable(t *testing.T) {
	t.Parallel()
	paused := func(a Agent, why string) Agent {
		a.Paused = why
		return a
	}
	reboot := dep8.Requirements{Test: "reboot", Restrictions: []string{dep8.RestrictionNeedsReboot}, NeedsReboot: true}
	machine := dep8.Requirements{Test: "machine", Restrictions: []string{dep8.RestrictionIsolationMachine}, NeedsMachine: true}
	online := dep8.Requirements{Test: "online", Restrictions: []string{dep8.RestrictionNeedsInternet}, NeedsInternet: true}
	offline := machineAgent(2, "unstable")
	offline.Caps.Internet = false

	tests := []struct {
		name   string
		agents []Agent
		needs  store.JobNeeds
		avoid  []int64
		// want is what the reason must contain; "" means routable.
		want string
	}{
		{name: "no agent", want: "no approved agent offers unstable/amd64"},
		{
			name:   "agents of other targets",
			agents: []Agent{overlayAgent(t, 1, "trixie"), func() Agent { a := overlayAgent(t, 3, "unstable"); a.Caps.Arch = "arm64"; return a }()},
			want:   "no approved agent offers unstable/amd64",
		},
		{
			name:   "all paused",
			agents: []Agent{paused(overlayAgent(t, 1, "unstable"), "disk full"), paused(machineAgent(2, "unstable"), "3 infrastructure failures")},
			want:   "every agent offering unstable/amd64 is paused (agent 1: disk full)",
		},
		{
			name:   "all avoided",
			agents: []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable"), overlayAgent(t, 3, "trixie")},
			avoid:  []int64{1, 2},
			want:   "no agent offering unstable/amd64 other than agent 1, 2, which the job must avoid",
		},
		{
			name:   "paused or avoided",
			agents: []Agent{overlayAgent(t, 1, "unstable"), paused(machineAgent(2, "unstable"), "disk full")},
			avoid:  []int64{1},
			want:   "every agent offering unstable/amd64 is paused (agent 2: disk full)",
		},
		{
			name:   "needs unmet",
			agents: []Agent{overlayAgent(t, 1, "unstable"), overlayAgent(t, 3, "unstable")},
			needs:  store.JobNeeds{Tests: []dep8.Requirements{reboot}},
			want:   "no capable agent for test 'reboot': test 'reboot' needs needs-reboot (agent 1 (overlay) cannot reboot, agent 3 (overlay) cannot reboot)",
		},
		{
			name:   "needs met only by a paused agent",
			agents: []Agent{overlayAgent(t, 1, "unstable"), paused(machineAgent(2, "unstable"), "disk full")},
			needs:  store.JobNeeds{Tests: []dep8.Requirements{reboot}},
			want:   "test 'reboot' needs needs-reboot (agent 1 (overlay) cannot reboot)",
		},
		{
			name:   "needs met only by an avoided agent",
			agents: []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")},
			needs:  store.JobNeeds{Tests: []dep8.Requirements{reboot}},
			avoid:  []int64{2},
			want:   "test 'reboot' needs needs-reboot (agent 1 (overlay) cannot reboot)",
		},
		{
			name:   "no single agent runs every test",
			agents: []Agent{overlayAgent(t, 1, "unstable"), offline},
			needs:  store.JobNeeds{Tests: []dep8.Requirements{machine, online}},
			want:   "no single agent can run all of the job's tests (test 'online' narrows it to none)",
		},
		{
			name:   "label unmet",
			agents: []Agent{overlayAgent(t, 1, "unstable")},
			needs:  store.JobNeeds{Labels: []string{"gpu"}},
			want:   `the request needs label "gpu"; agent 1 (overlay) does not have it`,
		},
		{
			name:   "memory unknown",
			agents: []Agent{overlayAgent(t, 1, "unstable")},
			needs:  store.JobNeeds{MemoryMB: 2048},
			want:   "the request needs 2048 MB of memory; agent 1 (overlay) does not say how much it has",
		},
		{name: "capable, no needs", agents: []Agent{overlayAgent(t, 1, "unstable")}},
		{
			name:   "capable",
			agents: []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")},
			needs:  store.JobNeeds{Tests: []dep8.Requirements{machine, reboot}},
		},
		{
			name:   "capable besides a paused and an avoided agent",
			agents: []Agent{paused(machineAgent(2, "unstable"), "disk full"), overlayAgent(t, 1, "unstable"), overlayAgent(t, 3, "unstable")},
			avoid:  []int64{3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := NewRouter(tt.agents).Unroutable("unstable", "amd64", tt.needs, tt.avoid)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("Unroutable(unstable, amd64, %+v, %v) = %q, want %q", tt.needs, tt.avoid, got, tt.want)
			}
		})
	}
}

func TestCapable(t *testing.T) {
	t.Parallel()
	pausedAgent := overlayAgent(t, 4, "unstable")
	pausedAgent.Paused = "disk full"
	arm := overlayAgent(t, 5, "unstable")
	arm.Caps.Arch = "arm64"
	rt := NewRouter([]Agent{
		overlayAgent(t, 1, "unstable", "trixie"), machineAgent(2, "unstable"), overlayAgent(t, 3, "trixie"), pausedAgent, arm,
	})
	tests := []struct {
		release, arch string
		want          []int64
	}{
		{"unstable", "amd64", []int64{1, 2}},
		{"trixie", "amd64", []int64{1, 3}},
		{"unstable", "arm64", []int64{5}},
		{"bookworm", "amd64", nil},
		{"trixie", "arm64", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, rt.Capable("hello", tt.release, tt.arch)); diff != "" {
			t.Errorf("Capable(hello, %s, %s) mismatch (-want +got):\n%s", tt.release, tt.arch, diff)
		}
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	arm := overlayAgent(t, 5, "unstable")
	arm.Caps.Arch = "arm64"
	pausedAgent := overlayAgent(t, 4, "bookworm")
	pausedAgent.Paused = "disk full"
	tests := []struct {
		name   string
		agents []Agent
		want   []string
	}{
		{name: "none"},
		{
			name:   "sorted and unique",
			agents: []Agent{overlayAgent(t, 1, "unstable", "trixie"), machineAgent(2, "unstable"), arm, pausedAgent},
			want:   []string{"bookworm/amd64", "trixie/amd64", "unstable/amd64", "unstable/arm64"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, NewRouter(tt.agents).Targets()); diff != "" {
				t.Errorf("Targets() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIntakeRouter(t *testing.T) {
	t.Parallel()
	s := sqlite.NewTemp(t)
	in := New(Config{Store: s, Agents: agentsOf(overlayAgent(t, 1, "unstable")), Now: clockAt(epoch())})
	rt, err := in.Router(t.Context())
	if err != nil {
		t.Fatalf("Router = %v", err)
	}
	if got := rt.Targets(); !cmp.Equal(got, []string{"unstable/amd64"}) {
		t.Errorf("Router().Targets() = %v, want [unstable/amd64]", got)
	}

	none := New(Config{Store: s, Now: clockAt(epoch())})
	rt, err = none.Router(t.Context())
	if err != nil {
		t.Fatalf("Router with no Agents = %v", err)
	}
	if got, want := rt.Unroutable("unstable", "amd64", store.JobNeeds{}, nil), "no approved agent offers unstable/amd64"; got != want {
		t.Errorf("Router with no Agents: Unroutable = %q, want %q", got, want)
	}

	errAgents := errors.New("agents unavailable")
	failing := New(Config{Store: s, Agents: func(context.Context) ([]Agent, error) { return nil, errAgents }})
	if _, err := failing.Router(t.Context()); !errors.Is(err, errAgents) {
		t.Errorf("Router = %v, want %v", err, errAgents)
	}
}
