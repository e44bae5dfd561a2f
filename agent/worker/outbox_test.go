package worker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/sparegrid/sparegrid/agent/runner"
	"github.com/sparegrid/sparegrid/agent/state"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// passing is a runner that leaves a log and passes.
func passing(t *testing.T) RunFunc {
	return func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
		writeOutput(t, spec.OutputDir, map[string]string{"log": "all good\n", "summary": "smoke PASS\n"})
		return runner.Outcome{ExitCode: 0, Verdict: dep8.VerdictPass, Tests: []dep8.Test{{Name: "smoke", Result: dep8.Pass}}}, nil
	}
}

// outboxEntries lists the entry directories in the outbox, and those in
// its refused directory.
func outboxEntries(t *testing.T, dir string) (pending, refused []string) {
	t.Helper()
	box := filepath.Join(dir, state.OutboxDir)
	des, _ := os.ReadDir(box)
	for _, de := range des {
		if de.Name() != outboxRefused {
			pending = append(pending, de.Name())
		}
	}
	des, _ = os.ReadDir(filepath.Join(box, outboxRefused))
	for _, de := range des {
		refused = append(refused, de.Name())
	}
	return pending, refused
}

// runUntilResult runs w until the fake coordinator stored a result, then
// drains it.
func runUntilResult(t *testing.T, r *rig) {
	t.Helper()
	r.w.Once = false
	done := make(chan error)
	go func() { done <- r.w.Run(t.Context()) }()
	<-r.fake.resulted
	r.w.Drain()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestResultKeptAcrossRestart checks that a result the coordinator never
// acknowledged survives the agent, and that the next agent process sends
// the same signed result, with its files and idempotency key.
func TestResultKeptAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, passing(t), testJob())
		r.fake.result = func(int) error { return errTransport }
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}
		pending, _ := outboxEntries(t, r.dir)
		if len(pending) != 1 || pending[0] != "job-42-2" {
			t.Fatalf("outbox after an unacknowledged result = %v, want [job-42-2]", pending)
		}
		r.assertWorkDirGone(t)
		sent := r.fake.uploaded["log"]

		// A new agent process with the same state directory.
		r2 := newRig(t, nil)
		r2.w.StateDir, r2.w.Key = r.dir, r.w.Key
		r2.pub = r.pub // to verify what r's key signed
		runUntilResult(t, r2)

		got := r2.verified(t)
		if got.JobID != 42 || got.Attempt != 2 || got.Verdict != dep8.VerdictPass {
			t.Errorf("resent result = job %d attempt %d %s, want job 42 attempt 2 pass", got.JobID, got.Attempt, got.Verdict)
		}
		req := r2.fake.results[0]
		if req.IdempotencyKey != protocol.ResultKey(req.Envelope) {
			t.Errorf("resent result key = %q, want the sha256 of its envelope", req.IdempotencyKey)
		}
		if string(r2.fake.uploaded["log"]) != string(sent) || len(sent) == 0 {
			t.Errorf("resent log = %q, want %q", r2.fake.uploaded["log"], sent)
		}
		if pending, refused := outboxEntries(t, r.dir); len(pending)+len(refused) != 0 {
			t.Errorf("outbox after acknowledgement = %v, refused %v; want empty", pending, refused)
		}
	})
}

// TestOutboxSettles checks what happens to a kept result for each answer
// the coordinator may give when it is sent again.
func TestOutboxSettles(t *testing.T) {
	tests := []struct {
		name        string
		upload      func(protocol.BlobHeader) error
		result      func(int) error
		duplicate   bool
		wantPending int
		wantRefused int
	}{
		{name: "acknowledged"},
		{name: "stored before: uploads refused as stale, result acknowledged as a duplicate",
			upload: func(protocol.BlobHeader) error { return protocol.ErrStaleLease }, duplicate: true},
		{name: "attempt superseded", upload: func(protocol.BlobHeader) error { return protocol.ErrStaleLease },
			result: func(int) error { return protocol.ErrStaleLease }, wantRefused: 1},
		{name: "bad signature", result: func(int) error { return protocol.ErrBadSignature }, wantRefused: 1},
		{name: "coordinator unreachable", result: func(int) error { return errTransport }, wantPending: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, passing(t), testJob())
				r.fake.result = func(int) error { return errTransport }
				if err := r.w.Run(t.Context()); err != nil {
					t.Fatalf("Run = %v", err)
				}
				r2 := newRig(t, nil)
				r2.w.StateDir, r2.w.Key = r.dir, r.w.Key
				r2.fake.upload, r2.fake.result, r2.fake.duplicate = tt.upload, tt.result, tt.duplicate
				r2.w.init()
				r2.w.flushOutbox(t.Context())
				pending, refused := outboxEntries(t, r.dir)
				if len(pending) != tt.wantPending || len(refused) != tt.wantRefused {
					t.Errorf("outbox = %v, refused %v; want %d pending, %d refused", pending, refused, tt.wantPending, tt.wantRefused)
				}
			})
		})
	}
}

