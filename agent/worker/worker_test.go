package worker

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sparegrid/sparegrid/agent/image"
	"github.com/sparegrid/sparegrid/agent/link"
	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/sign"
	"github.com/sparegrid/sparegrid/shared/version"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var testStart = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func testJob() *protocol.Job {
	return &protocol.Job{
		ID:                42,
		Attempt:           2,
		Nonce:             "n-42-2",
		Package:           "hello",
		Version:           "2.10-3",
		Release:           "bookworm",
		Arch:              "amd64",
		Triggers:          []string{"gcc-14/14.2.0-1"},
		HeartbeatInterval: 10 * time.Second,
	}
}

type rig struct {
	w    *Worker
	fake *fakeCoordinator
	pub  ed25519.PublicKey
	dir  string
}

// newRig returns a worker wired to a fake coordinator. run is the fake
// runner.
func newRig(t *testing.T, run RunFunc, jobs ...*protocol.Job) *rig {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fake := newFake(pub, jobs...)
	clock := testStart
	var clockMu sync.Mutex
	w := &Worker{
		Conn:     fake,
		Tokens:   link.NewTokens(9, priv, nil),
		StateDir: dir,
		Key:      priv,
		AgentID:  9,
		Capabilities: protocol.Capabilities{
			Arch: "amd64", Releases: []string{"bookworm"}, Backend: image.BackendUnshare,
			AutopkgtestVersion: "5.38", AgentVersion: version.Version,
		},
		Now: func() time.Time {
			clockMu.Lock()
			defer clockMu.Unlock()
			clock = clock.Add(time.Minute)
			return clock
		},
		Rand:     func() float64 { return 0.5 },
		RunTest:  run,
		FreeDisk: func(string) (int64, error) { return 100 << 30, nil },
		LookupImage: func(_, release, arch string) (image.Image, error) {
			return image.Image{Release: release, Arch: arch, Backend: image.BackendUnshare, Digest: testDigest}, nil
		},
		Once: true,
	}
	w.Dial = func(ctx context.Context) (Conn, error) { return fake, nil }
	return &rig{w: w, fake: fake, pub: pub, dir: dir}
}

// writeOutput fakes what autopkgtest leaves in its output directory.
func writeOutput(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// verified returns the test result of the only stored envelope.
func (r *rig) verified(t *testing.T) sign.TestResult {
	t.Helper()
	r.fake.mu.Lock()
	defer r.fake.mu.Unlock()
	if len(r.fake.results) != 1 {
		t.Fatalf("coordinator got %d results, want 1", len(r.fake.results))
	}
	req := r.fake.results[0]
	env, err := sign.ParseEnvelope(req.Envelope)
	if err != nil {
		t.Fatalf("ParseEnvelope = %v", err)
	}
	tr, err := sign.VerifyResult(env, r.pub)
	if err != nil {
		t.Fatalf("VerifyResult = %v", err)
	}
	if req.JobID != tr.JobID || req.Attempt != tr.Attempt {
		t.Errorf("Result request for %d/%d carries %d/%d", req.JobID, req.Attempt, tr.JobID, tr.Attempt)
	}
	return tr
}

func (r *rig) assertWorkDirGone(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(r.dir, state.WorkDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("work directory still holds %d entries", len(entries))
	}
}

func TestRunReportsSignedResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gotSpec runner.Spec
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			gotSpec = spec
			writeOutput(t, spec.OutputDir, map[string]string{
				"summary":         "smoke PASS\n",
				"log":             "autopkgtest log\n",
				"smoke-stdout":    "ok\n",
				"artifacts/a.txt": "artifact\n",
			})
			return runner.Outcome{ExitCode: 0, Verdict: dep8.VerdictPass, Tests: []dep8.Test{{Name: "smoke", Result: dep8.Pass}}}, nil
		}
		r := newRig(t, run, testJob())
		r.w.Artifacts = runner.Artifacts
		r.w.VirtServer = "/usr/bin/autopkgtest-virt-sparegrid"
		r.w.Sudo = []string{"/usr/bin/sudo", "-n"}
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}

		wantSpec := runner.Spec{
			Package: "hello", Version: "2.10-3", Triggers: []string{"gcc-14/14.2.0-1"},
			Image:      image.Image{Release: "bookworm", Arch: "amd64", Backend: image.BackendUnshare, Digest: testDigest},
			OutputDir:  filepath.Join(r.dir, state.WorkDir, "job-42-2", "out"),
			VirtServer: "/usr/bin/autopkgtest-virt-sparegrid",
			Sudo:       []string{"/usr/bin/sudo", "-n"},
			RunRecord:  filepath.Join(r.dir, state.WorkDir, "job-42-2", "run.json"),
		}
		if diff := cmp.Diff(wantSpec, gotSpec, cmpIgnoreLog()); diff != "" {
			t.Errorf("runner spec mismatch (-want +got):\n%s", diff)
		}

		got := r.verified(t)
		want := sign.TestResult{
			JobID: 42, Attempt: 2, Nonce: "n-42-2",
			Package: "hello", Version: "2.10-3", Release: "bookworm", Arch: "amd64",
			Triggers: []string{"gcc-14/14.2.0-1"},
			ExitCode: 0, Verdict: dep8.VerdictPass,
			Tests: []dep8.Test{{Name: "smoke", Result: dep8.Pass}},
			Harness: dep8.Harness{
				AgentVersion: version.Version, AutopkgtestVersion: "5.38",
				Backend: image.BackendUnshare, ImageDigest: testDigest,
			},
			Agent: sign.AgentRef{ID: 9, KeyID: sign.KeyID(r.pub)},
			Blobs: []sign.Blob{
				{Name: "log", SHA256: sha("autopkgtest log\n"), Size: 16},
				{Name: "artifacts/a.txt", SHA256: sha("artifact\n"), Size: 9},
				{Name: "smoke-stdout", SHA256: sha("ok\n"), Size: 3},
				{Name: "summary", SHA256: sha("smoke PASS\n"), Size: 11},
			},
			// The fake clock ticks a minute per reading; the disk check
			// before the lease reads it first.
			StartedAt:  testStart.Add(2 * time.Minute),
			FinishedAt: testStart.Add(3 * time.Minute),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("signed result mismatch (-want +got):\n%s", diff)
		}
		wantLease := protocol.LeaseRequest{Capabilities: r.w.Capabilities, Wait: DefaultLeaseWait}
		if diff := cmp.Diff(wantLease, r.fake.leases[0]); diff != "" {
			t.Errorf("lease request mismatch (-want +got):\n%s", diff)
		}
		if first := r.fake.uploads[0].Name; first != "log" {
			t.Errorf("first upload = %s, want log", first)
		}
		r.assertWorkDirGone(t)
	})
}

