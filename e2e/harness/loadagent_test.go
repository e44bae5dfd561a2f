package harness

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/sign"
)

// TestLoadResult checks that the made-up results are ones the coordinator
// accepts: valid, signed, about the leased attempt, and with tests that
// agree with the verdict.
func TestLoadResult(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &LoadAgent{ID: 7, key: priv, opts: LoadOptions{TmpfailRate: 0.1}.withDefaults()}
	job := &protocol.Job{ID: 3, Attempt: 2, Nonce: "n0nce", Package: "pkg", Release: "bookworm", Arch: "amd64"}
	log := sign.Blob{Name: "log", SHA256: "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd", Size: 10}
	tests := []struct {
		name string
		roll float64
		want dep8.Verdict
	}{
		{"tmpfail", 0.05, dep8.VerdictTmpfail},
		{"pass", 0.2, dep8.VerdictPass},
		{"fail", 0.9, dep8.VerdictFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := a.result(job, tt.roll, log, time.Unix(0, 0))
			if tr.Verdict != tt.want {
				t.Errorf("result(roll %v).Verdict = %q, want %q", tt.roll, tr.Verdict, tt.want)
			}
			env, err := sign.SignResult(priv, tr)
			if err != nil {
				t.Fatalf("SignResult = %v", err)
			}
			got, err := sign.VerifyResult(env, pub)
			if err != nil {
				t.Fatalf("VerifyResult = %v", err)
			}
			if got.JobID != job.ID || got.Attempt != job.Attempt || got.Nonce != job.Nonce || got.Agent.ID != a.ID {
				t.Errorf("result is about job %d attempt %d nonce %q agent %d, want job %d attempt %d nonce %q agent %d",
					got.JobID, got.Attempt, got.Nonce, got.Agent.ID, job.ID, job.Attempt, job.Nonce, a.ID)
			}
			if err := got.Harness.Validate(); err != nil && got.Verdict != dep8.VerdictTmpfail {
				t.Errorf("Harness.Validate() = %v", err)
			}
			failed := false
			for _, tc := range got.Tests {
				failed = failed || tc.Result == dep8.Fail
			}
			if wantFailed := tt.want == dep8.VerdictFail; failed != wantFailed || (tt.want != dep8.VerdictTmpfail && len(got.Tests) == 0) {
				t.Errorf("tests %+v do not agree with verdict %q", got.Tests, got.Verdict)
			}
		})
	}
}
