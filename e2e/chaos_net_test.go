package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/e2e/harness"
)

// slowTest is the command line of the slow fixture's test, as the host
// sees it while it runs.
const slowTest = "sleep 47"

// overlayWorkDir is where the overlay virt server keeps its testbeds when
// it is given no --workdir, as the agent runs it; testbedPrefix starts
// every testbed's name there.
const (
	overlayWorkDir = "/var/tmp/sparegrid-overlay"
	testbedPrefix  = "sparegrid-tb-"
)

// fixtureResults is what the fast fixture's tests yield.
func fixtureResults() []testResult {
	return []testResult{{"passes", "PASS"}, {"fails", "FAIL"}, {"skippable", "SKIP"}, {"flaky", "FLAKY"}}
}

// enrolled is an approved agent with a testbed image, not yet running.
type enrolled struct {
	c        *harness.Coordinator
	state    string
	id       int64
	submitTo string // a maintainer's token
}

// enrol registers an agent with c, has its owner claim it and the admin
// approve it, and builds its bookworm overlay image.
func enrol(t *testing.T, c *harness.Coordinator, name string) enrolled {
	t.Helper()
	aliceTok := c.CreateAccount(t, "alice", "volunteer")
	bobTok := c.CreateAccount(t, "bob", "maintainer")
	state := filepath.Join(t.TempDir(), "agent")
	id := enrolAgent(t, c, state, "alice", aliceTok, name)
	return enrolled{c: c, state: state, id: id, submitTo: bobTok}
}

func (e enrolled) submit(t *testing.T, fixture string) string {
	t.Helper()
	return e.c.MustCLI(t, e.submitTo, "submit", "--source", filepath.Join(harness.RepoRoot(), "e2e", "testdata", fixture), "--release", "bookworm")
}

// lastSeen returns the agent's last_seen from `sparegrid agents show`.
func (e enrolled) lastSeen(t *testing.T) *time.Time {
	t.Helper()
	var a struct {
		LastSeen *time.Time `json:"last_seen"`
	}
	out := e.c.MustCLI(t, "", "agents", "show", itoa(e.id), "--json")
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("agents show --json: %v\n%s", err, out)
	}
	return a.LastSeen
}

// waitSlowTest waits until the slow fixture's test runs below agent and
// returns its processes.
func waitSlowTest(t *testing.T, c *harness.Coordinator, agent *harness.Proc, jobID string) []int {
	t.Helper()
	var pids []int
	harness.WaitFor(t, "the slow test to run under the agent", 10*time.Minute, func() (bool, string) {
		select {
		case <-agent.Done():
			t.Fatalf("agent exited before the slow test ran: %v", agent.Err())
		default:
		}
		pids = harness.Descendants(agent.Pid(), slowTest)
		j := c.Show(t, jobID)
		return len(pids) > 0, fmt.Sprintf("job %s: state %s stage %q attempt %d reason %q", jobID, j.State, j.Stage, j.Attempt, j.Reason)
	})
	return pids
}

// waitExit waits for p to exit and fails the test unless it exited with
// status 0.
func waitExit(t *testing.T, p *harness.Proc, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v; output:\n%s", p.Name, timeout, p.Output())
	}
	if err := p.Err(); err != nil {
		t.Errorf("%s exited with %v, want status 0", p.Name, err)
	}
}

