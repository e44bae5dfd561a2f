package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// labelledAgent creates an approved agent with labels, as an admin would
// record them, and returns it with a token.
func (e *env) labelledAgent(c *protocol.Client, name string, labels ...string) (testAgent, string) {
	e.t.Helper()
	owner := e.account(name)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.db.CreateAgent(e.t.Context(), store.Agent{
		Name: "box-" + name, OwnerID: owner.ID, PublicKey: pub, ClaimCode: "code-" + name,
		State: store.AgentPending, Labels: labels, CreatedAt: e.clock.Now(),
	})
	if err != nil {
		e.t.Fatalf("CreateAgent(%s) = %v", name, err)
	}
	ta := testAgent{id: a.ID, code: a.ClaimCode, owner: owner, key: priv}
	e.approve(ta)
	return ta, e.token(c, ta)
}

func (e *env) blockRule(r store.BlockRule) store.BlockRule {
	e.t.Helper()
	if r.Reason == "" {
		r.Reason = "breaks the testbed"
	}
	r.CreatedBy, r.CreatedAt = "admin", e.clock.Now()
	r, err := e.db.AddBlockRule(e.t.Context(), r)
	if err != nil {
		e.t.Fatalf("AddBlockRule = %v", err)
	}
	return r
}

// noJob checks that the agent with tok is offered no job.
func (e *env) noJob(c *protocol.Client, tok, who string) {
	e.t.Helper()
	r, err := c.Lease(e.t.Context(), tok, protocol.LeaseRequest{Capabilities: caps})
	if err != nil || r.Job != nil {
		e.t.Errorf("Lease by %s = %+v, %v; want no job", who, r.Job, err)
	}
}

// TestScopedRuleKeepsJobFromAgent checks that a whole-job rule scoped to
// an agent or a label keeps a queued job from the agents it covers, and
// that the job stays queued for the others.
func TestScopedRuleKeepsJobFromAgent(t *testing.T) {
	tests := []struct {
		name string
		rule func(blocked testAgent) store.BlockRule
	}{
		{name: "agent", rule: func(blocked testAgent) store.BlockRule {
			return store.BlockRule{Package: "linux-*", AgentID: blocked.id}
		}},
		{name: "label", rule: func(testAgent) store.BlockRule {
			return store.BlockRule{Package: "linux-*", Label: "slow-disk"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 0)
			c := e.dial()
			a, tokA := e.labelledAgent(c, "alice", "slow-disk")
			_, tokB := e.labelledAgent(c, "bob", "fast")
			e.blockRule(tt.rule(a))
			j := e.submit("linux-signed")
			e.noJob(c, tokA, "alice, whom the rule covers")
			if got, err := e.db.Job(t.Context(), j.ID); err != nil || got.State != store.JobQueued {
				t.Errorf("job after alice's lease = %s, %v; want queued", got.State, err)
			}
			// A job the rule does not cover still goes to alice.
			free := e.submit("hello")
			if l := e.lease(c, tokA); l.ID != free.ID {
				t.Errorf("Lease by alice = job %d, want %d", l.ID, free.ID)
			}
			if l := e.lease(c, tokB); l.ID != j.ID || l.Attempt != 1 {
				t.Errorf("Lease by bob = job %d attempt %d, want %d attempt 1", l.ID, l.Attempt, j.ID)
			}
		})
	}
}

// TestForcedJobStillKeptFromScopedAgent checks that force, which overrides
// the unscoped rules at submission, does not send a job to an agent a
// scoped rule keeps it from; and that an unscoped rule added after a job
// was queued does not stop the job.
func TestForcedJobStillKeptFromScopedAgent(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	a, tokA := e.labelledAgent(c, "alice")
	e.blockRule(store.BlockRule{Package: "hello", AgentID: a.id})
	if _, err := e.db.CreateJob(t.Context(), store.Job{Package: "hello", Release: "bookworm", Arch: "amd64", Forced: true, SubmittedBy: "admin", CreatedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.noJob(c, tokA, "alice with a forced job")

	queued := e.submit("bash")
	e.blockRule(store.BlockRule{Package: "bash"})
	if l := e.lease(c, tokA); l.ID != queued.ID {
		t.Errorf("Lease of a job queued before an unscoped rule = job %d, want %d", l.ID, queued.ID)
	}
}

// TestSkippedTestsInLease checks that the tests that single-test rules
// skip for this job on this agent come with the lease, with the rules'
// sentences, and that rules for other tests, packages, agents or labels,
// or expired ones, do not.
func TestSkippedTestsInLease(t *testing.T) {
	e := newEnv(t, 0)
	c := e.dial()
	a, tokA := e.labelledAgent(c, "alice", "slow-disk")
	b, _ := e.labelledAgent(c, "bob")
	smoke := e.blockRule(store.BlockRule{Package: "hel*", Test: "smoke", Reason: "flaky everywhere"})
	e.blockRule(store.BlockRule{Package: "hello", Test: "smoke", Reason: "a later rule for the same test"})
	upstream := e.blockRule(store.BlockRule{Package: "hello", Test: "upstream", Label: "slow-disk", Reason: "times out on slow disks"})
	mine := e.blockRule(store.BlockRule{Package: "hello", Test: "network", AgentID: a.id, Reason: "no network here"})
	e.blockRule(store.BlockRule{Package: "hello", Test: "gpu", AgentID: b.id, Reason: "bob's gpu"})
	e.blockRule(store.BlockRule{Package: "hello", Test: "big", Label: "small-disk", Reason: "too big"})
	e.blockRule(store.BlockRule{Package: "bash", Test: "unit", Reason: "another package"})
	soon := e.clock.Now().Add(time.Minute)
	e.blockRule(store.BlockRule{Package: "hello", Test: "old", Reason: "expired", ExpiresAt: &soon})
	e.clock.Advance(2 * time.Minute)
	e.submit("hello")

	j := e.lease(c, tokA)
	wantTests := []string{"smoke", "upstream", "network"}
	if d := cmp.Diff(wantTests, j.SkipTests); d != "" {
		t.Errorf("leased job's SkipTests mismatch (-want +got):\n%s", d)
	}
	wantReasons := []string{
		"skipping test smoke: blocklist rule " + itoa(smoke.ID) + " (~admin): flaky everywhere",
		"skipping test upstream: blocklist rule " + itoa(upstream.ID) + " (~admin): times out on slow disks",
		"skipping test network: blocklist rule " + itoa(mine.ID) + " (~admin): no network here",
	}
	if d := cmp.Diff(wantReasons, j.SkipReasons); d != "" {
		t.Errorf("leased job's SkipReasons mismatch (-want +got):\n%s", d)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
