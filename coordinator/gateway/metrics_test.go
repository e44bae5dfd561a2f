package gateway

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// recorder is a Metrics that counts each call by its arguments and
// signals every Expired call.
type recorder struct {
	mu      sync.Mutex
	calls   map[string]int
	expired chan int
}

func newRecorder() *recorder {
	return &recorder{calls: make(map[string]int), expired: make(chan int, 16)}
}

func (r *recorder) add(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[call]++
}

func (r *recorder) Session(tr string) { r.add("Session(" + tr + ")") }
func (r *recorder) Leased(tr string)  { r.add("Leased(" + tr + ")") }
func (r *recorder) Result(v dep8.Verdict, tr string) {
	r.add(fmt.Sprintf("Result(%s, %s)", v, tr))
}
func (r *recorder) Expired(n int) { r.expired <- n }

func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.calls))
	for k, v := range r.calls {
		out[k] = v
	}
	return out
}

func TestMetricsCountLeasesAndResults(t *testing.T) {
	for _, tt := range []struct {
		name        string
		verdict     dep8.Verdict
		exit        int
		maxAttempts int
		want        string
	}{
		{"pass", dep8.VerdictPass, 0, 3, "Result(pass, quic)"},
		{"fail", dep8.VerdictFail, 4, 3, "Result(fail, quic)"},
		{"neutral", dep8.VerdictNeutral, 8, 3, "Result(neutral, quic)"},
		{"tmpfail queues again", dep8.VerdictTmpfail, 16, 3, "Result(tmpfail, quic)"},
		{"tmpfail on the last attempt", dep8.VerdictTmpfail, 16, 1, "Result(error, quic)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			e := newEnvMetrics(t, 0, rec)
			c := e.dial()
			a, tok := e.approvedAgent(c, "alice")
			if _, err := e.db.CreateJob(t.Context(), store.Job{Package: "hello", Release: "bookworm", Arch: "amd64", MaxAttempts: tt.maxAttempts, CreatedAt: e.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			j := e.lease(c, tok)
			tr := testResult(j, a)
			tr.Verdict, tr.ExitCode = tt.verdict, tt.exit
			if _, err := c.Result(t.Context(), tok, protocol.ResultRequest{JobID: j.ID, Attempt: j.Attempt, Envelope: signed(t, a.key, tr)}); err != nil {
				t.Fatalf("Result(%s) = %v", tt.verdict, err)
			}
			want := map[string]int{"Session(quic)": 1, "Leased(quic)": 1, tt.want: 1}
			if d := cmp.Diff(want, rec.snapshot()); d != "" {
				t.Errorf("metrics calls mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestMetricsCountExpiredLeases(t *testing.T) {
	rec := newRecorder()
	e := newEnvMetrics(t, 0, rec)
	c := e.dial()
	_, tok := e.approvedAgent(c, "alice")
	e.submit("hello")
	e.submit("world")
	e.lease(c, tok)
	e.lease(c, tok)
	e.clock.Advance(2 * time.Minute)
	// The reaper runs on a real ticker, a few seconds apart; the bound
	// only keeps a broken reaper from hanging the test.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	select {
	case n := <-rec.expired:
		if n != 2 {
			t.Errorf("Expired(%d) after two leases expired, want Expired(2)", n)
		}
	case <-ctx.Done():
		t.Fatal("reaper never reported the expired leases")
	}
}
