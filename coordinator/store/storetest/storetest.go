// Package storetest is the conformance suite every store.Store
// implementation must pass. An implementation's own tests call Run with a
// function that returns a fresh, empty, migrated store.
//
// It owns the executable form of the Store contract: every method, every
// documented error, lease exclusivity under concurrency, expiry and retry
// rules, blocklist rules and their expiry, events and their expansion. It must not import any implementation, and must not depend on
// anything the Store interface does not promise (no SQL, no files).
package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// Run runs the conformance suite. newStore must return a fresh, empty store
// for each call and arrange for it to be closed when t ends.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	groups := []struct {
		name string
		fn   func(t *testing.T, newStore func(t *testing.T) store.Store)
	}{
		{"Accounts", testAccounts},
		{"APITokens", testAPITokens},
		{"Agents", testAgents},
		{"ClaimAgent", testClaimAgent},
		{"DecideAgent", testDecideAgent},
		{"SeenAgent", testSeenAgent},
		{"SetAgentLabels", testSetAgentLabels},
		{"Blobs", testBlobs},
		{"CreateJob", testCreateJob},
		{"ListJobs", testListJobs},
		{"LeaseJob", testLeaseJob},
		{"LeaseExclusive", testLeaseExclusive},
		{"ExtendAndCheckLease", testExtendAndCheckLease},
		{"ExpireLeases", testExpireLeases},
		{"CompleteJob", testCompleteJob},
		{"CompleteJobRefusals", testCompleteJobRefusals},
		{"Tmpfail", testTmpfail},
		{"CancelJob", testCancelJob},
		{"Results", testResults},
		{"IdempotentResults", testIdempotentResults},
		{"RetryElsewhere", testRetryElsewhere},
		{"PauseAgent", testPauseAgent},
		{"BlockRules", testBlockRules},
		{"ForcedJob", testForcedJob},
		{"PackageRuns", testPackageRuns}, {"PackageRunsLimit", testPackageRunsLimit},
		{"Events", testEvents},
		{"LeasePriority", testLeasePriority},
		{"LeaseLanes", testLeaseLanes},
		{"AvoidAgents", testAvoidAgents},
		{"ReusedJob", testReusedJob},
		{"ReuseCandidates", testReuseCandidates},
		{"LatestHarness", testLatestHarness},
		{"TargetResults", testTargetResults},
		{"PackageRunsReused", testPackageRunsReused},
		{"Holds", testHolds}, {"Downtime", testDowntime}, {"AbortHeldJobs", testAbortHeldJobs},
		{"JobCounts", testJobCounts}, {"AgentCounts", testAgentCounts},
		{"MailOutbox", testMailOutbox}, {"MailDigest", testMailDigest},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.fn(t, newStore)
		})
	}
}

// t0 is the suite's epoch; every time the suite passes is derived from it.
func t0() time.Time { return time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC) }

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0().Add(d) }

func ptr[T any](v T) *T { return &v }

// checkErr reports err unless it matches want (nil meaning success).
func checkErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", call, err, want)
	}
}

// fixture is a store with an owner, an admin and an approved agent.
type fixture struct {
	s     store.Store
	owner store.Account
	admin store.Account
	agent store.Agent
}

func newFixture(t *testing.T, newStore func(t *testing.T) store.Store) *fixture {
	t.Helper()
	f := &fixture{s: newStore(t)}
	f.owner = f.account(t, "volunteer1", store.RoleVolunteer)
	f.admin = f.account(t, "admin1", store.RoleAdmin)
	f.agent = f.approvedAgent(t, "box1")
	return f
}

func (f *fixture) account(t *testing.T, name string, role store.Role) store.Account {
	t.Helper()
	a, err := f.s.CreateAccount(t.Context(), store.Account{Name: name, DisplayName: "Name " + name, Email: name + "@example.org", Role: role, CreatedAt: t0()})
	if err != nil {
		t.Fatalf("CreateAccount(%q) = %v", name, err)
	}
	return a
}

// pendingAgent creates a pending agent owned by f.owner with claim code
// "code-"+name.
func (f *fixture) pendingAgent(t *testing.T, name string) store.Agent {
	t.Helper()
	a, err := f.s.CreateAgent(t.Context(), store.Agent{Name: name, OwnerID: f.owner.ID, PublicKey: []byte("key-" + name), ClaimCode: "code-" + name, CreatedAt: t0()})
	if err != nil {
		t.Fatalf("CreateAgent(%q) = %v", name, err)
	}
	return a
}