// storedResults returns (attempt, verdict) of every result the
// coordinator stored for a job, read from its database.
func storedResults(t *testing.T, c *harness.Coordinator, jobID string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.DataDir, "sparegrid.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT attempt, verdict FROM results WHERE job_id = ? ORDER BY attempt`, jobID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var attempt int
		var verdict string
		if err := rows.Scan(&attempt, &verdict); err != nil {
			t.Fatal(err)
		}
		out = append(out, strconv.Itoa(attempt)+" "+verdict)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUDPBlockedFallsBackToTCP runs an agent in a network namespace whose
// firewall blocks UDP to the coordinator's agent port: with --transport
// auto it must fall back to TCP quickly, say why, and run a job; with
// --transport quic it must not get through at all. The firewall either
// drops the agent's datagrams on the way out, which the agent's sendmsg
// sees at once, or silently drops the coordinator's replies, which only a
// handshake timeout reveals.
func TestUDPBlockedFallsBackToTCP(t *testing.T) {
	requireTools(t)
	began := time.Now()
	ns := harness.NewNetns(t)
	c := harness.InitCoordinatorNames(t, ns.HostIP)
	c.ServeAgentsOn(t, ns.HostIP)
	_, port, err := net.SplitHostPort(c.AgentsAddr)
	if err != nil {
		t.Fatal(err)
	}
	e := enrol(t, c, "udpblocked")

	tests := []struct {
		name string
		// table is an nftables table, family inet, loaded in the
		// namespace for the case.
		table, rule string
		runJob      bool
	}{
		{
			name:   "datagrams dropped on the way out",
			table:  "sparegrid_block_out",
			rule:   fmt.Sprintf("type filter hook output priority filter; policy accept;\n\t\tip daddr %s udp dport %s counter drop", ns.HostIP, port),
			runJob: true,
		},
		{
			name:  "replies silently dropped",
			table: "sparegrid_block_in",
			rule:  fmt.Sprintf("type filter hook input priority filter; policy accept;\n\t\tip saddr %s udp sport %s counter drop", ns.HostIP, port),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns.NFT(t, fmt.Sprintf("table inet %s {\n\tchain c {\n\t\t%s\n\t}\n}\n", tt.table, tt.rule))
			t.Cleanup(func() { ns.Exec(t, "nft", "delete", "table", "inet", tt.table) })

			t.Run("quic only does not connect", func(t *testing.T) {
				since := time.Now()
				agent := ns.Start(t, nil, "sparegrid-agent", "run", "--state", e.state, "--transport", "quic")
				failed := regexp.MustCompile(`level=WARN .*dial quic ` + regexp.QuoteMeta(c.AgentsAddr))
				harness.WaitFor(t, "the QUIC-only agent to report a failed dial", 20*time.Second, func() (bool, string) {
					out := agent.Output()
					return failed.MatchString(out), out
				})
				if seen := e.lastSeen(t); seen != nil && seen.After(since) {
					t.Errorf("the coordinator saw the QUIC-only agent at %v through a firewall that blocks UDP", seen)
				}
				if out := agent.Output(); strings.Contains(out, "using TCP") {
					t.Errorf("the QUIC-only agent fell back to TCP:\n%s", out)
				}
				agent.Stop(30 * time.Second)
			})

			start := time.Now()
			agent := ns.Start(t, nil, "sparegrid-agent", "run", "--state", e.state, "--transport", "auto")
			var connected time.Duration
			harness.WaitFor(t, "the coordinator to see the agent", 40*time.Second, func() (bool, string) {
				if seen := e.lastSeen(t); seen != nil && seen.After(start) {
					connected = seen.Sub(start)
					return true, ""
				}
				return false, agent.Output()
			})
			t.Logf("the coordinator saw the agent %v after it started", connected.Round(10*time.Millisecond))
			if connected > 10*time.Second {
				t.Errorf("agent took %v to reach the coordinator with UDP blocked, want at most 10s", connected)
			}
			hint := regexp.MustCompile(`level=WARN msg="QUIC \(UDP\) to ` + regexp.QuoteMeta(c.AgentsAddr) + ` failed: .*; using TCP\. If a firewall drops UDP, allow UDP ` + port + ` or run with --transport tcp"`)
			if out := agent.Output(); !hint.MatchString(out) {
				t.Errorf("agent log lacks an actionable hint about blocked UDP (want %q):\n%s", hint, out)
			}

			if tt.runJob {
				id := e.submit(t, "fixture")
				j := c.WaitJob(t, id, 10*time.Minute)
				if diff := cmp.Diff(fixtureResults(), results(j)); diff != "" || j.State != "done" || j.Verdict != "fail" {
					t.Errorf("fixture job: %s/%s (reason %q), tests (-want +got):\n%s", j.State, j.Verdict, j.Reason, diff)
				}
				if j.Transport != "tcp" || j.Agent == nil || *j.Agent != e.id {
					t.Errorf("fixture job: transport %q agent %v; want tcp, agent %d", j.Transport, j.Agent, e.id)
				}
			}
			counters := ns.Exec(t, "nft", "list", "table", "inet", tt.table)
			if m := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(counters); m == nil || m[1] == "0" {
				t.Errorf("the UDP drop rule matched no packets, so the case proved nothing:\n%s", counters)
			}
			agent.Stop(time.Minute)
		})
	}
	t.Logf("TestUDPBlockedFallsBackToTCP took %v", time.Since(began).Round(time.Second))
}

