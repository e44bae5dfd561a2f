package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

func testSetAgentLabels(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	pending := f.pendingAgent(t, "pending")
	var many []string
	for i := range store.MaxAgentLabels {
		many = append(many, fmt.Sprintf("l%02d", i))
	}

	tests := []struct {
		name   string
		id     int64
		labels []string
		want   []string // the agent's labels afterwards
		err    error
	}{
		{
			name:   "set",
			id:     f.agent.ID,
			labels: []string{"isolation=machine", "reboot=yes", "gpu"},
			want:   []string{"gpu", "isolation=machine", "reboot=yes"},
		},
		{
			name: "every form",
			id:   f.agent.ID,
			labels: []string{"isolation=none", "reboot=no", "internet=yes", "root=yes", "revert-full-system=no",
				"memory-mb=2048", "disk-mb=0", "-big", "gpu.v2:x_1-a"},
			want: []string{"-big", "disk-mb=0", "gpu.v2:x_1-a", "internet=yes", "isolation=none", "memory-mb=2048",
				"reboot=no", "revert-full-system=no", "root=yes"},
		},
		{
			name:   "replaces, sorted and deduplicated",
			id:     f.agent.ID,
			labels: []string{"slow", "fast", "slow"},
			want:   []string{"fast", "slow"},
		},
		{name: "bad isolation", id: f.agent.ID, labels: []string{"fast", "isolation=vm"}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "bad yes or no", id: f.agent.ID, labels: []string{"reboot=maybe"}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "bad size", id: f.agent.ID, labels: []string{"memory-mb=-1"}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "unknown capability", id: f.agent.ID, labels: []string{"gpu=yes"}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "upper case", id: f.agent.ID, labels: []string{"GPU"}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "bad removal", id: f.agent.ID, labels: []string{"-"}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "removal of a capability", id: f.agent.ID, labels: []string{"-reboot=yes"}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "empty label", id: f.agent.ID, labels: []string{""}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "too long", id: f.agent.ID, labels: []string{strings.Repeat("a", 65)}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "two isolations", id: f.agent.ID, labels: []string{"isolation=none", "isolation=machine"}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "added and removed", id: f.agent.ID, labels: []string{"gpu", "-gpu"}, want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "too many", id: f.agent.ID, labels: append([]string{"extra"}, many...), want: []string{"fast", "slow"}, err: store.ErrInvalid},
		{name: "as many as allowed", id: f.agent.ID, labels: append([]string{"l00"}, many...), want: many},
		{name: "a label named like a capability", id: f.agent.ID, labels: []string{"isolation", "isolation=machine"}, want: []string{"isolation", "isolation=machine"}},
		{name: "cleared", id: f.agent.ID, labels: []string{}, want: nil},
		{name: "set again", id: f.agent.ID, labels: []string{"fast"}, want: []string{"fast"}},
		{name: "cleared with nil", id: f.agent.ID, labels: nil, want: nil},
		{name: "pending agent", id: pending.ID, labels: []string{"internet=no"}, want: []string{"internet=no"}},
		{name: "unknown agent", id: 9999, labels: []string{"fast"}, err: store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := f.s.Agent(ctx, tt.id)
			got, err := f.s.SetAgentLabels(ctx, tt.id, tt.labels)
			call := fmt.Sprintf("SetAgentLabels(%d, %q)", tt.id, tt.labels)
			checkErr(t, call, err, tt.err)
			if errors.Is(tt.err, store.ErrInvalid) {
				var invalid *store.InvalidError
				if !errors.As(err, &invalid) || invalid.Reason == "" {
					t.Errorf("%s = %#v, want an *InvalidError with a reason", call, err)
				}
			}
			if errors.Is(tt.err, store.ErrNotFound) {
				return
			}
			want := before
			want.Labels = tt.want
			if err == nil {
				diff(t, call, got, want)
			}
			after, err := f.s.Agent(ctx, tt.id)
			if err != nil {
				t.Fatalf("Agent(%d) = %v", tt.id, err)
			}
			diff(t, "Agent after "+call, after, want)
		})
	}

	t.Run("list", func(t *testing.T) {
		all, err := f.s.ListAgents(ctx)
		if err != nil {
			t.Fatalf("ListAgents = %v", err)
		}
		got := map[int64][]string{}
		for _, a := range all {
			got[a.ID] = a.Labels
		}
		want := map[int64][]string{f.agent.ID: nil, pending.ID: []string{"internet=no"}}
		diff(t, "ListAgents labels", got, want)
	})
}