// TestHalfKeptEntry checks entries a crash left while they were being
// made: a whole one is sent, a broken one removed.
func TestHalfKeptEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, passing(t), testJob())
		r.fake.result = func(int) error { return errTransport }
		if err := r.w.Run(t.Context()); err != nil {
			t.Fatalf("Run = %v", err)
		}
		box := filepath.Join(r.dir, state.OutboxDir)
		if err := os.Rename(filepath.Join(box, "job-42-2"), filepath.Join(box, outboxNewPrefix+"job-42-2")); err != nil {
			t.Fatal(err)
		}
		broken := filepath.Join(box, outboxNewPrefix+"job-7-1")
		if err := os.MkdirAll(filepath.Join(broken, outboxFilesDir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(broken, outboxEntryFile), []byte(`{"job_id": 7, "att`), 0o600); err != nil {
			t.Fatal(err)
		}

		r2 := newRig(t, nil)
		r2.w.StateDir, r2.w.Key, r2.pub = r.dir, r.w.Key, r.pub
		runUntilResult(t, r2)
		if got := r2.verified(t); got.JobID != 42 {
			t.Errorf("sent job %d, want 42", got.JobID)
		}
		if pending, refused := outboxEntries(t, r.dir); len(pending)+len(refused) != 0 {
			t.Errorf("outbox = %v, refused %v; want empty", pending, refused)
		}
	})
}

func TestDecodeEntry(t *testing.T) {
	env := []byte(`{"payloadType":"x"}`)
	key := protocol.ResultKey(env)
	good := `{"job_id":1,"attempt":1,"package":"hello","envelope":"eyJwYXlsb2FkVHlwZSI6IngifQ==","idempotency_key":"` + key + `","blobs":[{"name":"log","sha256":"` + strings.Repeat("a", 64) + `","size":3}],"created":"2026-11-22T10:00:00Z"}`
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"good", good, true},
		{"truncated", good[:40], false},
		{"unknown field", strings.Replace(good, `"package"`, `"pkg"`, 1), false},
		{"key mismatch", strings.Replace(good, key, strings.Repeat("0", 64), 1), false},
		{"no job", strings.Replace(good, `"job_id":1`, `"job_id":0`, 1), false},
		{"blob escapes", strings.Replace(good, `"name":"log"`, `"name":"../log"`, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeEntry([]byte(tt.in))
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadOutboxEntry)) {
				t.Errorf("decodeEntry = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte(`{"job_id":1,"attempt":1,"envelope":"e30=","idempotency_key":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"blobs":[{"name":"/etc/passwd"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		if e.Key != protocol.ResultKey(e.Envelope) {
			t.Errorf("accepted an entry whose key does not match its envelope")
		}
		for _, bl := range e.Blobs {
			if !filepath.IsLocal(filepath.FromSlash(bl.Name)) {
				t.Errorf("accepted blob name %q", bl.Name)
			}
		}
	})
}

// TestPauseAfterInfraFailures checks that enough tmpfails in a row stop
// the agent from taking work, and that it tells the coordinator why.
func TestPauseAfterInfraFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		runs := 0
		run := func(ctx context.Context, spec runner.Spec) (runner.Outcome, error) {
			runs++
			return runner.Outcome{ExitCode: 16, Verdict: dep8.VerdictTmpfail}, runner.ErrStart
		}
		jobs := []*protocol.Job{testJob(), testJob(), testJob(), testJob()}
		for i, j := range jobs {
			j.ID = int64(100 + i)
		}
		r := newRig(t, run, jobs...)
		r.w.Once = false
		r.w.MaxInfraFailures = 3
		done := make(chan error)
		go func() { done <- r.w.Run(t.Context()) }()
		synctest.Wait()
		r.w.Drain()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		if runs != 3 {
			t.Errorf("runs = %d, want 3: the fourth job waits while the agent is paused", runs)
		}
		last := r.fake.leases[len(r.fake.leases)-1]
		if !strings.Contains(last.Paused, "3 infrastructure failures in a row") || !strings.Contains(last.Paused, "job 102") {
			t.Errorf("last lease request says paused %q, want the failures and the last job", last.Paused)
		}
	})
}

// TestPauseOnLowDisk checks that the agent takes no work while its disk is
// nearly full, and takes it again once space is free.
func TestPauseOnLowDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, passing(t), testJob())
		var free atomic.Int64
		free.Store(100 << 20)
		r.w.FreeDisk = func(path string) (int64, error) {
			if path != r.dir {
				t.Errorf("FreeDisk(%q), want the state directory %q", path, r.dir)
			}
			return free.Load(), nil
		}
		r.w.MinFreeDisk = 1 << 30
		done := make(chan error)
		go func() { done <- r.w.Run(t.Context()) }()
		synctest.Wait()
		r.fake.mu.Lock()
		leases := append([]protocol.LeaseRequest(nil), r.fake.leases...)
		r.fake.mu.Unlock()
		if len(leases) == 0 || !strings.Contains(leases[0].Paused, "only 100 MiB free") || len(r.fake.results) != 0 {
			t.Fatalf("lease requests while the disk is full = %+v, results %d; want a pause saying so and no job", leases, len(r.fake.results))
		}
		free.Store(10 << 30)
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got := r.verified(t); got.Verdict != dep8.VerdictPass {
			t.Errorf("verdict after the pause = %s, want pass", got.Verdict)
		}
	})
}