// TestDrainOnSIGTERM stops an agent with SIGTERM mid-test: with a long
// drain grace the test finishes and is reported and nothing new is
// leased; with a short one the test is cancelled, reported as a tmpfail
// and run again.
func TestDrainOnSIGTERM(t *testing.T) {
	requireTools(t)
	began := time.Now()
	c := harness.InitCoordinator(t)
	c.Serve(t)
	e := enrol(t, c, "drainer")

	t.Run("long grace finishes the test", func(t *testing.T) {
		slowID := e.submit(t, "slow")
		agent := harness.Start(t, nil, "sparegrid-agent", "run", "--state", e.state, "--drain-grace", "3m")
		pids := waitSlowTest(t, c, agent, slowID)
		nextID := e.submit(t, "fixture")
		// The agent alone: its test runs in process groups of their own,
		// but a signal to the agent's group would still reach them if
		// they shared it.
		if err := syscall.Kill(agent.Pid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		signalled := time.Now()
		waitExit(t, agent, 3*time.Minute)
		t.Logf("agent exited %v after SIGTERM", time.Since(signalled).Round(time.Second))
		if !strings.Contains(agent.Output(), "stopping: no new jobs") {
			t.Errorf("agent did not log that it is draining:\n%s", agent.Output())
		}
		j := c.Show(t, slowID)
		if diff := cmp.Diff([]testResult{{"sleeps", "PASS"}}, results(j)); diff != "" || j.State != "done" || j.Verdict != "pass" || j.Attempt != 1 {
			t.Errorf("slow job: %s/%s attempt %d (reason %q); want done/pass on attempt 1; tests (-want +got):\n%s", j.State, j.Verdict, j.Attempt, j.Reason, diff)
		}
		if n := c.Show(t, nextID); n.State != "queued" || n.Agent != nil || n.Attempt != 0 {
			t.Errorf("job submitted while draining: state %s agent %v attempt %d; want queued, never leased", n.State, n.Agent, n.Attempt)
		}
		if left := harness.Alive(pids, slowTest); len(left) > 0 {
			t.Errorf("slow test processes %v outlived the agent", left)
		}
		c.MustCLI(t, e.submitTo, "cancel", nextID)
	})

	t.Run("short grace cancels and requeues", func(t *testing.T) {
		slowID := e.submit(t, "slow")
		agent := harness.Start(t, nil, "sparegrid-agent", "run", "--state", e.state, "--drain-grace", "3s")
		pids := waitSlowTest(t, c, agent, slowID)
		if err := syscall.Kill(agent.Pid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		signalled := time.Now()
		harness.WaitFor(t, "the slow test to be cancelled", 30*time.Second, func() (bool, string) {
			left := harness.Alive(pids, slowTest)
			return len(left) == 0, fmt.Sprintf("still running: %v", left)
		})
		t.Logf("slow test gone %v after SIGTERM (grace 3s)", time.Since(signalled).Round(100*time.Millisecond))
		waitExit(t, agent, 2*time.Minute)
		t.Logf("agent exited %v after SIGTERM", time.Since(signalled).Round(time.Second))

		j := c.Show(t, slowID)
		if j.State != "queued" || j.Attempt != 1 || !strings.Contains(j.Reason, "tmpfail on attempt 1") {
			t.Errorf("cancelled slow job: state %s attempt %d reason %q; want queued after a tmpfail on attempt 1", j.State, j.Attempt, j.Reason)
		}
		if got, want := storedResults(t, c, slowID), []string{"1 tmpfail"}; !slices.Equal(got, want) {
			t.Errorf("stored results of job %s = %v, want %v", slowID, got, want)
		}
		if log := c.MustCLI(t, "", "log", slowID); !strings.Contains(log, "sparegrid-agent:") {
			t.Errorf("attempt 1's log lacks the agent's note on why it failed:\n%s", log)
		}

		again := harness.Start(t, nil, "sparegrid-agent", "run", "--state", e.state)
		j = c.WaitJob(t, slowID, 10*time.Minute)
		if diff := cmp.Diff([]testResult{{"sleeps", "PASS"}}, results(j)); diff != "" || j.State != "done" || j.Verdict != "pass" || j.Attempt != 2 {
			t.Errorf("slow job after restart: %s/%s attempt %d (reason %q); want done/pass on attempt 2; tests (-want +got):\n%s", j.State, j.Verdict, j.Attempt, j.Reason, diff)
		}
		if got, want := storedResults(t, c, slowID), []string{"1 tmpfail", "2 pass"}; !slices.Equal(got, want) {
			t.Errorf("stored results of job %s = %v, want %v", slowID, got, want)
		}
		again.Stop(time.Minute)
	})
	t.Logf("TestDrainOnSIGTERM took %v", time.Since(began).Round(time.Second))
}

// testbeds returns the overlay testbed directories that exist now.
func testbeds(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(overlayWorkDir, testbedPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mountsOf returns the lines of /proc/self/mountinfo that mention any of
// dirs.
func mountsOf(t *testing.T, dirs []string) []string {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		for _, d := range dirs {
			if strings.Contains(line, d) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// TestCancelReachesAgent cancels a running job: the agent must learn it at
// its next heartbeat, kill the test and tear the testbed down, report
// nothing, and go on to the next job.
func TestCancelReachesAgent(t *testing.T) {
	requireTools(t)
	began := time.Now()
	c := harness.InitCoordinator(t)
	const heartbeat = 5 * time.Second
	c.Serve(t, "--lease-ttl", (3 * heartbeat).String())
	e := enrol(t, c, "cancelled")

	agent := harness.Start(t, nil, "sparegrid-agent", "run", "--state", e.state)
	before := testbeds(t)
	slowID := e.submit(t, "slow")
	pids := waitSlowTest(t, c, agent, slowID)
	var mine []string
	for _, d := range testbeds(t) {
		if !slices.Contains(before, d) {
			mine = append(mine, d)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("no new testbed under %s while the test runs (before: %v, now: %v)", overlayWorkDir, before, testbeds(t))
	}
	t.Logf("testbeds of this job: %v; host mounts of them while running: %d", mine, len(mountsOf(t, mine)))

	c.MustCLI(t, e.submitTo, "cancel", slowID)
	cancelled := time.Now()
	const allowance = heartbeat + 10*time.Second
	harness.WaitFor(t, "the slow test to stop after cancel", allowance, func() (bool, string) {
		left := harness.Alive(pids, slowTest)
		return len(left) == 0, fmt.Sprintf("still running: %v", left)
	})
	t.Logf("slow test gone %v after cancel", time.Since(cancelled).Round(100*time.Millisecond))
	harness.WaitFor(t, "the testbed to be torn down", allowance-time.Since(cancelled), func() (bool, string) {
		var left []string
		for _, d := range mine {
			if _, err := os.Lstat(d); err == nil {
				left = append(left, d)
			}
		}
		mounts := mountsOf(t, mine)
		return len(left) == 0 && len(mounts) == 0, fmt.Sprintf("directories %v, mounts %v", left, mounts)
	})
	t.Logf("testbed gone %v after cancel", time.Since(cancelled).Round(100*time.Millisecond))
	harness.WaitFor(t, "the agent to abandon the job", allowance, func() (bool, string) {
		out := agent.Output()
		return strings.Contains(out, "job abandoned, nothing reported"), out
	})

	if j := c.Show(t, slowID); j.State != "cancelled" || len(j.Tests) != 0 {
		t.Errorf("cancelled job: state %s, tests %v; want cancelled with no results", j.State, results(j))
	}
	if got := storedResults(t, c, slowID); len(got) != 0 {
		t.Errorf("stored results of the cancelled job = %v, want none", got)
	}

	nextID := e.submit(t, "fixture")
	j := c.WaitJob(t, nextID, 10*time.Minute)
	if diff := cmp.Diff(fixtureResults(), results(j)); diff != "" || j.State != "done" || j.Verdict != "fail" || j.Agent == nil || *j.Agent != e.id {
		t.Errorf("job after the cancel: %s/%s agent %v (reason %q); tests (-want +got):\n%s", j.State, j.Verdict, j.Agent, j.Reason, diff)
	}
	select {
	case <-agent.Done():
		t.Errorf("agent exited: %v", agent.Err())
	default:
	}
	agent.Stop(time.Minute)
	t.Logf("TestCancelReachesAgent took %v", time.Since(began).Round(time.Second))
}