func cmpIgnoreLog() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Log" }, cmp.Ignore())
}

func TestStaleLeaseCancelsJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cause error
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			writeOutput(t, spec.OutputDir, map[string]string{"log": "partial\n"})
			<-ctx.Done()
			cause = context.Cause(ctx)
			return runner.Outcome{ExitCode: -1, Verdict: dep8.VerdictCancelled}, runner.ErrCancelled
		}
		r := newRig(t, run, testJob())
		r.fake.heartbeat = func(req protocol.HeartbeatRequest) (protocol.HeartbeatReply, error) {
			return protocol.HeartbeatReply{}, protocol.ErrStaleLease
		}
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if !errors.Is(cause, protocol.ErrStaleLease) {
			t.Errorf("runner context cause = %v, want %v", cause, protocol.ErrStaleLease)
		}
		r.fake.mu.Lock()
		defer r.fake.mu.Unlock()
		if len(r.fake.uploads) != 0 || len(r.fake.results) != 0 {
			t.Errorf("stale job sent %d uploads and %d results, want none", len(r.fake.uploads), len(r.fake.results))
		}
		if len(r.fake.beats) != 1 || r.fake.beats[0].Stage != StageTesting {
			t.Errorf("heartbeats = %+v, want one in stage %s", r.fake.beats, StageTesting)
		}
		r.assertWorkDirGone(t)
	})
}

func TestHeartbeatCancelFromCoordinator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cause error
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			<-ctx.Done()
			cause = context.Cause(ctx)
			return runner.Outcome{}, runner.ErrCancelled
		}
		r := newRig(t, run, testJob())
		r.fake.heartbeat = func(req protocol.HeartbeatRequest) (protocol.HeartbeatReply, error) {
			return protocol.HeartbeatReply{Cancel: true}, nil
		}
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if !errors.Is(cause, ErrJobCancelled) {
			t.Errorf("runner context cause = %v, want %v", cause, ErrJobCancelled)
		}
		if n := len(r.fake.results); n != 0 {
			t.Errorf("cancelled job sent %d results, want none", n)
		}
	})
}

