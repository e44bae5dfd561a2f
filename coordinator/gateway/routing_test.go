package gateway

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// TestLeaseRoutesByNeeds checks that a job whose tests need more than an
// agent's testbeds offer stays queued for an agent that offers it, that
// admin labels override what an agent claims, and that the lease carries
// the job's test selection and apt sources.
func TestLeaseRoutesByNeeds(t *testing.T) {
	reboot := dep8.Requirements{Test: "reboot", Restrictions: []string{"isolation-machine", "needs-reboot"}, NeedsMachine: true, NeedsReboot: true}
	vm := caps
	vm.Backend, vm.Isolation, vm.Root, vm.RevertFullSystem, vm.Reboot = "qemu", "machine", true, true, true
	tests := []struct {
		name string
		// labels are the admin's labels on the second agent.
		labels []string
		// caps is what the second agent claims.
		caps  protocol.Capabilities
		needs store.JobNeeds
		// second says whether the second agent gets the job.
		second bool
	}{
		{name: "machine test goes to the machine agent", caps: vm, needs: store.JobNeeds{Tests: []dep8.Requirements{reboot}}, second: true},
		{name: "nobody can", caps: caps, needs: store.JobNeeds{Tests: []dep8.Requirements{reboot}}},
		{name: "admin label grants what the agent does not claim", labels: []string{"isolation=machine", "reboot=yes"}, caps: caps,
			needs: store.JobNeeds{Tests: []dep8.Requirements{reboot}}, second: true},
		{name: "admin label takes back what the agent claims", labels: []string{"reboot=no"}, caps: vm,
			needs: store.JobNeeds{Tests: []dep8.Requirements{reboot}}},
		{name: "requested label", labels: []string{"gpu"}, caps: caps, needs: store.JobNeeds{Labels: []string{"gpu"}}, second: true},
		{name: "memory", caps: func() protocol.Capabilities { c := caps; c.MemoryMB = 8192; return c }(), needs: store.JobNeeds{MemoryMB: 4096}, second: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 0)
			c := e.dial()
			_, plain := e.labelledAgent(c, "alice")
			_, special := e.labelledAgent(c, "bob", tt.labels...)
			j, err := e.db.CreateJob(t.Context(), store.Job{Package: "linux", Release: "bookworm", Arch: "amd64",
				Tests: []string{"reboot"}, Needs: tt.needs, AptSources: []string{"deb [trusted=yes] http://127.0.0.1:1/ ./"},
				SubmittedBy: "admin", CreatedAt: e.clock.Now()})
			if err != nil {
				t.Fatal(err)
			}
			e.noJob(c, plain, "alice, whose overlay testbeds lack it")
			r, err := c.Lease(t.Context(), special, protocol.LeaseRequest{Capabilities: tt.caps})
			if err != nil {
				t.Fatalf("Lease by bob = %v", err)
			}
			if (r.Job != nil) != tt.second {
				t.Fatalf("Lease by bob = %+v, want a job: %v", r.Job, tt.second)
			}
			if r.Job == nil {
				if got, err := e.db.Job(t.Context(), j.ID); err != nil || got.State != store.JobQueued {
					t.Errorf("job nobody can run = %s, %v; want queued", got.State, err)
				}
				return
			}
			if d := cmp.Diff([]string{"reboot"}, r.Job.Tests); d != "" {
				t.Errorf("leased Tests mismatch (-want +got):\n%s", d)
			}
			if d := cmp.Diff([]string{"deb [trusted=yes] http://127.0.0.1:1/ ./"}, r.Job.AptSources); d != "" {
				t.Errorf("leased AptSources mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// TestBlocklistLabelsAreWhatRoutingSees checks that label-scoped blocklist
// rules match the labels routing sees: those the agent claims, with the
// admin's labels applied, not the admin's settings as written.
func TestBlocklistLabelsAreWhatRoutingSees(t *testing.T) {
	claims := caps
	claims.Labels = []string{"big", "gpu"}
	tests := []struct {
		name    string
		admin   []string
		rule    string
		blocked bool
	}{
		{"claimed label", nil, "gpu", true},
		{"label an admin added", []string{"slow-disk"}, "slow-disk", true},
		{"claimed label an admin removed", []string{"-gpu"}, "gpu", false},
		{"an admin setting is not a label", []string{"isolation=none"}, "isolation=none", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 0)
			c := e.dial()
			_, tok := e.labelledAgent(c, "alice", tt.admin...)
			e.blockRule(store.BlockRule{Package: "hello", Label: tt.rule})
			e.submit("hello")
			r, err := c.Lease(t.Context(), tok, protocol.LeaseRequest{Capabilities: claims})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Job == nil; got != tt.blocked {
				t.Errorf("job kept from the agent = %v, want %v", got, tt.blocked)
			}
		})
	}
}
