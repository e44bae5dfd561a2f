package intake

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// epoch is the tests' clock: Submit and every store write use it.
func epoch() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

func ptr[T any](v T) *T { return &v }

// overlayAgent is agent id on the overlay backend, with its defaults.
func overlayAgent(t *testing.T, id int64, releases ...string) Agent {
	t.Helper()
	c, err := dep8.BackendDefaults("overlay")
	if err != nil {
		t.Fatalf("BackendDefaults(overlay) = %v", err)
	}
	c.ID, c.Arch = id, "amd64"
	return Agent{Caps: c, Releases: releases}
}

// machineAgent is agent id claiming machine isolation and reboot, as a
// qemu agent does.
func machineAgent(id int64, releases ...string) Agent {
	caps := protocol.Capabilities{
		Arch: "amd64", Releases: releases, Backend: "qemu", Isolation: string(dep8.IsolationMachine),
		Root: true, RevertFullSystem: true, Reboot: true, Internet: true,
	}
	return Agent{Caps: caps.AgentCaps(id), Releases: releases}
}

func agentsOf(as ...Agent) func(context.Context) ([]Agent, error) {
	return func(context.Context) ([]Agent, error) { return as, nil }
}

func parseControl(t *testing.T, text string) []dep8.TestStanza {
	t.Helper()
	if text == "" {
		return nil
	}
	tests, err := dep8.ParseTestsControl(strings.NewReader(text))
	if err != nil {
		t.Fatalf("ParseTestsControl(%q) = %v", text, err)
	}
	return tests
}

// requirements returns the requirements of the named tests of control,
// in the order given.
func requirements(t *testing.T, control []dep8.TestStanza, names ...string) []dep8.Requirements {
	t.Helper()
	var out []dep8.Requirements
	for _, n := range names {
		i := slices.IndexFunc(control, func(s dep8.TestStanza) bool { return s.Name == n })
		if i < 0 {
			t.Fatalf("control has no test %q", n)
		}
		out = append(out, control[i].Requirements())
	}
	return out
}

// storedJobs returns every job of s, oldest first.
func storedJobs(t *testing.T, s store.Store) []store.Job {
	t.Helper()
	jobs, err := s.ListJobs(t.Context(), store.JobFilter{})
	if err != nil {
		t.Fatalf("ListJobs = %v", err)
	}
	slices.SortFunc(jobs, func(a, b store.Job) int { return cmp.Compare(a.ID, b.ID) })
	return jobs
}

func jobIDs(jobs []store.Job) []int64 {
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}

// jobOpts compares stored jobs with the ones a test expects: ids are the
// store's, and reasons are checked for what they must contain.
func jobOpts() gocmp.Options {
	return gocmp.Options{cmpopts.IgnoreFields(store.Job{}, "ID", "Reason"), cmpopts.EquateEmpty()}
}

// checkReasons reports a job whose reason lacks what want says it must
// contain, job by job; a job want says nothing of must have the request's
// reason, plain.
func checkReasons(t *testing.T, jobs []store.Job, want [][]string, plain string) {
	t.Helper()
	for i, j := range jobs {
		if i >= len(want) || len(want[i]) == 0 {
			if j.Reason != plain {
				t.Errorf("job %d: Reason = %q, want %q", i, j.Reason, plain)
			}
			continue
		}
		for _, w := range want[i] {
			if !strings.Contains(j.Reason, w) {
				t.Errorf("job %d: Reason = %q, want it to contain %q", i, j.Reason, w)
			}
		}
	}
}

const threeTests = `Tests: plain

Tests: machine
Restrictions: isolation-machine

Tests: reboot
Restrictions: needs-reboot
`