// approvedAgent creates an agent and walks it through claim and approval.
func (f *fixture) approvedAgent(t *testing.T, name string) store.Agent {
	t.Helper()
	a := f.pendingAgent(t, name)
	if _, err := f.s.ClaimAgent(t.Context(), a.ClaimCode, f.owner.ID); err != nil {
		t.Fatalf("ClaimAgent(%q) = %v", a.ClaimCode, err)
	}
	a, err := f.s.DecideAgent(t.Context(), a.ID, store.AgentApproved, f.admin.Name)
	if err != nil {
		t.Fatalf("DecideAgent(%d, approved) = %v", a.ID, err)
	}
	return a
}

func (f *fixture) blob(t *testing.T, content string) store.Blob {
	t.Helper()
	b := blobOf(content)
	if err := f.s.AddBlob(t.Context(), b); err != nil {
		t.Fatalf("AddBlob(%s) = %v", b.SHA256, err)
	}
	return b
}

func blobOf(content string) store.Blob {
	sum := sha256.Sum256([]byte(content))
	return store.Blob{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), CreatedAt: t0()}
}

// job queues a job for pkg on unstable/amd64 with max attempts.
func (f *fixture) job(t *testing.T, pkg string, max int) store.Job {
	t.Helper()
	return f.createJob(t, store.Job{Package: pkg, Release: "unstable", Arch: "amd64", MaxAttempts: max})
}

func (f *fixture) createJob(t *testing.T, j store.Job) store.Job {
	t.Helper()
	if j.CreatedAt.IsZero() {
		j.CreatedAt = t0()
	}
	got, err := f.s.CreateJob(t.Context(), j)
	if err != nil {
		t.Fatalf("CreateJob(%s) = %v", j.Package, err)
	}
	return got
}

const ttl = time.Minute

// lease leases the next unstable/amd64 job to agent at now and fails the
// test when none is available.
func (f *fixture) lease(t *testing.T, agentID int64, now time.Time) store.Job {
	t.Helper()
	j, err := f.s.LeaseJob(t.Context(), store.LeaseParams{
		AgentID: agentID, Arch: "amd64", Releases: []string{"unstable"}, TTL: ttl, Now: now,
		Nonce: fmt.Sprintf("nonce-%d-%d", agentID, now.UnixNano()),
	})
	if err != nil || j == nil {
		t.Fatalf("LeaseJob(agent %d) = %v, %v; want a job", agentID, j, err)
	}
	return *j
}

func ref(j store.Job) store.LeaseRef {
	return store.LeaseRef{JobID: j.ID, Attempt: j.Attempt, AgentID: *j.AgentID}
}

// result builds a result for the current attempt of leased job j.
func result(j store.Job, v dep8.Verdict, blobs ...store.Blob) store.Result {
	r := store.Result{
		JobID: j.ID, Attempt: j.Attempt, AgentID: *j.AgentID, Verdict: v, ExitCode: exitCode(v),
		Tests: []dep8.Test{
			{Name: "smoke", Result: dep8.Pass},
			{Name: "upstream", Result: dep8.Skip, Detail: "all tests skipped"},
		},
		Harness:   dep8.Harness{AgentVersion: "1.0", AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:abc"},
		Envelope:  []byte(fmt.Sprintf(`{"payloadType":"application/vnd.in-toto+json","payload":"job-%d-attempt-%d"}`, j.ID, j.Attempt)),
		Transport: "quic",
	}
	for i, b := range blobs {
		r.Blobs = append(r.Blobs, store.BlobRef{Name: fmt.Sprintf("file%d", i), SHA256: b.SHA256, Size: b.Size})
	}
	return r
}

func exitCode(v dep8.Verdict) int {
	switch v {
	case dep8.VerdictPass:
		return 0
	case dep8.VerdictFail:
		return 4
	case dep8.VerdictNeutral:
		return 8
	}
	return 16
}

func (f *fixture) mustJob(t *testing.T, id int64) store.Job {
	t.Helper()
	j, err := f.s.Job(t.Context(), id)
	if err != nil {
		t.Fatalf("Job(%d) = %v", id, err)
	}
	return j
}

func (f *fixture) complete(t *testing.T, r store.Result, now time.Time) store.Job {
	t.Helper()
	j, err := f.s.CompleteJob(t.Context(), r, now)
	if err != nil {
		t.Fatalf("CompleteJob(job %d attempt %d) = %v", r.JobID, r.Attempt, err)
	}
	return j
}

func diff(t *testing.T, call string, got, want any, opts ...cmp.Option) {
	t.Helper()
	if d := cmp.Diff(want, got, opts...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", call, d)
	}
}