func TestHeartbeatsWhileTesting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			// Long enough for three heartbeats at 10s ±10%.
			time.Sleep(35 * time.Second)
			writeOutput(t, spec.OutputDir, map[string]string{"log": "done\n"})
			return runner.Outcome{ExitCode: 8, Verdict: dep8.VerdictNeutral}, nil
		}
		r := newRig(t, run, testJob())
		r.w.Rand = func() float64 { return 0.99 } // 10.98s
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got, want := len(r.fake.beats), 3; got != want {
			t.Errorf("heartbeats = %d, want %d", got, want)
		}
		if got := r.verified(t).Verdict; got != dep8.VerdictNeutral {
			t.Errorf("verdict = %s, want %s", got, dep8.VerdictNeutral)
		}
	})
}

func TestRunnerFailureReportsTmpfail(t *testing.T) {
	tests := []struct {
		name     string
		lookup   func(_, release, arch string) (image.Image, error)
		run      RunFunc
		wantNote string
	}{
		{
			name: "no image",
			lookup: func(_, release, arch string) (image.Image, error) {
				return image.Image{}, image.ErrNoImage
			},
			wantNote: "no testbed image",
		},
		{
			name: "runner cannot start",
			run: func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
				return runner.Outcome{ExitCode: -1, Verdict: dep8.VerdictTmpfail}, runner.ErrStart
			},
			wantNote: "test run failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, tt.run, testJob())
				if tt.lookup != nil {
					r.w.LookupImage = tt.lookup
				}
				if err := r.w.Run(t.Context()); err != nil {
					t.Fatalf("Run = %v", err)
				}
				got := r.verified(t)
				if got.Verdict != dep8.VerdictTmpfail || got.ExitCode != tmpfailExit || len(got.Tests) != 0 {
					t.Errorf("result = %s exit %d with %d tests, want tmpfail exit %d without tests", got.Verdict, got.ExitCode, len(got.Tests), tmpfailExit)
				}
				if len(got.Blobs) != 1 || got.Blobs[0].Name != "log" {
					t.Fatalf("blobs = %+v, want the log alone", got.Blobs)
				}
				if log := string(r.fake.uploaded["log"]); !strings.Contains(log, tt.wantNote) {
					t.Errorf("log = %q, want a note containing %q", log, tt.wantNote)
				}
			})
		})
	}
}

func TestReportSurvivesShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			writeOutput(t, spec.OutputDir, map[string]string{"log": "interrupted\n"})
			cancel() // the operator's second signal
			<-ctx.Done()
			return runner.Outcome{ExitCode: -1, Verdict: dep8.VerdictCancelled}, runner.ErrCancelled
		}
		r := newRig(t, run, testJob())
		if err := r.w.Run(ctx); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got := r.verified(t); got.Verdict != dep8.VerdictTmpfail {
			t.Errorf("verdict after shutdown = %s, want %s", got.Verdict, dep8.VerdictTmpfail)
		}
	})
}

func TestResultRetries(t *testing.T) {
	tests := []struct {
		name      string
		fail      func(n int) error
		wantCalls int
		wantSent  bool
	}{
		{"transport errors then success", func(n int) error {
			if n < 3 {
				return errTransport
			}
			return nil
		}, 3, true},
		{"internal error is retried", func(n int) error {
			if n == 1 {
				return protocol.ErrInternal
			}
			return nil
		}, 2, true},
		{"stale lease stops at once", func(int) error { return protocol.ErrStaleLease }, 1, false},
		{"transport errors exhaust retries", func(int) error { return errTransport }, DefaultCallRetries, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
					writeOutput(t, spec.OutputDir, map[string]string{"log": "x\n"})
					return runner.Outcome{ExitCode: 0, Verdict: dep8.VerdictPass}, nil
				}
				r := newRig(t, run, testJob())
				r.fake.result = tt.fail
				if err := r.w.Run(t.Context()); err != nil {
					t.Fatalf("Run = %v", err)
				}
				r.fake.mu.Lock()
				defer r.fake.mu.Unlock()
				if r.fake.resultN != tt.wantCalls {
					t.Errorf("Result calls = %d, want %d", r.fake.resultN, tt.wantCalls)
				}
				if sent := len(r.fake.results) == 1; sent != tt.wantSent {
					t.Errorf("result stored = %v, want %v", sent, tt.wantSent)
				}
			})
		})
	}
}

func TestSourceJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		archive := makeTar(t,
			dir("hello-2.10/"),
			dir("hello-2.10/debian/"),
			reg("hello-2.10/debian/control", "Source: hello\n"),
		)
		var gotSpec runner.Spec
		var control []byte
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			gotSpec = spec
			control, _ = os.ReadFile(filepath.Join(spec.SourcePath, "debian", "control"))
			writeOutput(t, spec.OutputDir, map[string]string{"log": "x\n"})
			return runner.Outcome{ExitCode: 0, Verdict: dep8.VerdictPass}, nil
		}
		job := testJob()
		r := newRig(t, run, job)
		sum := r.fake.addBlob(archive)
		job.Source = &protocol.Source{SHA256: sum, Size: int64(len(archive)), Kind: protocol.SourceTree, Entry: "hello-2.10"}
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if want := filepath.Join(r.dir, state.WorkDir, "job-42-2", "src", "hello-2.10"); gotSpec.SourcePath != want || gotSpec.Package != "" {
			t.Errorf("spec source = %q, package %q; want %q and no package", gotSpec.SourcePath, gotSpec.Package, want)
		}
		if string(control) != "Source: hello\n" {
			t.Errorf("debian/control = %q", control)
		}
		if got := r.verified(t).Verdict; got != dep8.VerdictPass {
			t.Errorf("verdict = %s, want pass", got)
		}
	})
}

func TestUnsafeSourceIsTmpfail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		archive := makeTar(t, reg("../evil", "x"))
		ran := false
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			ran = true
			return runner.Outcome{}, nil
		}
		job := testJob()
		r := newRig(t, run, job)
		job.Source = &protocol.Source{SHA256: r.fake.addBlob(archive), Kind: protocol.SourceTree, Entry: "x"}
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if ran {
			t.Errorf("runner ran on an unsafe archive")
		}
		got := r.verified(t)
		if got.Verdict != dep8.VerdictTmpfail {
			t.Errorf("verdict = %s, want tmpfail", got.Verdict)
		}
		if log := string(r.fake.uploaded["log"]); !strings.Contains(log, "unsafe source archive") {
			t.Errorf("log = %q, want it to name the unsafe archive", log)
		}
	})
}

func TestReconnectAfterLostSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			writeOutput(t, spec.OutputDir, map[string]string{"log": "x\n"})
			return runner.Outcome{ExitCode: 0, Verdict: dep8.VerdictPass}, nil
		}
		r := newRig(t, run)
		dead := newFake(r.pub)
		dead.kill()
		r.w.Conn = dead
		dials := 0
		r.w.Dial = func(ctx context.Context) (Conn, error) {
			dials++
			if dials < 3 {
				return nil, errTransport
			}
			r.fake.mu.Lock()
			r.fake.jobs = append(r.fake.jobs, testJob())
			r.fake.mu.Unlock()
			return r.fake, nil
		}
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if dials != 3 {
			t.Errorf("dials = %d, want 3", dials)
		}
		r.verified(t)
	})
}

// TestUnansweredHeartbeatRedials checks that a heartbeat the coordinator
// never answers (it died without closing the session) makes the worker
// dial afresh at the next call instead of waiting for the transport's
// idle timeout.
func TestUnansweredHeartbeatRedials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			time.Sleep(25 * time.Second)
			writeOutput(t, spec.OutputDir, map[string]string{"log": "x\n"})
			return runner.Outcome{ExitCode: 0, Verdict: dep8.VerdictPass}, nil
		}
		r := newRig(t, run, testJob())
		dials := 0
		r.w.Dial = func(ctx context.Context) (Conn, error) {
			dials++
			return r.fake, nil
		}
		// The first heartbeat goes to a coordinator that no longer
		// answers; the session has not noticed.
		r.fake.mu.Lock()
		r.fake.silent = true
		r.fake.mu.Unlock()
		go func() {
			time.Sleep(15 * time.Second) // after the first beat was sent
			r.fake.mu.Lock()
			r.fake.silent = false
			r.fake.mu.Unlock()
		}()
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if dials != 1 {
			t.Errorf("dials = %d, want 1: an unanswered heartbeat drops the session", dials)
		}
		r.verified(t)
	})
}

func TestRunStopsOnFatal(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"version", protocol.Errorf(protocol.ErrVersion, "coordinator speaks protocol 2, agent 1")},
		{"rejected", protocol.ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, nil)
				r.w.Conn = nil
				r.w.Dial = func(ctx context.Context) (Conn, error) { return nil, tt.err }
				if err := r.w.Run(t.Context()); !errors.Is(err, tt.err) {
					t.Errorf("Run = %v, want %v", err, tt.err)
				}
			})
		})
	}
}

func TestDrainStopsLeasing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		r.w.Once = false
		done := make(chan error)
		go func() { done <- r.w.Run(t.Context()) }()
		synctest.Wait() // Run is blocked in Lease
		r.w.Drain()
		r.w.Drain()
		if err := <-done; err != nil {
			t.Errorf("Run after Drain = %v, want nil", err)
		}
	})
}
