package gateway

import (
	"testing"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// TestHeldScopeKeepsJobsQueued checks that a hold passes over the jobs of
// its scope, or every job for an agent with its label, leaving them
// queued, and that lifting it lets them be leased.
func TestHeldScopeKeepsJobsQueued(t *testing.T) {
	tests := []struct {
		name  string
		scope store.Scope
		// aliceOnly: the hold covers alice (label slow-disk), not bob.
		aliceOnly bool
	}{
		{name: "grid", scope: store.ScopeGrid},
		{name: "release", scope: "release:bookworm"},
		{name: "arch", scope: "arch:amd64"},
		{name: "label", scope: "label:slow-disk", aliceOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 0)
			c := e.dial()
			_, tokA := e.labelledAgent(c, "alice", "slow-disk")
			_, tokB := e.labelledAgent(c, "bob")
			hold := store.Hold{Scope: tt.scope, Reason: "mirror down", Since: e.clock.Now(), By: store.CheckHolder("mirror")}
			if _, err := e.db.SetHold(t.Context(), hold); err != nil {
				t.Fatalf("SetHold = %v", err)
			}
			// A hold on another release or arch changes nothing.
			other := store.Hold{Scope: "release:sid", Reason: "r", Since: e.clock.Now(), By: "admin"}
			if _, err := e.db.SetHold(t.Context(), other); err != nil {
				t.Fatalf("SetHold = %v", err)
			}
			j := e.submit("hello")
			e.noJob(c, tokA, "alice, under the hold")
			if got, err := e.db.Job(t.Context(), j.ID); err != nil || got.State != store.JobQueued {
				t.Errorf("job under hold = %s, %v; want queued", got.State, err)
			}
			if tt.aliceOnly {
				if l := e.lease(c, tokB); l.ID != j.ID {
					t.Errorf("Lease by bob = job %d, want %d", l.ID, j.ID)
				}
				return
			}
			e.noJob(c, tokB, "bob, under the hold")
			if err := e.db.ClearHold(t.Context(), hold.Scope, hold.By); err != nil {
				t.Fatalf("ClearHold = %v", err)
			}
			if l := e.lease(c, tokA); l.ID != j.ID {
				t.Errorf("Lease by alice after the hold lifted = job %d, want %d", l.ID, j.ID)
			}
		})
	}
}