func TestSubmitSplit(t *testing.T) {
	t.Parallel()
	const (
		plainOnly = "Tests: plain\n\nTests: other\nRestrictions: needs-root\n"
		mixed     = "Tests: plain\n\nTests: reboot-test\nRestrictions: needs-reboot\n"
		reboot    = "Tests: reboot-test\nRestrictions: needs-reboot\n"
	)
	tests := []struct {
		name    string
		control string
		agents  []Agent
		edit    func(r *Request)
		// want are the stored jobs in order of creation, less their ids;
		// reasons lists what each one's reason must contain.
		want    func(control []dep8.TestStanza) []store.Job
		reasons [][]string
		// pending maps the index of a job in want to what its pending
		// reason must contain.
		pending map[int]string
	}{
		{
			name:   "no control",
			agents: []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")},
			want: func([]dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{})}
			},
		},
		{
			name:    "every agent runs every test",
			control: plainOnly,
			agents:  []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{Tests: requirements(t, c, "plain", "other")})}
			},
		},
		{
			name:    "one agent runs every test",
			control: threeTests,
			agents:  []Agent{machineAgent(2, "unstable")},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{Tests: requirements(t, c, "plain", "machine", "reboot")})}
			},
		},
		{
			name:    "agents of other targets do not split",
			control: threeTests,
			agents:  []Agent{overlayAgent(t, 1, "trixie"), machineAgent(2, "unstable")},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{Tests: requirements(t, c, "plain", "machine", "reboot")})}
			},
		},
		{
			name:    "mixed",
			control: mixed,
			agents:  []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{
					queued([]string{"plain"}, store.JobNeeds{Tests: requirements(t, c, "plain")}),
					queued([]string{"reboot-test"}, store.JobNeeds{Tests: requirements(t, c, "reboot-test")}),
				}
			},
			reasons: [][]string{
				nil,
				{"by hand; tests reboot-test split off", "test 'reboot-test' needs needs-reboot; agent 1 (overlay) cannot reboot", "only agent 2 can"},
			},
		},
		{
			name:    "machine and reboot tests go together",
			control: threeTests,
			agents:  []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{
					queued([]string{"plain"}, store.JobNeeds{Tests: requirements(t, c, "plain")}),
					queued([]string{"machine", "reboot"}, store.JobNeeds{Tests: requirements(t, c, "machine", "reboot")}),
				}
			},
			reasons: [][]string{{}, {"tests machine, reboot split off", "only agent 2 can"}},
		},
		{
			name:    "main part comes first",
			control: "Tests: reboot-test\nRestrictions: needs-reboot\n\nTests: plain\n\nTests: b-machine\nRestrictions: isolation-machine\n",
			agents:  []Agent{overlayAgent(t, 1, "unstable"), overlayAgent(t, 3, "unstable"), machineAgent(2, "unstable")},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{
					queued([]string{"plain"}, store.JobNeeds{Tests: requirements(t, c, "plain")}),
					queued([]string{"reboot-test", "b-machine"}, store.JobNeeds{Tests: requirements(t, c, "reboot-test", "b-machine")}),
				}
			},
			reasons: [][]string{{}, {"split off", "only agent 2 can"}},
		},
		{
			name:    "test no agent can run",
			control: mixed,
			agents:  []Agent{overlayAgent(t, 1, "unstable")},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{
					queued([]string{"plain"}, store.JobNeeds{Tests: requirements(t, c, "plain")}),
					queued([]string{"reboot-test"}, store.JobNeeds{Tests: requirements(t, c, "reboot-test")}),
				}
			},
			reasons: [][]string{{}, {"tests reboot-test split off", "no agent can run them yet"}},
			pending: map[int]string{1: "no capable agent for test 'reboot-test': test 'reboot-test' needs needs-reboot (agent 1 (overlay) cannot reboot)"},
		},
		{
			name:    "no agent runs any test",
			control: reboot,
			agents:  []Agent{overlayAgent(t, 1, "unstable")},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{Tests: requirements(t, c, "reboot-test")})}
			},
			pending: map[int]string{0: "test 'reboot-test' needs needs-reboot (agent 1 (overlay) cannot reboot)"},
		},
		{
			name:    "no agent for the target",
			control: mixed,
			agents:  []Agent{overlayAgent(t, 1, "trixie"), machineAgent(2, "trixie")},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{Tests: requirements(t, c, "plain", "reboot-test")})}
			},
			pending: map[int]string{0: "no approved agent offers unstable/amd64"},
		},
		{
			name: "no agent at all",
			want: func([]dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{})}
			},
			pending: map[int]string{0: "no approved agent offers unstable/amd64"},
		},
		{
			name:    "labels and memory",
			control: mixed,
			agents:  []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")},
			edit: func(r *Request) {
				r.Labels, r.MemoryMB, r.DiskMB = []string{"gpu"}, 4096, 20000
			},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{
					Tests: requirements(t, c, "plain", "reboot-test"), Labels: []string{"gpu"}, MemoryMB: 4096, DiskMB: 20000,
				})}
			},
			pending: map[int]string{0: `the request needs label "gpu"`},
		},
		{
			name:    "labels some agents offer",
			control: mixed,
			agents: func() []Agent {
				big := machineAgent(2, "unstable")
				big.Caps.Labels, big.Caps.MemoryMB = []string{"gpu"}, 8192
				return []Agent{overlayAgent(t, 1, "unstable"), big}
			}(),
			edit: func(r *Request) { r.Labels, r.MemoryMB = []string{"gpu"}, 4096 },
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{
					Tests: requirements(t, c, "plain", "reboot-test"), Labels: []string{"gpu"}, MemoryMB: 4096,
				})}
			},
		},
		{
			name:    "part of an earlier split is not split again",
			control: mixed,
			agents:  []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")},
			edit: func(r *Request) {
				r.Tests, r.TestNeeds = []string{"plain", "reboot-test"}, requirements(t, r.Control, "plain", "reboot-test")
			},
			want: func(c []dep8.TestStanza) []store.Job {
				return []store.Job{queued([]string{"plain", "reboot-test"}, store.JobNeeds{Tests: requirements(t, c, "plain", "reboot-test")})}
			},
		},
		{
			name:    "avoiding the only capable agent",
			control: mixed,
			agents:  []Agent{overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")},
			edit:    func(r *Request) { r.AvoidAgents = []int64{2} },
			want: func(c []dep8.TestStanza) []store.Job {
				main := queued([]string{"plain"}, store.JobNeeds{Tests: requirements(t, c, "plain")})
				off := queued([]string{"reboot-test"}, store.JobNeeds{Tests: requirements(t, c, "reboot-test")})
				main.AvoidAgents, off.AvoidAgents = []int64{2}, []int64{2}
				return []store.Job{main, off}
			},
			reasons: [][]string{nil, {"by hand; tests reboot-test split off"}},
			pending: map[int]string{1: "test 'reboot-test' needs needs-reboot (agent 1 (overlay) cannot reboot)"},
		},
		{
			name:   "avoiding every agent",
			agents: []Agent{overlayAgent(t, 1, "unstable"), overlayAgent(t, 3, "unstable")},
			edit:   func(r *Request) { r.AvoidAgents = []int64{1, 3} },
			want: func([]dep8.TestStanza) []store.Job {
				j := queued(nil, store.JobNeeds{})
				j.AvoidAgents = []int64{1, 3}
				return []store.Job{j}
			},
			pending: map[int]string{0: "no agent offering unstable/amd64 other than agent 1, 3, which the job must avoid"},
		},
		{
			name: "every agent paused",
			agents: func() []Agent {
				a := overlayAgent(t, 1, "unstable")
				a.Paused = "disk full"
				return []Agent{a}
			}(),
			want: func([]dep8.TestStanza) []store.Job {
				return []store.Job{queued(nil, store.JobNeeds{})}
			},
			pending: map[int]string{0: "every agent offering unstable/amd64 is paused (agent 1: disk full)"},
		},
		{
			name:   "priority, lane and attempts",
			agents: []Agent{overlayAgent(t, 1, "unstable")},
			edit: func(r *Request) {
				r.Priority, r.Lane, r.MaxAttempts, r.Triggers = 8, "events", 2, []string{"glibc/2.41-1"}
			},
			want: func([]dep8.TestStanza) []store.Job {
				j := queued(nil, store.JobNeeds{})
				j.Priority, j.Lane, j.MaxAttempts, j.Triggers = 8, "events", 2, []string{"glibc/2.41-1"}
				return []store.Job{j}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := sqlite.NewTemp(t)
			in := New(Config{Store: s, Agents: agentsOf(tt.agents...), Now: clockAt(epoch())})
			control := parseControl(t, tt.control)
			r := Request{
				Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64",
				Control: control, Reason: "by hand", SubmittedBy: "alice",
			}
			if tt.edit != nil {
				tt.edit(&r)
			}
			out, err := in.Submit(t.Context(), r)
			if err != nil {
				t.Fatalf("Submit = %v", err)
			}
			got := storedJobs(t, s)
			want := tt.want(control)
			if diff := gocmp.Diff(want, got, jobOpts()); diff != "" {
				t.Errorf("stored jobs mismatch (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(jobIDs(got), jobIDs(out.Jobs)); diff != "" {
				t.Errorf("Outcome.Jobs ids mismatch (-stored +outcome):\n%s", diff)
			}
			if diff := gocmp.Diff(got, out.Jobs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Outcome.Jobs mismatch (-stored +outcome):\n%s", diff)
			}
			checkReasons(t, got, tt.reasons, r.Reason)
			if out.Blocked != nil {
				t.Errorf("Outcome.Blocked = %+v, want nil", out.Blocked)
			}
			checkPending(t, got, tt.pending, out.Pending)
		})
	}
}

// checkPending reports a difference between the pending reasons Submit
// gave and want, which maps the index of a job in jobs to what its reason
// must contain.
func checkPending(t *testing.T, jobs []store.Job, want map[int]string, got map[int64]string) {
	t.Helper()
	wantIDs := []int64{}
	for i := range want {
		if i >= len(jobs) {
			t.Fatalf("want a pending reason for job %d of %d", i, len(jobs))
		}
		wantIDs = append(wantIDs, jobs[i].ID)
	}
	gotIDs := slices.Collect(maps.Keys(got))
	slices.Sort(wantIDs)
	slices.Sort(gotIDs)
	if diff := gocmp.Diff(wantIDs, gotIDs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Outcome.Pending = %v, job ids mismatch (-want +got):\n%s", got, diff)
	}
	for i, w := range want {
		if why, ok := got[jobs[i].ID]; ok && !strings.Contains(why, w) {
			t.Errorf("Outcome.Pending[job %d] = %q, want it to contain %q", i, why, w)
		}
	}
}

// queued is the job TestSubmitSplit's request becomes, with tests and needs.
func queued(tests []string, needs store.JobNeeds) store.Job {
	return store.Job{
		Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64", State: store.JobQueued,
		MaxAttempts: store.DefaultMaxAttempts, Priority: store.DefaultPriority, Lane: store.LaneDefault,
		Tests: tests, Needs: needs, SubmittedBy: "alice", CreatedAt: epoch(),
	}
}

func TestSubmitBlocklist(t *testing.T) {
	t.Parallel()
	rule := func(edit func(r *store.BlockRule)) store.BlockRule {
		r := store.BlockRule{Package: "hel*", Reason: "eats disks", CreatedBy: "root-admin", CreatedAt: epoch().Add(-time.Hour)}
		if edit != nil {
			edit(&r)
		}
		return r
	}
	tests := []struct {
		name   string
		rule   store.BlockRule
		forced bool
		// blocked says whether the rule covers the request.
		blocked bool
	}{
		{name: "whole-job rule", rule: rule(nil), blocked: true},
		{name: "whole-job rule for the version", rule: rule(func(r *store.BlockRule) { r.Version = "2.10-3" }), blocked: true},
		{name: "whole-job rule, forced", rule: rule(nil), forced: true, blocked: true},
		{name: "test-only rule", rule: rule(func(r *store.BlockRule) { r.Test = "upstream" })},
		{name: "rule for another release", rule: rule(func(r *store.BlockRule) { r.Release = "trixie" })},
		{name: "rule for another package", rule: rule(func(r *store.BlockRule) { r.Package = "linux-*" })},
		{name: "expired rule", rule: rule(func(r *store.BlockRule) { r.ExpiresAt = ptr(epoch()) })},
		{name: "rule scoped to an agent's label", rule: rule(func(r *store.BlockRule) { r.Label = "slow" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := sqlite.NewTemp(t)
			stored, err := s.AddBlockRule(t.Context(), tt.rule)
			if err != nil {
				t.Fatalf("AddBlockRule(%+v) = %v", tt.rule, err)
			}
			in := New(Config{Store: s, Agents: agentsOf(overlayAgent(t, 1, "unstable")), Now: clockAt(epoch())})
			r := Request{Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64", Reason: "by hand", Forced: tt.forced}
			out, err := in.Submit(t.Context(), r)
			jobs := storedJobs(t, s)

			if tt.blocked && !tt.forced {
				if !errors.Is(err, ErrBlocked) {
					t.Fatalf("Submit = %v, want ErrBlocked", err)
				}
				var be *BlockedError
				if !errors.As(err, &be) {
					t.Fatalf("Submit = %T, want a *BlockedError", err)
				}
				if diff := gocmp.Diff(stored, be.Rule); diff != "" {
					t.Errorf("BlockedError.Rule mismatch (-want +got):\n%s", diff)
				}
				for _, w := range []string{"hello 2.10-3 on unstable/amd64", fmt.Sprintf("blocklist rule %d", stored.ID), "eats disks"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Submit error = %q, want it to contain %q", err, w)
					}
				}
				if len(jobs) != 0 {
					t.Errorf("ListJobs = %d jobs, want none", len(jobs))
				}
				return
			}
			if err != nil {
				t.Fatalf("Submit = %v", err)
			}
			if len(jobs) != 1 {
				t.Fatalf("ListJobs = %d jobs, want 1", len(jobs))
			}
			if jobs[0].Forced != tt.forced {
				t.Errorf("job Forced = %v, want %v", jobs[0].Forced, tt.forced)
			}
			mention := fmt.Sprintf("blocklist rule %d", stored.ID)
			if !tt.blocked {
				if out.Blocked != nil {
					t.Errorf("Outcome.Blocked = %+v, want nil", out.Blocked)
				}
				if jobs[0].Reason != "by hand" {
					t.Errorf("job Reason = %q, want %q", jobs[0].Reason, "by hand")
				}
				return
			}
			if out.Blocked == nil {
				t.Fatalf("Outcome.Blocked = nil, want rule %d", stored.ID)
			}
			if diff := gocmp.Diff(stored, *out.Blocked); diff != "" {
				t.Errorf("Outcome.Blocked mismatch (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(jobs[0].Reason, "by hand; ") || !strings.Contains(jobs[0].Reason, mention) {
				t.Errorf("job Reason = %q, want the request's reason and then %q", jobs[0].Reason, mention)
			}
		})
	}
}

// history is a test's store with one approved agent that runs jobs.
type history struct {
	s     store.Store
	agent store.Agent
	now   time.Time
	runs  int
}

func newHistory(t *testing.T) *history {
	t.Helper()
	s := sqlite.NewTemp(t)
	owner, err := s.CreateAccount(t.Context(), store.Account{Name: "volunteer", Role: store.RoleVolunteer, CreatedAt: epoch()})
	if err != nil {
		t.Fatalf("CreateAccount = %v", err)
	}
	ag, err := s.CreateAgent(t.Context(), store.Agent{
		Name: "box", OwnerID: owner.ID, PublicKey: []byte("key"), ClaimCode: "code", State: store.AgentApproved,
		AutoApproved: true, CreatedAt: epoch(),
	})
	if err != nil {
		t.Fatalf("CreateAgent = %v", err)
	}
	return &history{s: s, agent: ag, now: epoch().Add(-24 * time.Hour)}
}

// run creates j, leases it to the agent and completes it with verdict v
// and harness h, returning the job as it ends.
func (h *history) run(t *testing.T, j store.Job, v dep8.Verdict, harness dep8.Harness) store.Job {
	t.Helper()
	ctx := t.Context()
	h.runs++
	h.now = h.now.Add(time.Minute)
	j.CreatedAt = h.now
	j, err := h.s.CreateJob(ctx, j)
	if err != nil {
		t.Fatalf("CreateJob(%+v) = %v", j, err)
	}
	leased, err := h.s.LeaseJob(ctx, store.LeaseParams{
		AgentID: h.agent.ID, Arch: j.Arch, Releases: []string{j.Release}, TTL: time.Hour, Now: h.now,
		Nonce: fmt.Sprintf("nonce-%d", h.runs),
	})
	if err != nil || leased == nil || leased.ID != j.ID {
		t.Fatalf("LeaseJob = %+v, %v; want job %d", leased, err, j.ID)
	}
	envelope := fmt.Sprintf(`{"payloadType":"application/vnd.in-toto+json","payload":"run-%d"}`, h.runs)
	sum := sha256.Sum256([]byte(envelope))
	done, err := h.s.CompleteJob(ctx, store.Result{
		JobID: j.ID, Attempt: leased.Attempt, AgentID: h.agent.ID, Verdict: v, Harness: harness,
		Envelope: []byte(envelope), IdempotencyKey: hex.EncodeToString(sum[:]), Transport: "quic",
	}, h.now.Add(time.Second))
	if err != nil {
		t.Fatalf("CompleteJob(job %d, %s) = %v", j.ID, v, err)
	}
	return done
}

func TestSubmitReuse(t *testing.T) {
	t.Parallel()
	older := dep8.Harness{AgentVersion: "1.0", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:aa"}
	newer := dep8.Harness{AgentVersion: "1.1", AutopkgtestVersion: "5.28", Backend: "overlay", ImageDigest: "sha256:bb"}
	onQemu := dep8.Harness{AgentVersion: "1.1", AutopkgtestVersion: "5.28", Backend: "qemu", ImageDigest: "sha256:cc"}
	hello := store.Job{Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64", Triggers: []string{"glibc/2.41-1", "gcc-14/14.2-1"}}
	other := store.Job{Package: "other", Version: "1", Release: "unstable", Arch: "amd64"}
	with := func(j store.Job, edit func(j *store.Job)) store.Job {
		j.Triggers = slices.Clone(j.Triggers)
		edit(&j)
		return j
	}

	type run struct {
		job     store.Job
		verdict dep8.Verdict
		harness dep8.Harness
	}
	tests := []struct {
		name    string
		history []run
		pin     string
		edit    func(r *Request)
		// reuse is the index in history of the run reused, -1 for none.
		reuse int
	}{
		{name: "same key, newest harness", history: []run{{hello, dep8.VerdictPass, newer}}, reuse: 0},
		{name: "fail is reused", history: []run{{hello, dep8.VerdictFail, newer}}, reuse: 0},
		{name: "neutral is reused", history: []run{{hello, dep8.VerdictNeutral, newer}}, reuse: 0},
		{
			name:    "triggers in another order",
			history: []run{{hello, dep8.VerdictPass, newer}},
			edit:    func(r *Request) { r.Triggers = []string{"gcc-14/14.2-1", "glibc/2.41-1"} },
			reuse:   0,
		},
		{
			name:    "newest of several",
			history: []run{{hello, dep8.VerdictFail, newer}, {hello, dep8.VerdictPass, newer}},
			reuse:   1,
		},
		{
			name:    "the one with the newest harness",
			history: []run{{hello, dep8.VerdictPass, newer}, {hello, dep8.VerdictPass, older}, {other, dep8.VerdictPass, newer}},
			reuse:   0,
		},
		{
			name:    "newer harness on the target",
			history: []run{{hello, dep8.VerdictPass, older}, {other, dep8.VerdictPass, newer}},
			reuse:   -1,
		},
		{
			name:    "pin backend chooses an old overlay result",
			history: []run{{hello, dep8.VerdictPass, older}, {other, dep8.VerdictPass, onQemu}},
			pin:     "backend=overlay",
			reuse:   0,
		},
		{
			name:    "pin agent chooses the older of two",
			history: []run{{hello, dep8.VerdictPass, older}, {hello, dep8.VerdictPass, newer}},
			pin:     "agent=1.0",
			reuse:   0,
		},
		{
			name:    "full pin",
			history: []run{{hello, dep8.VerdictPass, older}, {hello, dep8.VerdictPass, newer}},
			pin:     older.Rev(),
			reuse:   0,
		},
		{
			name:    "pin nothing matches",
			history: []run{{hello, dep8.VerdictPass, older}, {hello, dep8.VerdictPass, newer}},
			pin:     "backend=qemu",
			reuse:   -1,
		},
		{name: "no result on the target", reuse: -1},
		{
			name:    "other triggers",
			history: []run{{hello, dep8.VerdictPass, newer}},
			edit:    func(r *Request) { r.Triggers = []string{"glibc/2.41-1"} },
			reuse:   -1,
		},
		{
			name:    "other version",
			history: []run{{with(hello, func(j *store.Job) { j.Version = "2.10-2" }), dep8.VerdictPass, newer}},
			reuse:   -1,
		},
		{
			name:    "other test selection",
			history: []run{{with(hello, func(j *store.Job) { j.Tests = []string{"smoke"} }), dep8.VerdictPass, newer}},
			reuse:   -1,
		},
		{name: "forced", history: []run{{hello, dep8.VerdictPass, newer}}, edit: func(r *Request) { r.Forced = true }, reuse: -1},
		{name: "fresh", history: []run{{hello, dep8.VerdictPass, newer}}, edit: func(r *Request) { r.Fresh = true }, reuse: -1},
		{
			name:    "no version",
			history: []run{{with(hello, func(j *store.Job) { j.Version = "" }), dep8.VerdictPass, newer}},
			edit:    func(r *Request) { r.Version = "" },
			reuse:   -1,
		},
		{
			name:    "uploaded source",
			history: []run{{hello, dep8.VerdictPass, newer}},
			edit:    func(r *Request) { r.Source = &store.Source{} }, // filled in with a recorded blob below
			reuse:   -1,
		},
		{
			name:    "agents to avoid",
			history: []run{{hello, dep8.VerdictPass, newer}},
			edit:    func(r *Request) { r.AvoidAgents = []int64{1} },
			reuse:   -1,
		},
		{
			name:    "error is not reused",
			history: []run{{other, dep8.VerdictPass, newer}, {with(hello, func(j *store.Job) { j.MaxAttempts = 1 }), dep8.VerdictTmpfail, newer}},
			reuse:   -1,
		},
		{
			name:    "tmpfail with attempts left is not reused",
			history: []run{{other, dep8.VerdictPass, newer}, {with(hello, func(j *store.Job) { j.MaxAttempts = 3 }), dep8.VerdictTmpfail, newer}},
			reuse:   -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHistory(t)
			var ran []store.Job
			for _, r := range tt.history {
				ran = append(ran, h.run(t, r.job, r.verdict, r.harness))
			}
			pin, err := ParsePin(tt.pin)
			if err != nil {
				t.Fatalf("ParsePin(%q) = %v", tt.pin, err)
			}
			in := New(Config{Store: h.s, Agents: agentsOf(overlayAgent(t, h.agent.ID, "unstable")), Harness: pin, Now: clockAt(epoch())})
			r := Request{
				Package: hello.Package, Version: hello.Version, Release: hello.Release, Arch: hello.Arch,
				Triggers: slices.Clone(hello.Triggers), Reason: "by hand",
			}
			if tt.edit != nil {
				tt.edit(&r)
			}
			if r.Source != nil {
				const content = "an uploaded source"
				sum := sha256.Sum256([]byte(content))
				b := store.Blob{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), CreatedAt: epoch()}
				if err := h.s.AddBlob(t.Context(), b); err != nil {
					t.Fatalf("AddBlob = %v", err)
				}
				r.Source = &store.Source{SHA256: b.SHA256, Size: b.Size, Kind: "tar", Entry: "hello-2.10"}
			}
			out, err := in.Submit(t.Context(), r)
			if err != nil {
				t.Fatalf("Submit = %v", err)
			}
			if len(out.Jobs) != 1 {
				t.Fatalf("Submit made %d jobs, want 1", len(out.Jobs))
			}
			got, err := h.s.Job(t.Context(), out.Jobs[0].ID)
			if err != nil {
				t.Fatalf("Job(%d) = %v", out.Jobs[0].ID, err)
			}
			if tt.reuse < 0 {
				if got.ReusedFrom != nil || got.State != store.JobQueued {
					t.Errorf("job = %s reused from %v, want queued and not reused", got.State, derefOr(got.ReusedFrom))
				}
				if strings.Contains(got.Reason, "reused") {
					t.Errorf("job Reason = %q, want no reuse mentioned", got.Reason)
				}
				return
			}
			from := ran[tt.reuse]
			want := store.Job{
				Package: r.Package, Version: r.Version, Release: r.Release, Arch: r.Arch, Triggers: r.Triggers,
				State: store.JobDone, Verdict: from.Verdict, MaxAttempts: store.DefaultMaxAttempts,
				Priority: store.DefaultPriority, Lane: store.LaneDefault, ReusedFrom: ptr(from.ID),
				CreatedAt: epoch(), FinishedAt: ptr(epoch()),
			}
			if diff := gocmp.Diff(want, got, jobOpts()); diff != "" {
				t.Errorf("stored job mismatch (-want +got):\n%s", diff)
			}
			wantReason := fmt.Sprintf("by hand; reused the %s result of job %d", from.Verdict, from.ID)
			if !strings.HasPrefix(got.Reason, wantReason) {
				t.Errorf("job Reason = %q, want it to start with %q", got.Reason, wantReason)
			}
			if len(out.Pending) != 0 {
				t.Errorf("Outcome.Pending = %v, want none for a reused job", out.Pending)
			}
		})
	}
}

func derefOr(p *int64) any {
	if p == nil {
		return "nothing"
	}
	return *p
}

// TestSubmitReuseSplit checks that each part of a split request is
// reused by the result of the same test selection.
func TestSubmitReuseSplit(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	harness := dep8.Harness{AgentVersion: "1.1", AutopkgtestVersion: "5.28", Backend: "qemu", ImageDigest: "sha256:bb"}
	base := store.Job{Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64"}
	mainJob := base
	mainJob.Tests = []string{"plain"}
	prev := h.run(t, mainJob, dep8.VerdictPass, harness)

	control := parseControl(t, "Tests: plain\n\nTests: reboot-test\nRestrictions: needs-reboot\n")
	in := New(Config{
		Store:  h.s,
		Agents: agentsOf(overlayAgent(t, 1, "unstable"), machineAgent(2, "unstable")),
		Now:    clockAt(epoch()),
	})
	out, err := in.Submit(t.Context(), Request{Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64", Control: control})
	if err != nil {
		t.Fatalf("Submit = %v", err)
	}
	type summary struct {
		Tests      []string
		State      store.JobState
		ReusedFrom *int64
	}
	var got []summary
	for _, j := range out.Jobs {
		got = append(got, summary{j.Tests, j.State, j.ReusedFrom})
	}
	want := []summary{
		{[]string{"plain"}, store.JobDone, ptr(prev.ID)},
		{[]string{"reboot-test"}, store.JobQueued, nil},
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("Submit jobs mismatch (-want +got):\n%s", diff)
	}
}

func TestSubmitAgentsError(t *testing.T) {
	t.Parallel()
	errAgents := errors.New("agents unavailable")
	s := sqlite.NewTemp(t)
	in := New(Config{Store: s, Agents: func(context.Context) ([]Agent, error) { return nil, errAgents }, Now: clockAt(epoch())})
	_, err := in.Submit(t.Context(), Request{Package: "hello", Version: "1", Release: "unstable", Arch: "amd64"})
	if !errors.Is(err, errAgents) {
		t.Errorf("Submit = %v, want %v", err, errAgents)
	}
	if jobs := storedJobs(t, s); len(jobs) != 0 {
		t.Errorf("ListJobs = %d jobs, want none", len(jobs))
	}
}

func TestSubmitStoreRefuses(t *testing.T) {
	t.Parallel()
	s := sqlite.NewTemp(t)
	in := New(Config{Store: s, Now: clockAt(epoch())})
	_, err := in.Submit(t.Context(), Request{Package: "hello", Version: "1", Release: "unstable", Arch: "amd64", Priority: 99})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Submit(priority 99) = %v, want %v", err, store.ErrInvalid)
	}
}

func TestSubmitAptSources(t *testing.T) {
	t.Parallel()
	const (
		ports  = "deb http://deb.example.org/ports unstable main"
		upload = "deb http://uploads.example.org/42 ./"
		extra  = "deb http://extra.example.org unstable main"
	)
	control := parseControl(t, "Tests: plain\n\nTests: reboot-test\nRestrictions: needs-reboot\n")
	tests := []struct {
		name    string
		release string
		sources []string
		want    []string
	}{
		{name: "none", release: "trixie"},
		{name: "the release's", release: "unstable", want: []string{ports, extra}},
		{name: "the request's", release: "trixie", sources: []string{upload}, want: []string{upload}},
		{name: "the release's first, each once", release: "unstable", sources: []string{upload, ports, upload}, want: []string{ports, extra, upload}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := sqlite.NewTemp(t)
			in := New(Config{
				Store:          s,
				Agents:         agentsOf(overlayAgent(t, 1, "unstable", "trixie"), machineAgent(2, "unstable", "trixie")),
				ReleaseSources: map[string][]string{"unstable": {ports, extra}},
				Now:            clockAt(epoch()),
			})
			out, err := in.Submit(t.Context(), Request{
				Package: "hello", Version: "2.10-3", Release: tt.release, Arch: "amd64", Control: control, AptSources: tt.sources,
			})
			if err != nil {
				t.Fatalf("Submit = %v", err)
			}
			jobs := storedJobs(t, s)
			if len(jobs) != 2 || len(out.Jobs) != 2 {
				t.Fatalf("Submit made %d jobs and stored %d, want 2 (a split)", len(out.Jobs), len(jobs))
			}
			for i, j := range jobs {
				if diff := gocmp.Diff(tt.want, j.AptSources, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("job %d AptSources mismatch (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// archiveTestsFunc is an ArchiveTests answering from a map keyed by
// "release/package".
type archiveTestsFunc map[string][]dep8.TestStanza

func (m archiveTestsFunc) Tests(_ context.Context, release, pkg, _ string) ([]dep8.TestStanza, bool) {
	t, ok := m[release+"/"+pkg]
	return t, ok
}

func TestSubmitSplitsArchivePackages(t *testing.T) {
	db := sqlite.NewTemp(t)
	owner, err := db.CreateAccount(t.Context(), store.Account{Name: "vol", Role: store.RoleVolunteer})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := db.CreateAgent(t.Context(), store.Agent{Name: "box", OwnerID: owner.ID, PublicKey: []byte("k"), ClaimCode: "C",
		State: store.AgentApproved, AutoApproved: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SeenAgent(t.Context(), ag.ID, time.Now(), []byte(`{"arch":"amd64","releases":["bookworm"],"backend":"overlay"}`)); err != nil {
		t.Fatal(err)
	}
	control, err := dep8.ParseTestsControl(strings.NewReader("Tests: smoke\nDepends: dash\n\nTests: boot\nRestrictions: isolation-machine\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := New(Config{Store: db, Agents: StoreAgents(db), ArchiveTests: archiveTestsFunc{"bookworm/linux": control}})
	tests := []struct {
		pkg       string
		wantParts [][]string
	}{
		{"linux", [][]string{{"smoke"}, {"boot"}}},
		{"hello", [][]string{nil}},
	}
	for _, tt := range tests {
		out, err := in.Submit(t.Context(), Request{Package: tt.pkg, Release: "bookworm", Arch: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		var got [][]string
		for _, j := range out.Jobs {
			got = append(got, j.Tests)
		}
		if diff := gocmp.Diff(tt.wantParts, got); diff != "" {
			t.Errorf("Submit(%s) test selections mismatch (-want +got):\n%s", tt.pkg, diff)
		}
	}
}
